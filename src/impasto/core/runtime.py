"""Where and in what precision the networks run: device choice, bf16/fp16 autocast, cached backbones
and loaded models.

Shared by every method so that "auto" means the same thing for optimisation, training and
inference.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from impasto.core.backbone import VGG, layer_names, load_backbone
from impasto.core.errors import ImpastoError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


#: glibc malloc settings for CPU inference (bytes): blocks up to ``mmap`` come from the heap and
#: up to ``trim`` of freed heap is kept for the next call (glibc's defaults start at 128 KiB each).
#: A 1080p frame's maps reach 132 MB (32 channels in bf16) and its call about 400 MB in all: with
#: 64 / 256 MB every such map was fresh from the system, each call again (docs/archive/benchmarks-history.md).
MALLOC_MMAP_THRESHOLD = 256 << 20
MALLOC_TRIM_THRESHOLD = 512 << 20


@functools.lru_cache(maxsize=None)
def reuse_freed_memory() -> bool:
    """Let glibc's malloc hand the next call the feature maps the last one freed.

    A network's call allocates and frees the same large maps every time (12 MB each for a 512 px
    image); by default glibc gives blocks that large straight from the system and back, so every
    call pays a page fault per 4 KiB of each, which can cost more than the work itself (a
    reflection pad of a full-size map, for one).  Kept in the heap instead, the maps are reused
    (the measurement: docs/archive/benchmarks-history.md); the process keeps up to
    :data:`MALLOC_TRIM_THRESHOLD` of freed memory for reuse.  Elsewhere than glibc, nothing
    changes.  True when the settings were taken."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
        return bool(libc.mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
                    and libc.mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; asking for an absent device is an error.
    Running on the CPU also sets its allocator for networks (:func:`reuse_freed_memory`)."""
    device = _device(name)
    if device.type == "cpu":
        reuse_freed_memory()
    return device


def _device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ImpastoError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps", parameter="device") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ImpastoError("CUDA was asked for but is not available (no GPU, or PyTorch built without CUDA)", parameter="device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ImpastoError(f"CUDA device {device.index} asked for, but only {torch.cuda.device_count()} present", parameter="device")
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ImpastoError("MPS was asked for but is not available on this machine", parameter="device")
    elif device.type != "cpu":
        raise ImpastoError(f"unsupported device {name!r}; use auto, cpu, cuda or mps", parameter="device")
    return device


def cpu_has_fast_bf16() -> bool:
    """True when this CPU has native bf16 arithmetic (AVX-512 BF16 or AMX), where autocast pays off."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the backbone (None = float32).  Losses are always float32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def weights_in_compute_dtype(device: torch.device, dtype: torch.dtype | None, gradients: bool = False) -> bool:
    """Whether a frozen network runs with its weights converted to the compute dtype once, instead
    of under autocast (which casts every weight again at every call: on a GPU a kernel per weight per
    call, on a CPU a copy).  On a GPU with bf16/fp16, every network.  On a bf16 CPU, the networks
    that only paint (the one-pass methods' networks and encoders, which run faster so: the
    measurement is in docs/archive/benchmarks-history.md); a backbone
    whose ``gradients`` the optimising methods follow keeps autocast there (its gradient agrees a
    little better with float32's: cosine 0.96 against 0.94)."""
    return dtype is not None and (device.type == "cuda" or not gradients)


_COMPUTE_COPIES: dict[tuple[int, torch.dtype], torch.nn.Module] = {}


def compute_copy(network: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A frozen copy of a shared network (the backbone) with its weights in ``dtype``, made once per
    network and dtype; the shared float32 network stays as it is for its other users."""
    import copy

    key = (id(network), dtype)
    if key not in _COMPUTE_COPIES:
        _COMPUTE_COPIES[key] = copy.deepcopy(network).to(dtype).requires_grad_(False)
    return _COMPUTE_COPIES[key]


def frozen_network(network: torch.nn.Module, device: torch.device, dtype: torch.dtype | None,
                   gradients: bool = False) -> tuple[torch.nn.Module, Callable[[], contextlib.AbstractContextManager]]:
    """A shared frozen network and the context to call it in: its compute-dtype copy and no autocast
    where :func:`weights_in_compute_dtype`, else itself under autocast."""
    if weights_in_compute_dtype(device, dtype, gradients):
        return compute_copy(network, dtype), contextlib.nullcontext
    return network, functools.partial(autocast, device, dtype)


_COMPILED: dict[int, torch.nn.Module] = {}


def compiled_network(network: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile`` of a shared frozen network, made once per network (each new input shape
    compiles once more, so a run's pyramid levels each compile once and later runs reuse them)."""
    key = id(network)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(network, dynamic=False)
    return _COMPILED[key]


def to_device(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``tensor`` onto ``device``; from the CPU to a GPU through pinned memory, asynchronously (the
    host goes on queueing work while the copy runs)."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        tensor = tensor.pin_memory()
        return tensor.to(device, dtype=dtype, non_blocking=True)
    return tensor.to(device, dtype=dtype)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@functools.lru_cache(maxsize=4)
def _cached_backbone(arch: str, weights: str, pooling: str, last_layer: str, padding: str = "zeros") -> VGG:
    return load_backbone(arch, weights, pooling, last_layer, padding)


def get_backbone(
    arch: str, weights: str | os.PathLike, pooling: str, layers: Sequence[str], device: torch.device,
    padding: str = "zeros",
) -> VGG:
    """The frozen backbone, built up to the deepest of ``layers``, on ``device`` (cached on the CPU)."""
    all_names = layer_names(arch)
    last = max(layers, key=all_names.index)
    model = _cached_backbone(arch, os.fspath(weights), pooling, last, padding)
    return model.to(device)


def default_encoder(layers: Sequence[str], device: torch.device) -> VGG:
    """The loss network the trained methods and the quality measures share: the original Caffe
    VGG-19 with max pooling (the one their papers use; offline weights)."""
    return get_backbone("vgg19", "caffe", "max", layers, device)


_ENGINES: dict[tuple, object] = {}


def cached_engine(factory: Callable[..., Any], path: str | os.PathLike | None, device: str = "auto",
                  precision: str = "auto", **options: Any) -> Any:
    """One loaded model per (kind, file and its modification time, device, precision), for every
    method that loads one: loading costs more than stylizing a 512 px image.  A file that changed
    on disk (a training run writing it again) is loaded afresh."""
    stamp = None
    if path is not None and Path(path).exists():
        stamp = Path(path).stat().st_mtime_ns
    key = (factory.__module__, factory.__qualname__, None if path is None else os.fspath(path), stamp, device, precision,
           tuple(sorted(options.items())))
    if key not in _ENGINES:
        _ENGINES[key] = factory(path, device, precision, **options)
    return _ENGINES[key]


_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("impasto_cancel", default=None)


@contextlib.contextmanager
def cancellable(event: threading.Event):
    """Work run inside stops soon after ``event`` is set (a studio's Stop, a closed tab), as on Ctrl-C."""
    token = _CANCEL.set(event)
    try:
        yield
    finally:
        _CANCEL.reset(token)


def check_cancelled() -> None:
    """Raise KeyboardInterrupt if the surrounding :func:`cancellable` event is set.

    Called before every loss evaluation, so a stop takes effect within one evaluation, not one
    optimiser iteration (an L-BFGS line search can evaluate many times)."""
    event = _CANCEL.get()
    if event is not None and event.is_set():
        raise KeyboardInterrupt
