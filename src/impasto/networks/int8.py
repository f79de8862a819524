"""int8 feed-forward networks on x86 CPUs: how an int8 model file becomes a network, and whether
it should run as int8 on this machine at all.

An int8 file is made by :func:`impasto.networks.compress.compress` with PyTorch's own post-training static quantisation for x86 CPUs (FX graph mode): the
style blend is built in, the conditional norms become plain instance norms, observers record
activation ranges on calibration photos, and the convolutions, the low-resolution norms and the
additions run on 8-bit integers with oneDNN's kernels (PyTorch's ``x86`` engine picks FBGEMM's on
CPUs without AVX-512 VNNI, which were slower here for this network).  The first stage and the
last full-resolution norm stay in float: PyTorch's int8 instance norm and the 3-channel convolution
were slower at full resolution than their float versions (docs/figures.md, int8).  ONNX Runtime's
QDQ quantisation of the same network was measured too and was no faster than its float model, so ONNX is the route
only for running elsewhere (``-o SMALL.onnx``).

**Loading is cheap.**  The conversion is done once, by ``compress``: the file holds the converted
network's tensors (int8 weights, the ranges as scales and zero points; plain tensors, loadable with
``weights_only``) and its graph as a list of operations (:func:`encode_graph`), which
:class:`Int8Graph` runs without FX.  Files from before kept the observers' histograms and repeated
FX's tracing, preparation and conversion at every load, which cost more than the int8 network
saves on one photo; they still load, and run their float network unless asked otherwise.

**int8 runs only where it is not slower.**  It pays only on some CPUs (docs/figures.md), so an int8
file also holds its float weights, ``compress`` times both as ``impasto stylize`` runs them (each in a
fresh process, from launch to the first image, then the images after it; the float side at the precision
``stylize`` picks on this CPU) and records its choice, and :func:`int8_choice` reads it.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any, Sequence

import torch
import torch.nn as nn

from impasto.core.errors import ImpastoError
from impasto.networks.int8_graph import (INT8_ENGINES, INT8_PACKED, build_int8, encode_graph, engine, float_frozen,
                                         pack_int8, swap_modules)
from impasto.networks.transformer import ConvNorm, TransformerNet

#: The int8 recipe this impasto writes, by the tag a model file records; "int8-x86" (every layer in
#: int8, PyTorch's x86 engine) is what the first int8 files hold; they still load.
INT8_RECIPE = "int8-onednn"
#: PyTorch's CPU kernel families where these int8 networks were measured faster than float (on an
#: AVX-512 CPU with bf16 the float network was faster: docs/figures.md, int8).
#: A file's own choice (:func:`impasto.networks.compress.measure_startup`) overrides this on its CPU kind.
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


def cpu_kind() -> str:
    """The instruction-set family PyTorch's CPU kernels use on this machine ("AVX2", "AVX512", ...)."""
    return torch.backends.cpu.get_cpu_capability()


def float_precision() -> str:
    """The precision a float model runs in on this CPU when ``stylize`` picks it ("bf16" or "fp32")."""
    from impasto.core.runtime import resolve_precision

    return "bf16" if resolve_precision("auto", torch.device("cpu")) is not None else "fp32"


def int8_choice(config: dict[str, Any]) -> tuple[bool, str]:
    """Whether an int8 file runs its int8 network on this CPU rather than its float one, and why
    (a phrase for :func:`describe` and the note ``FastModel`` prints).

    The choice ``compress`` recorded decides when it was measured on this kind of CPU with the float
    model at the precision it runs in here; otherwise the kinds int8 was measured faster on
    (:data:`INT8_PAYS_ON`).  A file from before the cheap loader runs its float network."""
    engine = INT8_ENGINES.get(str(config.get("quantized")))
    if engine not in torch.backends.quantized.supported_engines:
        return False, f"this PyTorch lacks its {engine} int8 kernels"
    if "int8_graph" not in config:
        return False, ("a file from an older impasto, whose int8 network is rebuilt with PyTorch's conversion at "
                       "every start (seconds); compress the float model again for int8")
    measured = config.get("int8_timing") or {}
    here = cpu_kind()
    if measured.get("cpu") == here and measured.get("float_precision") == float_precision() and "choice" in measured:
        where = f"this kind of CPU ({here}, float in {measured['float_precision']})"
        if all(f"{side}_{what}" in measured for side in ("int8", "float") for what in ("s", "start_s")):
            where += (f", {measured.get('side', '?')} px: from launch to the first image {measured['int8_start_s']:.2f} s "
                      f"against {measured['float_start_s']:.2f} s, then {measured['int8_s']:.3f} s against "
                      f"{measured['float_s']:.3f} s per image")
        if measured["choice"] == "int8":
            return True, f"int8 measured no slower on {where}"
        return False, f"int8 measured not clearly faster on {where}"
    pays = here in INT8_PAYS_ON and float_precision() == "fp32"
    other = (f"measured on {measured['cpu']} with float in {measured.get('float_precision', '?')}"
             if measured.get("cpu") else "not measured")
    rule = f"int8 runs without a measurement here on {', '.join(sorted(INT8_PAYS_ON))} CPUs without bf16"
    return pays, f"{other}, not on this kind of CPU ({here}); {rule}"


def int8_pays(config: dict[str, Any]) -> bool:
    """Whether an int8 file should run its int8 network on this CPU rather than its float one
    (:func:`int8_choice`)."""
    return int8_choice(config)[0]


_SAID: set[str] = set()


def say_float_once(path: str | os.PathLike | None, config: dict[str, Any]) -> None:
    """Tell the user, once per file and process, that an int8 file runs its float network here."""
    key = os.fspath(path) if path is not None else ""
    if key in _SAID:
        return
    _SAID.add(key)
    import sys

    name = os.path.basename(key) or "this int8 model"
    print(f"impasto: {name} runs its float network here ({int8_choice(config)[1]})", file=sys.stderr)


def describe(path: str | os.PathLike) -> str:
    """One line: what a model file will run on this machine and why (for ``impasto models``)."""
    from impasto.core.modelfile import load_model

    model = load_model(path)
    config = model.config
    if not config.get("quantized"):
        return "a float model"
    runs, why = int8_choice(config)
    line = f"runs {'int8' if runs else 'its float network'} on this CPU: {why}"
    if torch.cuda.is_available():
        line = f"runs its float network on the GPU; {line}"
    return line


def load_int8(network: TransformerNet, state: dict[str, torch.Tensor], config: dict[str, Any],
              path: str | os.PathLike | None, int8: bool = True) -> tuple[nn.Module, list[float]]:
    """The int8 network of a model file written by :func:`compress` (built from its stored graph
    and tensors; an older file's, converted again from its saved ranges); ``int8=False``: the same
    file's float network (its blend built in), for where int8 is slower."""
    recipe = config.get("quantized")
    if recipe not in INT8_ENGINES:
        raise ImpastoError(f"unknown quantisation {recipe!r} (this impasto runs {', '.join(INT8_ENGINES)})", path)
    mix = [float(w) for w in config.get("mix", [1.0])]
    frozen = FrozenNet(network, mix)
    if not int8:
        return float_frozen(frozen, state, path), mix
    if "int8_graph" in config:
        return build_int8(frozen, state, config["int8_graph"], recipe, path), mix
    prepared = prepare_int8(frozen, recipe)  # an older file: its observers' ranges, converted again
    own = prepared.state_dict()
    if set(own) != set(state):
        raise ImpastoError("model weights do not fit the int8 network", path)
    prepared.load_state_dict({key: value.to(own[key].dtype) if own[key].is_floating_point() else value
                              for key, value in state.items()})
    network = convert_int8(prepared, recipe)
    with engine(INT8_ENGINES[recipe]):
        swap_modules(network)
    return network, mix


def convert_int8(prepared: nn.Module, recipe: str) -> nn.Module:
    """PyTorch's FX conversion of a calibrated network (its observers' ranges become scales and zero
    points, its weights int8): what ``compress`` does once and stores."""
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings(), engine(INT8_ENGINES[recipe]):
        warnings.simplefilter("ignore")
        return convert_fx(prepared).eval()


def freeze_int8(network: TransformerNet, mix: Sequence[float], calibrated: dict[str, torch.Tensor],
                recipe: str = INT8_RECIPE) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What an int8 file holds: the float network's weights (its blend built in: the network run
    where int8 is slower) and, packed in one tensor (``int8_packed``), the converted int8 network's tensors; and the
    converted network's graph (config ``int8_graph``).  ``calibrated``: :func:`calibrate_int8`'s state."""
    frozen = FrozenNet(network, mix).eval()
    prepared = prepare_int8(copy.deepcopy(frozen), recipe)
    prepared.load_state_dict(calibrated)
    converted = convert_int8(prepared, recipe)
    graph = encode_graph(converted, frozen)
    state = {key: value.detach().clone() for key, value in frozen.state_dict().items()}
    state[INT8_PACKED] = pack_int8({key: value.detach().clone() for key, value in converted.state_dict().items()})
    return state, graph
