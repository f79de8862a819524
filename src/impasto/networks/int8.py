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
fresh process, start-up and first image, then the images after it; the float side at the precision
``stylize`` picks on this CPU) and records its choice, and :func:`int8_choice` reads it.
"""

from __future__ import annotations

import contextlib
import copy
import operator
import os
import warnings
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from impasto.core.errors import ImpastoError
from impasto.networks.transformer import ConvNorm, TransformerNet, channels_last_instance_norm

#: The int8 recipe this impasto writes, by the tag a model file records; "int8-x86" (every layer in
#: int8, PyTorch's x86 engine) is what the first int8 files hold; they still load.
INT8_RECIPE = "int8-onednn"
INT8_ENGINES = {"int8-onednn": "onednn", "int8-x86": "x86"}
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


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One CPU thread while weights are packed: oneDNN's packing of one convolution's weights is a
    tiny parallel job, and with more threads each packing waited for every core to be free, which
    on a busy CPU made loading far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
            where += (f", {measured.get('side', '?')} px: start-up and first image {measured['int8_start_s']:.2f} s "
                      f"against {measured['float_start_s']:.2f} s, then {measured['int8_s']:.3f} s against "
                      f"{measured['float_s']:.3f} s per image")
        if measured["choice"] == "int8":
            return True, f"int8 measured no slower on {where}"
        return False, f"int8 measured slower on {where}"
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
        return _float_frozen(frozen, state, path), mix
    if "int8_graph" in config:
        return build_int8(frozen, state, config["int8_graph"], recipe, path), mix
    prepared = prepare_int8(frozen, recipe)  # an older file: its observers' ranges, converted again
    own = prepared.state_dict()
    if set(own) != set(state):
        raise ImpastoError("model weights do not fit the int8 network", path)
    prepared.load_state_dict({key: value.to(own[key].dtype) if own[key].is_floating_point() else value
                              for key, value in state.items()})
    network = convert_int8(prepared, recipe)
    with _engine(INT8_ENGINES[recipe]):
        _swap_modules(network)
    return network, mix


def convert_int8(prepared: nn.Module, recipe: str) -> nn.Module:
    """PyTorch's FX conversion of a calibrated network (its observers' ranges become scales and zero
    points, its weights int8): what ``compress`` does once and stores."""
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings(), _engine(INT8_ENGINES[recipe]):
        warnings.simplefilter("ignore")
        return convert_fx(prepared).eval()


def freeze_int8(network: TransformerNet, mix: Sequence[float], calibrated: dict[str, torch.Tensor],
                recipe: str = INT8_RECIPE) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What an int8 file holds: the float network's weights (its blend built in: the network run
    where int8 is slower) and, under ``int8.``, the converted int8 network's tensors; and the
    converted network's graph (config ``int8_graph``).  ``calibrated``: :func:`calibrate_int8`'s state."""
    frozen = FrozenNet(network, mix).eval()
    prepared = prepare_int8(copy.deepcopy(frozen), recipe)
    prepared.load_state_dict(calibrated)
    converted = convert_int8(prepared, recipe)
    graph = encode_graph(converted, frozen)
    state = {key: value.detach().clone() for key, value in frozen.state_dict().items()}
    state.update({INT8_PREFIX + key: value.detach().clone() for key, value in converted.state_dict().items()})
    return state, graph


# ------------------------------------------------------------------- the int8 network without FX

#: Where an int8 file keeps its converted network's tensors.
INT8_PREFIX = "int8."
#: The operations a stored int8 graph may name (nothing else runs: a file cannot call arbitrary code).
_FUNCTIONS = {"quantize_per_tensor": torch.quantize_per_tensor, "quantized.add": torch.ops.quantized.add,
              "quantized.add_relu": torch.ops.quantized.add_relu, "sigmoid": torch.sigmoid,
              "add": operator.add, "mul": operator.mul}
_METHODS = frozenset({"dequantize"})
_DTYPES = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32, "float32": torch.float32}
_OPS = frozenset({"input", "attr", "module", "function", "method", "output"})


def _quantised_conv(conv: nn.Conv2d) -> nn.Module:
    import torch.ao.nn.quantized as nnq

    return nnq.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)


def _quantised_norm(norm: nn.InstanceNorm2d) -> nn.Module:
    import torch.ao.nn.quantized as nnq

    return nnq.InstanceNorm2d(norm.num_features, norm.weight, norm.bias, 1.0, 0, norm.eps, norm.momentum,
                              norm.affine, norm.track_running_stats)


_QUANTISED = {"conv": _quantised_conv, "instance_norm": _quantised_norm}


def _module_kind(module: nn.Module) -> str | None:
    import torch.ao.nn.quantized as nnq

    return {nnq.Conv2d: "conv", nnq.InstanceNorm2d: "instance_norm"}.get(type(module))


def encode_graph(converted: nn.Module, frozen: FrozenNet) -> dict[str, Any]:
    """The converted network's FX graph as plain data for a model file: its operations in order
    (``[op, target, args, kwargs]``, an argument ``{"node": i}`` being operation i's result) and which
    of ``frozen``'s modules became which int8 module."""
    from torch.fx import Node

    index: dict[Node, int] = {}
    modules: dict[str, str] = {}

    def unknown(what: Any) -> ImpastoError:
        return ImpastoError(f"the int8 conversion made an operation this impasto cannot store ({what!r})")

    def arg(value: Any) -> Any:
        if isinstance(value, Node):
            return {"node": index[value]}
        if isinstance(value, torch.dtype):
            name = str(value).removeprefix("torch.")
            if name not in _DTYPES:
                raise unknown(value)
            return {"dtype": name}
        if isinstance(value, (list, tuple)):
            return [arg(item) for item in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise unknown(value)

    nodes = []
    for node in converted.graph.nodes:
        if node.op == "placeholder":
            op, target = "input", None
        elif node.op == "get_attr":
            op, target = "attr", str(node.target)
        elif node.op == "call_module":
            op, target = "module", str(node.target)
            module, float_module = converted.get_submodule(target), frozen.get_submodule(target)
            kind = _module_kind(module)
            if kind is not None:
                modules[target] = kind
            elif type(module) is not type(float_module):
                raise unknown(type(module))
        elif node.op == "call_function":
            op = "function"
            target = next((name for name, function in _FUNCTIONS.items() if function == node.target), None)
            if target is None:
                raise unknown(node.target)
        elif node.op == "call_method" and node.target in _METHODS:
            op, target = "method", str(node.target)
        elif node.op == "output":
            op, target = "output", None
        else:
            raise unknown(f"{node.op} {node.target}")
        nodes.append([op, target, arg(list(node.args)), {key: arg(value) for key, value in node.kwargs.items()}])
        index[node] = len(nodes) - 1
    return {"nodes": nodes, "modules": modules}


class Int8Graph(nn.Module):
    """An int8 network as PyTorch's FX conversion made it, run from its stored graph (no FX): the
    same modules in the same order, so the same pixels, without the tracing and conversion."""

    def __init__(self, frozen: FrozenNet, graph: dict[str, Any], attributes: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for name, child in frozen.named_children():
            self.add_module(name, child)
        for name, kind in graph["modules"].items():
            if kind not in _QUANTISED:
                raise ImpastoError(f"unknown int8 module {kind!r}")
            parent, _, child = name.rpartition(".")
            setattr(self.get_submodule(parent) if parent else self, child, _QUANTISED[kind](self.get_submodule(name)))
        self.nodes: list[tuple[str, Any, Any, Any]] = []
        last_use: dict[int, int] = {}
        for position, (op, target, args, kwargs) in enumerate(graph["nodes"]):
            if op not in _OPS or (op == "function" and target not in _FUNCTIONS) or \
                    (op == "method" and target not in _METHODS):
                raise ImpastoError(f"unknown int8 operation {op} {target!r}")
            if op == "attr" and target not in self._buffers:
                self.register_buffer(target, attributes[target].clone())
            for used in _references((args, kwargs)):
                last_use[used] = position
            self.nodes.append((op, target, args, kwargs))
        #: after operation i, the results no later operation reads (freed as FX's code frees them)
        self.done_with: list[list[int]] = [[] for _ in self.nodes]
        for used, position in last_use.items():
            self.done_with[position].append(used)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        values: list[Any] = [None] * len(self.nodes)

        def value(spec: Any) -> Any:
            if isinstance(spec, dict):
                return values[spec["node"]] if "node" in spec else _DTYPES[spec["dtype"]]
            if isinstance(spec, list):
                return [value(item) for item in spec]
            return spec

        for position, (op, target, args, kwargs) in enumerate(self.nodes):
            args, kwargs = value(args), {key: value(item) for key, item in kwargs.items()}
            if op == "input":
                result = image
            elif op == "attr":
                result = getattr(self, target)
            elif op == "module":
                result = self.get_submodule(target)(*args, **kwargs)
            elif op == "function":
                result = _FUNCTIONS[target](*args, **kwargs)
            elif op == "method":
                result = getattr(args[0], target)(*args[1:], **kwargs)
            else:
                return args[0]
            values[position] = result
            for used in self.done_with[position]:
                values[used] = None
        raise ImpastoError("the stored int8 graph has no output")


def _references(spec: Any) -> Iterator[int]:
    if isinstance(spec, dict):
        if "node" in spec:
            yield int(spec["node"])
        else:
            for item in spec.values():
                yield from _references(item)
    elif isinstance(spec, (list, tuple)):
        for item in spec:
            yield from _references(item)


def build_int8(frozen: FrozenNet, state: dict[str, torch.Tensor], graph: dict[str, Any], recipe: str,
               path: str | os.PathLike | None = None) -> nn.Module:
    """The int8 network of a file from its stored graph and tensors (weights packed once for the
    int8 kernels; nothing traced, observed or converted)."""
    own = {key[len(INT8_PREFIX):]: value for key, value in state.items() if key.startswith(INT8_PREFIX)}
    try:
        with warnings.catch_warnings(), _engine(INT8_ENGINES[recipe]), _one_thread():
            warnings.simplefilter("ignore")  # PyTorch's notes on quantised tensors' future
            network = Int8Graph(frozen, graph, own)
            network.load_state_dict(own)
            _swap_modules(network)
    except (KeyError, RuntimeError, TypeError, ValueError, IndexError) as exc:
        raise ImpastoError(f"model weights do not fit the int8 network ({str(exc).splitlines()[0][:120]})",
                           path) from None
    return network.eval()


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
    """The float weights of an int8 file (its int8 tensors or observers' ranges left aside), norms in
    either layout."""
    own = frozen.state_dict()
    if not set(own) <= set(state):
        raise ImpastoError("model weights do not fit the int8 network", path)
    frozen.load_state_dict({key: state[key].to(own[key].dtype) for key in own})
    _swap_modules(frozen)
    return frozen.eval()


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
