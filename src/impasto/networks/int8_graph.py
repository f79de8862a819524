"""An int8 network stored as plain tensors and a list of operations, run without FX: what makes
loading an int8 file cheap (:mod:`impasto.networks.int8` makes the file and decides when it runs;
its ``FrozenNet``, the float network with its blend built in, is the ``frozen`` these functions take)."""

from __future__ import annotations

import contextlib
import operator
import os
import pickle
import warnings
from typing import Any, Iterator

import torch
import torch.nn as nn

from impasto.core.errors import ImpastoError
from impasto.networks.transformer import channels_last_instance_norm

#: PyTorch's quantised engine for each int8 recipe a model file may record.
INT8_ENGINES = {"int8-onednn": "onednn", "int8-x86": "x86"}


@contextlib.contextmanager
def engine(name: str) -> Iterator[None]:
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
def one_thread() -> Iterator[None]:
    """One CPU thread while weights are packed: oneDNN's packing of one convolution's weights is a
    tiny parallel job, and with more threads each packing waited for every core to be free, which
    on a busy CPU made loading far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)



#: Where an int8 file kept its converted network's tensors (files before the packed form).
INT8_PREFIX = "int8."
#: Where an int8 file keeps them now: one uint8 tensor holding them all (saved with ``torch.save``),
#: read only where the int8 network runs; a file that runs its float network here loads as fast as
#: the float model (its hundreds of small quantised tensors were most of the file's loading).
INT8_PACKED = "int8_packed"


def pack_int8(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """The converted network's tensors as one uint8 tensor (:data:`INT8_PACKED`)."""
    import io

    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8).clone()


def int8_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The converted network's tensors of an int8 file's state: packed, or under the old prefix."""
    if INT8_PACKED not in state:
        return {key[len(INT8_PREFIX):]: value for key, value in state.items() if key.startswith(INT8_PREFIX)}
    import io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's notes on quantised tensors' future
        found = torch.load(io.BytesIO(state[INT8_PACKED].numpy().tobytes()), map_location="cpu", weights_only=True)
    if not isinstance(found, dict):
        raise ValueError("the packed int8 tensors are not a dictionary")
    return found
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


def encode_graph(converted: nn.Module, frozen: nn.Module) -> dict[str, Any]:
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

    def __init__(self, frozen: nn.Module, graph: dict[str, Any], attributes: dict[str, torch.Tensor]) -> None:
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


def build_int8(frozen: nn.Module, state: dict[str, torch.Tensor], graph: dict[str, Any], recipe: str,
               path: str | os.PathLike | None = None) -> nn.Module:
    """The int8 network of a file from its stored graph and tensors (weights packed once for the
    int8 kernels; nothing traced, observed or converted)."""
    try:
        own = int8_tensors(state)
        with warnings.catch_warnings(), engine(INT8_ENGINES[recipe]), one_thread():
            warnings.simplefilter("ignore")  # PyTorch's notes on quantised tensors' future
            network = Int8Graph(frozen, graph, own)
            network.load_state_dict(own)
            swap_modules(network)
    except (KeyError, RuntimeError, TypeError, ValueError, IndexError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise ImpastoError(f"model weights do not fit the int8 network ({str(exc).splitlines()[0][:120]})",
                           path) from None
    return network.eval()


def swap_modules(network: nn.Module) -> None:
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


def float_frozen(frozen: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike | None) -> nn.Module:
    """The float weights of an int8 file (its int8 tensors or observers' ranges left aside), norms in
    either layout."""
    own = frozen.state_dict()
    if not set(own) <= set(state):
        raise ImpastoError("model weights do not fit the int8 network", path)
    frozen.load_state_dict({key: state[key].to(own[key].dtype) for key in own})
    swap_modules(frozen)
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
