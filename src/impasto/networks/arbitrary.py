"""Any painting in one pass of a small network (after Ghiasi et al. 2017, Magenta's arbitrary stylization).

A *style predictor* turns a painting into a short *style code*: the channel means and standard
deviations of the frozen VGG-19 at relu1_1 ... relu4_1 (what AdaIN transfers), through a small
MLP, down to :data:`CODE_SIZE` numbers.  A linear head turns the code into the scale and shift of
every conditional instance norm of the feed-forward transformer network of :mod:`impasto.networks.fast`
(the same network the trained per-style models use).  So:

* the photo never goes through VGG at inference: one pass of the small network paints it, at any
  size; the painting's code is computed once (one VGG pass over a 256 px copy) and reused for a
  clip, a folder or a camera;
* codes live in one space: several paintings blend by mixing their codes, and a walk from one
  code to another moves smoothly between styles;
* a painting's predicted norms are a starting point for a per-style model
  (:func:`adapted_network`): a few minutes of training only the norms gives a plain ``fast``
  model of that painting.

Training (:class:`ArbitraryTask`) draws photos and paintings from folders, with crops at several
scales, flips and quarter turns, colour jitter on the photos, hue turns of the paintings, and
procedural brushstroke paintings (:func:`impasto.core.samples.painted_style`) to widen what the
predictor has seen; the losses are the feed-forward models' (relative content and Gram losses on
the shared backbone, plus shift consistency).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
from torch.func import functional_call

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.masks import in_regions
from impasto.networks.transformer import MULTIPLE, ConditionalInstanceNorm, TransformerNet, without_lattice
from impasto.core.losses import mean_std, normalised
from impasto.core.modelfile import SHIPPED_DIR, load_model, load_weights
from impasto.core.runtime import (autocast, default_encoder, frozen_network, resolve_device, resolve_precision, to_device,
                      weights_in_compute_dtype)


KIND = "arbitrary"
DEFAULT_MODEL = SHIPPED_DIR / "arbitrary.pt"
#: The backbone layers whose channel statistics describe a painting (AdaIN's).
CODE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CODE_CHANNELS = (64, 128, 256, 512)
#: Typical activation of each code layer (as in :data:`impasto.networks.adain.LAYER_SCALE`): the statistics
#: are divided by it so that every layer enters the predictor at about unit size.
CODE_SCALE = (20.0, 120.0, 120.0, 500.0)
#: Length of a style code (Ghiasi et al.'s bottleneck).
CODE_SIZE = 100
#: Long side of a painting when its code is computed (``style_scale`` multiplies it).
STYLE_SIDE = 256


def norm_layers(network: nn.Module) -> list[tuple[str, int]]:
    """The network's conditional instance norms, in order: (module name, channels)."""
    return [(name, module.scale.shape[1]) for name, module in network.named_modules()
            if isinstance(module, ConditionalInstanceNorm)]


class StylePredictor(nn.Module):
    """Channel statistics of a painting's VGG features -> style code -> every norm's scale and shift.

    The head starts at zero weight with the transformer's own norms as its bias, so an untrained
    predictor paints every painting as the network it was built from would.
    """

    def __init__(self, norms: Sequence[tuple[str, int]], hidden: int = 512, code: int = CODE_SIZE) -> None:
        super().__init__()
        self.norms = list(norms)
        statistics = 2 * sum(CODE_CHANNELS)
        self.encode = nn.Sequential(nn.Linear(statistics, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, code))
        channels = sum(c for _, c in self.norms)
        self.head = nn.Linear(code, 2 * channels)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.cat([torch.ones(channels), torch.zeros(channels)]))

    @staticmethod
    def statistics(features: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(N, 2 x 960)``: per code layer, the channel means and standard deviations, scaled."""
        parts = []
        for name, scale in zip(CODE_LAYERS, CODE_SCALE):
            mean, std = mean_std(features[name])
            parts += [mean.flatten(1) / scale, std.flatten(1) / scale]
        return torch.cat(parts, dim=1)

    def code(self, statistics: torch.Tensor) -> torch.Tensor:
        return self.encode(statistics.float())

    def norm_parameters(self, code: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"<norm>.scale": (N, C), "<norm>.shift": (N, C), ...}`` for :func:`paint`."""
        values = self.head(code.float())
        channels = sum(c for _, c in self.norms)
        scales, shifts = values[:, :channels], values[:, channels:]
        out, start = {}, 0
        for name, count in self.norms:
            out[f"{name}.scale"] = scales[:, start: start + count]
            out[f"{name}.shift"] = shifts[:, start: start + count]
            start += count
        return out


class ArbitraryNet(nn.Module):
    """The transformer network and the style predictor, trained together."""

    def __init__(self, width: float = 0.5, upsample: str = "nearest", hidden: int = 512,
                 code: int = CODE_SIZE) -> None:
        super().__init__()
        self.transformer = TransformerNet(1, width, upsample=upsample)
        self.predictor = StylePredictor(norm_layers(self.transformer), hidden, code)

    def forward(self, image: torch.Tensor, statistics: torch.Tensor) -> torch.Tensor:
        """Paint ``image`` with the styles whose :meth:`StylePredictor.statistics` are given (one row per
        image, or one for all): the whole path that training differentiates."""
        return paint(self.transformer, image, self.predictor.norm_parameters(self.predictor.code(statistics)))


def paint(transformer: TransformerNet, image: torch.Tensor, norms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The transformer with the given norm parameters, one row per image or one row for all.

    The network's conditional norms compute ``mix @ scale``; with ``scale`` replaced by the rows
    of ``norms`` and ``mix`` the identity (one row per image) or a column of ones (one row for a
    whole batch), each image gets its own style without a second copy of the network."""
    n = image.shape[0]
    rows = next(iter(norms.values())).shape[0]
    if rows == n:
        mix = torch.eye(n, device=image.device)
    elif rows == 1:
        mix = torch.ones(n, 1, device=image.device)
    else:
        raise ImpastoError(f"{rows} sets of norm parameters for {n} images")
    return functional_call(transformer, norms, (image, mix), strict=False)


# ------------------------------------------------------------------------------------- inference


def network_from_config(config: dict[str, Any], path: str | os.PathLike | None = None) -> ArbitraryNet:
    try:
        return ArbitraryNet(float(config["width"]), str(config.get("upsample", "nearest")),
                            int(config.get("hidden", 512)), int(config.get("code", CODE_SIZE)))
    except (KeyError, TypeError, ValueError):
        raise ImpastoError("model file has an incomplete configuration", path) from None


class ArbitraryModel:
    """A loaded arbitrary-style network on a device: ``style_code`` once per painting, ``stylize`` per photo."""

    def __init__(self, path: str | os.PathLike | None = None, device: str = "auto", precision: str = "auto",
                 compile: bool = False) -> None:
        path = Path(path) if path is not None else DEFAULT_MODEL
        if not path.exists() and path == DEFAULT_MODEL:
            raise ImpastoError("no arbitrary-style network ships with this installation; train one with "
                               "`impasto train arbitrary --content PHOTOS_DIR --style PAINTINGS_DIR -o any.pt` "
                               "and pass it with --model any.pt")
        model = load_model(path, KIND)
        self.network = network_from_config(model.config, path)
        load_weights(self.network, model.state_dict, path)
        self.network.eval().requires_grad_(False)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)  # autocast's, or None
        self.network.to(self.device)
        self.network.transformer.to(memory_format=torch.channels_last)
        self.weights_dtype = torch.float32
        if weights_in_compute_dtype(self.device, self.dtype):  # bf16/fp16 weights once, no autocast
            self.network.transformer.to(self.dtype)
            self.weights_dtype = self.dtype
        self.transformer: nn.Module = self.network.transformer
        if compile:
            self.transformer = torch.compile(self.transformer, dynamic=False)
        self.config = model.config
        self.training = model.training
        self.path = path

    @torch.no_grad()
    def style_code(self, style: torch.Tensor) -> torch.Tensor:
        """``(1, CODE_SIZE)``: the painting's code (the painting as given; the caller sizes it)."""
        style, _ = images.pad_to_multiple(style, 1, minimum=32)  # a tiny style still has statistics
        encoder, cast = frozen_network(default_encoder(list(CODE_LAYERS), self.device), self.device, self.dtype)
        with cast():
            features = encoder(to_device(style, self.device, next(encoder.parameters()).dtype), CODE_LAYERS)
        return self.network.predictor.code(StylePredictor.statistics(features)).cpu()

    @torch.no_grad()
    def norms(self, code: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.network.predictor.norm_parameters(code.to(self.device))

    @torch.no_grad()
    def stylize(self, content: torch.Tensor, codes: Sequence[torch.Tensor], weights: Sequence[float] | None = None,
                masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """``content`` ``(N, 3, H, W)`` in [0, 1] -> painted, same size, clamped, on the CPU.

        Without masks, the codes blend with normalised ``weights`` (one network pass); with masks
        (one per code, ``(1, 1, h, w)`` at any size), each region is painted with its own code and
        where no mask covers the photo stays."""
        if not codes:
            raise ImpastoError("at least one style is needed")
        if masks is None:
            weights = normalised(weights if weights is not None else [1.0] * len(codes), "style weights")
            if len(weights) != len(codes):
                raise ImpastoError(f"{len(weights)} style weights given for {len(codes)} styles", parameter="style_blend")
            return self._paint(content, sum(w * code for w, code in zip(weights, codes)))
        if len(masks) != len(codes):
            raise ImpastoError(f"{len(masks)} masks given for {len(codes)} styles; give one mask per style",
                               parameter="masks")
        return in_regions([self._paint(content, code) for code in codes], masks, content)

    def _paint(self, content: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        padded, (h, w) = images.pad_to_multiple(content, MULTIPLE, minimum=2 * MULTIPLE)
        norms = self.norms(code)
        converted = self.weights_dtype != torch.float32
        with autocast(self.device, None if converted else self.dtype):
            out = paint(self.transformer, to_device(padded, self.device, self.weights_dtype).contiguous(
                memory_format=torch.channels_last), norms)
        out = without_lattice(out.float(), self.config.get("upsample", "nearest"))
        return out[..., :h, :w].clamp(0, 1).cpu()


def style_side(style_scale: float = 1.0) -> int:
    return max(32, round(STYLE_SIDE * style_scale))
