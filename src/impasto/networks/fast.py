"""Fast style transfer (Johnson et al. 2016; Ulyanov et al. 2016; Dumoulin et al. 2017): a trained
model per style (or per set of styles).

The image transformation network (:mod:`impasto.networks.transformer`) is trained once against the
optimisation method's own objective (the same backbone, content, Gram style and TV losses, via
:class:`impasto.core.losses.StyleObjective`), then stylizes any image in one forward pass.  Here: the
loaded model (:class:`FastModel`; an int8 file through :mod:`impasto.networks.int8`), the training task
(:class:`FastTask`) and export to ONNX / TorchScript.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.losses import normalised, relative_content_loss, total_variation, training_style_loss
from impasto.core.modelfile import load_model, load_weights
from impasto.core.runtime import (autocast, cached_engine, default_encoder, resolve_device, resolve_precision, to_device,
                      weights_in_compute_dtype)
from impasto.networks.training import ImageFolder, PaintingTask, random_flip, shift_term
from impasto.networks.transformer import MULTIPLE, TransformerNet, network_from_config, without_lattice

KIND = "fast"
CONTENT_LAYERS = ("relu2_2",)  # Johnson et al.: an early layer keeps the photo's structure
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: Weight of the (relative) style loss against the (relative) content loss; see the recipe
#: experiments in docs/archive/benchmarks-history.md.
DEFAULT_STYLE_WEIGHT = 3.0
#: The style term (Gram matrices, or the sliced Wasserstein distance between feature distributions,
#: on fresh directions each step) and its default weight: both terms are relative, but the distance
#: is smaller than the Gram error for the same painting (adapting Starry Night's norms from the
#: arbitrary network's prediction, weight 10 brought the result closer to the painting where the
#: Gram term at 3 moved it away; docs/archive/benchmarks-history.md).
STYLE_WEIGHTS = {"gram": DEFAULT_STYLE_WEIGHT, "swd": 10.0}
#: Weight of the shift-consistency loss (:func:`impasto.core.losses.shift_consistency`) against the
#: content loss; see "The 4 px lattice" in docs/archive/benchmarks-history.md.
DEFAULT_SHIFT_WEIGHT = 100.0
#: Share of each batch that the shift-consistency pass paints a second time (see "Training speed"
#: in docs/archive/benchmarks-history.md).
DEFAULT_SHIFT_SHARE = 1.0
#: Mirrored border (px) the photo is seen through, cropped off the painting: at the image's own edge
#: the shipped networks paint a dark or light frame (mosaic's dark line along the top and double line
#: near the left, rain_princess's dark sides), which the mirrored margin moves out of the picture
#: (measured: docs/figures.md, "Machine marks").
MARGIN = 32
# ------------------------------------------------------------------------------------- inference


class FastModel:
    """A loaded feed-forward model on a device."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", precision: str = "auto",
                 compile: bool = False) -> None:
        path = Path(path)
        model = load_model(path, KIND)
        config = model.config
        self.network = network_from_config(config, path)
        self.quantized = config.get("quantized")
        self.device = resolve_device(device)
        #: an int8 file runs int8 only on a CPU where that is not slower, start-up included; elsewhere its
        #: float network (a GPU, or a CPU where int8 measured slower: int8.int8_choice; said once)
        self.int8 = False
        if self.quantized:
            from impasto.networks import int8

            self.int8 = self.device.type == "cpu" and int8.int8_pays(config)
            if self.device.type == "cpu" and not self.int8:
                int8.say_float_once(path, config)
            self.network, self.frozen_mix = int8.load_int8(self.network, model.state_dict, config, path,
                                                           int8=self.int8)
        else:
            load_weights(self.network, model.state_dict, path)
        self.dtype = resolve_precision(precision, self.device)  # autocast's, or None
        self.weights_dtype = torch.float32
        self.network.eval().requires_grad_(False)
        if self.int8:
            self.dtype = None  # its own arithmetic; no autocast
        else:
            self.network.to(self.device, memory_format=torch.channels_last)
            if weights_in_compute_dtype(self.device, self.dtype):  # a GPU: bf16/fp16 weights, no autocast
                self.network.to(self.dtype)
                self.weights_dtype, self.dtype = self.dtype, None
            if compile:  # fused kernels for this machine, made once per image size (seconds): for clips and batches
                self.network = torch.compile(self.network, dynamic=False)
        self.styles = int(config["styles"])
        self.config = config
        self.style_names: list[str] = list(config.get("style_names", [])) or [path.stem]
        self.training = model.training
        self.path = path

    def mix(self, weights: Sequence[float] | None) -> torch.Tensor:
        """Normalised style weights as a vector; None = the first style."""
        count = self.styles
        if weights is None:
            weights = [1.0] + [0.0] * (count - 1)
        if self.quantized and list(normalised(weights, "blend weights")) != list(self.frozen_mix):
            raise ImpastoError("an int8 model has its style blend built in at compression time; "
                               "compress the float model again with that --style-blend", self.path,
                               parameter="style_blend")
        if len(weights) != count:
            raise ImpastoError(f"{len(weights)} style blend weights given for a model with {count} style(s) "
                               f"({', '.join(self.style_names)})", self.path, parameter="style_blend")
        return torch.tensor(normalised(weights, "blend weights"))

    @torch.no_grad()
    def stylize(self, content: torch.Tensor, weights: Sequence[float] | None = None) -> torch.Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> stylized, same size, clamped, on the CPU."""
        padded, (top, left, h, w) = images.pad_around(content, MARGIN, MULTIPLE, minimum=2 * MULTIPLE)
        mix = self.mix(weights)
        upsample = self.config.get("upsample", "nearest")
        if self.int8:
            out = without_lattice(self.network(padded.float()), upsample)
            return out[..., top:top + h, left:left + w].clamp(0, 1)
        arguments = () if self.quantized else (mix,)  # an int8 file's float network has its blend built in
        with autocast(self.device, self.dtype):
            out = self.network(to_device(padded, self.device, self.weights_dtype).contiguous(
                memory_format=torch.channels_last), *arguments)
        out = without_lattice(out.float(), upsample)
        return out[..., top:top + h, left:left + w].clamp(0, 1).cpu()


def cached_model(path: str | os.PathLike, device: str = "auto", precision: str = "auto",
                 compile: bool = False) -> FastModel:
    return cached_engine(FastModel, path, device, precision, compile=compile)


# -------------------------------------------------------------------------------------- training


class FastTask(PaintingTask):
    """Train a network for one or several styles (Johnson et al.'s perceptual losses on the shared backbone).

    Both losses are relative (each layer divided by its target's own scale; see
    :func:`impasto.core.losses.relative_gram_loss`), so colour, strokes and motifs all count and the
    weights mean the same for any painting.
    """

    kind = KIND

    def __init__(self, content: ImageFolder, styles: Sequence[torch.Tensor], style_names: Sequence[str],
                 width: float = 1.0, content_weight: float = 1.0, style_weight: float = DEFAULT_STYLE_WEIGHT,
                 tv_weight: float = 0.0, preview: torch.Tensor | None = None, output: str = "direct",
                 upsample: str = "nearest", shift_weight: float = DEFAULT_SHIFT_WEIGHT,
                 shift_share: float = DEFAULT_SHIFT_SHARE, style_loss: str = "gram") -> None:
        if not styles:
            raise ImpastoError("give at least one --style image")
        self.loss = training_style_loss(style_loss)
        self.style_loss = self.loss.name
        self.content = content
        self.style_images = list(styles)
        self.style_names = list(style_names)
        self.width = width
        self.output = output
        self.content_weight = content_weight
        self.tv_weight = tv_weight
        super().__init__(style_weight, shift_weight, shift_share, upsample)
        self.network = TransformerNet(len(styles), width, output=output, upsample=upsample).to(
            memory_format=torch.channels_last)
        self._preview = preview
        self._targets: list[dict[str, torch.Tensor]] | None = None
        #: where the weights started, when not from scratch (``arbitrary.start_adaptation`` sets it)
        self.start: dict[str, Any] = {}

    def setup(self, device: torch.device, dtype: torch.dtype | None) -> None:
        """The photos onto the device; the styles' targets, once."""
        self.content.to(device)
        self._style_targets(device, dtype)

    def _style_targets(self, device: torch.device, dtype: torch.dtype | None) -> list[dict[str, torch.Tensor]]:
        """Each style's targets on the style layers (its Gram matrices, or its features), computed once."""
        if self._targets is None:
            encoder = default_encoder(list(STYLE_LAYERS), device)
            with torch.no_grad(), autocast(device, dtype):
                self._targets = [{name: self.loss.training_target(features) for name, features in
                                  encoder(style.to(device), STYLE_LAYERS).items()} for style in self.style_images]
        return self._targets

    def _style_term(self, features: dict[str, torch.Tensor], chosen: list[int], rng: random.Random,
                    device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
        """The batch's style loss, each image against the style it was painted with (the images
        painted with one style together, against it once; each group by its share of the batch)."""
        index = torch.tensor(chosen, device=device)
        targets = self._style_targets(device, dtype)
        drawn = self.loss.draw(rng)
        term = 0.0
        for style in sorted(set(chosen)):
            rows = index == style
            share = float(rows.float().mean())
            term = term + share * sum(self.loss.relative(features[name][rows], targets[style][name], drawn)
                                      for name in STYLE_LAYERS)
        return term

    def losses(self, network: nn.Module, batch_size: int, rng: random.Random,
               device: torch.device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        encoder = default_encoder([*CONTENT_LAYERS, *STYLE_LAYERS], device)
        content = random_flip(self.content.sample(batch_size, rng), rng).to(device)
        count = len(self.style_images)
        chosen = [rng.randrange(count) for _ in range(batch_size)]
        mix = F.one_hot(torch.tensor(chosen), count).float().to(device)
        with torch.no_grad(), autocast(device, dtype):
            content_features = encoder(content, CONTENT_LAYERS)
        with autocast(device, dtype):
            output = network(content.contiguous(memory_format=torch.channels_last), mix)
            features = encoder(output, [*CONTENT_LAYERS, *STYLE_LAYERS])
        content_term = sum(relative_content_loss(features[name], content_features[name]) for name in CONTENT_LAYERS)
        style_term = self._style_term(features, chosen, rng, device, dtype)
        terms = {"content": self.content_weight * content_term, "style": self.style_weight * style_term}
        total = terms["content"] + terms["style"]
        if self.tv_weight:
            terms["tv"] = self.tv_weight * total_variation(output.float())
            total = total + terms["tv"]
        if self.shift_weight:
            terms["shift"] = self.shift_weight * shift_term(lambda moved, part: network(moved, mix[:part]), content,
                                                            output, batch_size, self.shift_share, rng, device, dtype)
            total = total + terms["shift"]
        return {"total": total, **{name: value.detach() for name, value in terms.items()}}

    def preview(self, network: nn.Module, device: torch.device) -> torch.Tensor:
        content = self._preview if self._preview is not None else self.content.sample(1, random.Random(0))
        content, (h, w) = images.pad_to_multiple(content, MULTIPLE)
        rows = []
        for index in range(len(self.style_images)):
            mix = F.one_hot(torch.tensor([index]), len(self.style_images)).float().to(device)
            rows.append(network(content.to(device), mix).float().clamp(0, 1)[..., :h, :w].cpu())
        return torch.cat([content[..., :h, :w].cpu(), *rows], dim=-1)

    def config(self) -> dict[str, Any]:
        return {"styles": len(self.style_images), "width": self.width, "residual_blocks": 5,
                "output": self.output, "upsample": self.upsample, "style_names": self.style_names}

    def describe(self) -> dict[str, Any]:
        return {
            "content_data": f"{self.content.root.name} ({len(self.content)} images)",
            "style_images": self.style_names,
            "style_size": max(self.style_images[0].shape[-2:]),
            "crop": self.content.crop,
            "shorter_side": self.content.shorter_side,
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "style_loss": self.style_loss,
            "tv_weight": self.tv_weight,
            "shift_weight": self.shift_weight,
            "shift_share": self.shift_share,
            "content_layers": list(CONTENT_LAYERS),
            "style_layers": list(STYLE_LAYERS),
            "losses": "relative (each layer divided by its target's mean square)",
            **self.start,
        }


# ---------------------------------------------------------------------------------------- export

EXPORT_FORMATS = {".onnx": "onnx", ".ts": "torchscript", ".torchscript": "torchscript"}


class ExportedNet(nn.Module):
    """What exported files contain: ``(image (N,3,H,W) in [0,1], H and W multiples of 4; mix (styles,))
    -> stylized image in [0, 1]``: the network alone (impasto paints the photo mirrored by
    :data:`MARGIN` px on every side and crops that off, against a frame; a caller can do the same)."""

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
