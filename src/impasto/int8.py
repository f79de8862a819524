"""int8 feed-forward networks on x86 CPUs: how an int8 model file becomes a network, and whether
it should run as int8 on this machine at all.

An int8 file is made by :func:`impasto.compress.compress` with PyTorch's own post-training static quantisation for x86 CPUs (FX graph mode): the
style blend is built in, the conditional norms become plain instance norms, observers record
activation ranges on calibration photos, and the convolutions, the low-resolution norms and the
additions run on 8-bit integers with oneDNN's kernels (PyTorch's ``x86`` engine picks FBGEMM's on
CPUs without AVX-512 VNNI, which were slower here for this network).  The first stage and the
last full-resolution norm stay in float: PyTorch's int8 instance norm and the 3-channel convolution
were slower at full resolution than their float versions (BENCHMARKS.md).  The model file keeps the
float weights and the observers' ranges (plain tensors, loadable with ``weights_only``); loading
repeats the conversion, which is deterministic.  ONNX Runtime's QDQ quantisation of the same network was
measured here too and was no faster than its float model (BENCHMARKS.md), so ONNX is the route
only for running elsewhere (``-o SMALL.onnx``).

int8 pays only on some CPUs (BENCHMARKS.md: 0.43x the float time on AVX2, 1.9x slower on an AVX-512
CPU with bf16), so an int8 file also holds its float weights, :func:`impasto.compress.compress` records the timing
of both on the machine it ran on, and :func:`int8_pays` picks the network to run.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from .errors import ImpastoError
from .transformer import ConvNorm, TransformerNet, channels_last_instance_norm

#: The int8 recipe this impasto writes, by the tag a model file records; "int8-x86" (every layer in
#: int8, PyTorch's x86 engine) is what the first int8 files hold; they still load.
INT8_RECIPE = "int8-onednn"
INT8_ENGINES = {"int8-onednn": "onednn", "int8-x86": "x86"}
#: PyTorch's CPU kernel families where these int8 networks were measured faster than float
#: (BENCHMARKS.md: 0.43x the float time on an AVX2 CPU; 1.9x slower on an AVX-512 CPU with bf16).
#: A file's own timing (:func:`time_int8`, taken by ``compress``) overrides this on its CPU kind.
INT8_PAYS_ON = frozenset({"AVX2"})


class FrozenNet(nn.Module):
    """A feed-forward network with one style blend built in, in modules FX can quantise: each
    conditional norm becomes an affine InstanceNorm2d with the blend's scale and shift."""

    def __init__(self, network: TransformerNet, mix: Sequence[float]) -> None:
        super().__init__()
        weights = torch.tensor(list(mix), dtype=torch.float32)

        def stage(layer: ConvNorm) -> nn.Sequential:
            norm = nn.InstanceNorm2d(layer.conv.out_channels, affine=True)
            norm.weight.data.copy_(weights @ layer.norm.scale.detach().float())
            norm.bias.data.copy_(weights @ layer.norm.shift.detach().float())
            parts: list[nn.Module] = []
            if layer.upsample:
                parts.append(nn.Upsample(scale_factor=2.0, mode=layer.upsample,
                                         **({"align_corners": False} if layer.upsample == "bilinear" else {})))
            parts += [layer.conv, norm]
            if layer.relu:
                parts.append(nn.ReLU())
            return nn.Sequential(*parts)

        self.residual_output = network.output == "residual"
        self.down = nn.Sequential(*[stage(layer) for layer in network.down])
        self.blocks = nn.ModuleList([nn.Sequential(stage(block.first), stage(block.second))
                                     for block in network.blocks])
        self.up = nn.Sequential(*[stage(layer) for layer in network.up])
        self.out = network.out

    def float_parts(self) -> list[str]:
        """The modules int8 leaves in float: the first stage (a 3-channel convolution) and the last
        stage's norm and ReLU (full resolution), whose int8 kernels were slower than float here."""
        last = len(self.up) - 1
        norm = next(i for i, part in enumerate(self.up[last]) if isinstance(part, nn.InstanceNorm2d))
        return ["down.0", f"up.{last}.{norm}", f"up.{last}.{norm + 1}"]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.down(image)
        for block in self.blocks:
            x = x + block(x)
        x = self.out(self.up(x))
        return image + x if self.residual_output else torch.sigmoid(x)


def prepare_int8(frozen: FrozenNet, recipe: str) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx

    with warnings.catch_warnings():  # the FX API announces its move to torchao; it is the x86 int8 path today
        warnings.simplefilter("ignore")  # (and oneDNN's mapping warns of CPUs without VNNI: measured fine here)
        mapping = get_default_qconfig_mapping(INT8_ENGINES[recipe])
        if recipe == "int8-onednn":
            for name in frozen.float_parts():
                mapping = mapping.set_module_name(name, None)
        return prepare_fx(frozen.eval(), mapping, (torch.zeros(1, 3, 64, 64),))


@contextlib.contextmanager
def _engine(name: str) -> Iterator[None]:
    """PyTorch's quantised engine while weights are packed (the packed weights keep their kernels)."""
    if name not in torch.backends.quantized.supported_engines:
        raise ImpastoError(f"int8 models need PyTorch's {name} int8 kernels, which this machine's PyTorch lacks; "
                           "use the float model")
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


def cpu_kind() -> str:
    """The instruction-set family PyTorch's CPU kernels use on this machine ("AVX2", "AVX512", ...)."""
    return torch.backends.cpu.get_cpu_capability()


def int8_pays(config: dict[str, Any]) -> bool:
    """Whether an int8 file should run its int8 network on this CPU rather than its float one.

    The timing :func:`compress` recorded decides when it was taken on this kind of CPU; otherwise
    the kinds int8 was measured faster on (:data:`INT8_PAYS_ON`)."""
    measured = config.get("int8_timing") or {}
    if measured.get("cpu") == cpu_kind():
        return float(measured["int8_s"]) < float(measured["float_s"])
    return cpu_kind() in INT8_PAYS_ON and INT8_ENGINES.get(str(config.get("quantized"))) in \
        torch.backends.quantized.supported_engines


def load_int8(network: TransformerNet, state: dict[str, torch.Tensor], config: dict[str, Any],
              path: str | os.PathLike | None, int8: bool = True) -> tuple[nn.Module, list[float]]:
    """The int8 network of a model file written by :func:`compress` (rebuilt from its saved ranges);
    ``int8=False``: the same file's float network (its blend built in), for where int8 is slower."""
    recipe = config.get("quantized")
    if recipe not in INT8_ENGINES:
        raise ImpastoError(f"unknown quantisation {recipe!r} (this impasto runs {', '.join(INT8_ENGINES)})", path)
    mix = [float(w) for w in config.get("mix", [1.0])]
    if not int8:
        return _float_frozen(FrozenNet(network, mix), state, path), mix
    prepared = prepare_int8(FrozenNet(network, mix), recipe)
    own = prepared.state_dict()
    if set(own) != set(state):
        raise ImpastoError("model weights do not fit the int8 network", path)
    prepared.load_state_dict({key: value.to(own[key].dtype) if own[key].is_floating_point() else value
                              for key, value in state.items()})
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings(), _engine(INT8_ENGINES[recipe]):
        warnings.simplefilter("ignore")
        network = convert_fx(prepared).eval()
        _swap_modules(network)
    return network, mix


def _swap_modules(network: nn.Module) -> None:
    """In place: reflection-padded int8 convolutions padded channels-last, and every float norm
    computed in its input's layout (the int8 network's float parts, or a whole float network)."""
    for name, module in list(network.named_modules()):
        swap = None
        if isinstance(module, torch.ao.nn.quantized.Conv2d) and module.padding_mode == "reflect":
            swap = _PaddedInt8Conv(module)
        elif type(module) is nn.InstanceNorm2d:
            swap = _LayoutInstanceNorm(module)
        if swap is not None:
            parent, _, child = name.rpartition(".")
            setattr(network.get_submodule(parent) if parent else network, child, swap)


def _float_frozen(frozen: FrozenNet, state: dict[str, torch.Tensor], path: str | os.PathLike | None) -> FrozenNet:
    """The float weights of an int8 file (its observers' ranges left aside), norms in either layout."""
    own = frozen.state_dict()
    if not set(own) <= set(state):
        raise ImpastoError("model weights do not fit the int8 network", path)
    frozen.load_state_dict({key: state[key].to(own[key].dtype) for key in own})
    _swap_modules(frozen)
    return frozen.eval()


def time_int8(network: TransformerNet, state: dict[str, torch.Tensor], config: dict[str, Any],
              side: int = 512, repeats: int = 3) -> dict[str, Any]:
    """Seconds per ``side`` px image of the int8 network and of the same file's float network on
    this CPU (the best of ``repeats`` after a warm-up): what :func:`int8_pays` reads later."""
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    timing: dict[str, Any] = {"cpu": cpu_kind(), "side": side}
    for name, int8 in (("float_s", False), ("int8_s", True)):
        net, _ = load_int8(copy.deepcopy(network), state, config, None, int8=int8)
        layout = image.contiguous(memory_format=torch.channels_last) if not int8 else image
        seconds = []
        with torch.no_grad():
            for _ in range(repeats + 1):
                started = time.perf_counter()
                net(layout)
                seconds.append(time.perf_counter() - started)
        timing[name] = round(min(seconds[1:]), 4)
    return timing


class _LayoutInstanceNorm(nn.Module):
    """A float part's affine instance norm, computed in the input's layout (see fast's CPU norm)."""

    def __init__(self, norm: nn.InstanceNorm2d) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_contiguous(memory_format=torch.channels_last):
            return self.norm(x)
        return channels_last_instance_norm(x, self.norm.weight[None], self.norm.bias[None], self.norm.eps)


def _pad_channels_last(image: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflection padding of a quantised image, written once into a channels-last buffer (the
    layout the int8 convolutions read): PyTorch's own reflection pad of a quantised tensor works in
    NCHW, so each padded convolution copied the image to NCHW and back (a fifth of the int8 time)."""
    n, c, h, w = image.shape
    out = torch._empty_affine_quantized((n, c, h + 2 * pad, w + 2 * pad), scale=image.q_scale(),
                                        zero_point=image.q_zero_point(), dtype=image.dtype,
                                        memory_format=torch.channels_last)
    out[:, :, pad:h + pad, pad:w + pad].copy_(image)
    for k in range(pad):  # columns mirrored about the edge column, then rows (corners included)
        out[:, :, pad:h + pad, pad - 1 - k].copy_(image[:, :, :, k + 1])
        out[:, :, pad:h + pad, w + pad + k].copy_(image[:, :, :, w - 2 - k])
    for k in range(pad):
        out[:, :, pad - 1 - k, :].copy_(out[:, :, pad + k + 1, :])
        out[:, :, h + pad + k, :].copy_(out[:, :, h + pad - 2 - k, :])
    return out


class _PaddedInt8Conv(nn.Module):
    """An int8 convolution with reflection padding, the padding done by :func:`_pad_channels_last`."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.pad = conv.padding[0]
        conv.padding, conv.padding_mode = (0, 0), "zeros"
        conv.set_weight_bias(conv.weight(), conv.bias())  # packed again, without padding
        self.conv = conv

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(_pad_channels_last(image, self.pad))
