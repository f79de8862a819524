"""A fast model written for other runtimes: TorchScript (``.ts``) or ONNX (``.onnx``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from impasto.core.errors import ImpastoError
from impasto.networks.transformer import TransformerNet
from impasto.networks.fast import FastModel


EXPORT_FORMATS = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}


class ExportedNet(nn.Module):
    """What exported files contain: ``(image (N,3,H,W) in [0,1], H and W multiples of 4; mix (styles,))
    -> stylized image in [0, 1]``: the network alone (impasto paints the photo of a model trained on
    its own mirrored by :data:`impasto.networks.fast.MARGIN` px on every side and crops that off,
    against a frame; one adapted from the arbitrary network without it: ``FastModel.margin``)."""

    def __init__(self, network: TransformerNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return self.network(image, mix).clamp(0.0, 1.0)


def export(model: str | os.PathLike, output: str | os.PathLike, size: int = 256) -> Path:
    """Write a model as TorchScript (``.ts``) or ONNX (``.onnx``, dynamic batch/height/width; opset 18)."""
    import tempfile

    from impasto.core.files import atomic_write, check_writable, refuse_inputs

    output = Path(output)
    fmt = EXPORT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise ImpastoError("unknown export format; name the file .onnx or .ts (TorchScript)", output)
    if not output.parent.is_dir():
        raise ImpastoError("cannot write the export: the folder does not exist", output)
    refuse_inputs(output, [model], "export")
    check_writable(output)
    loaded = FastModel(model, device="cpu", precision="fp32")
    if loaded.quantized:
        raise ImpastoError("an int8 model runs in impasto only; for int8 ONNX, compress the float model "
                           "to a .onnx file (impasto compress FLOAT --int8 -o SMALL.onnx --photos DIR)", model)
    wrapper = ExportedNet(loaded.network.float().to(memory_format=torch.contiguous_format)).eval()
    example = (torch.rand(1, 3, size, size), loaded.mix(None))
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / f"model{output.suffix}"
        if fmt == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(wrapper, example, check_trace=False)
            traced.save(os.fspath(scratch))
        else:
            try:
                import onnxscript  # noqa: F401 - the exporter needs it
            except ImportError:
                raise ImpastoError("ONNX export needs the onnx and onnxscript packages "
                                   "(pip install 'impasto[export]')") from None
            batch, height, width = (torch.export.Dim(n) for n in ("batch", "height", "width"))
            program = torch.onnx.export(
                wrapper, example, dynamo=True, verbose=False,
                dynamic_shapes={"image": {0: batch, 2: 4 * height, 3: 4 * width}, "mix": None},
                input_names=["image", "mix"], output_names=["stylized"],
            )
            program.save(os.fspath(scratch))
        data = scratch.read_bytes()
    return atomic_write(output, lambda handle: handle.write(data))
