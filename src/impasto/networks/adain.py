"""Arbitrary style transfer with Adaptive Instance Normalisation (Huang & Belongie 2017).

The frozen VGG-19 backbone encodes the content and the style up to relu4_1; AdaIN moves the
content features' channel means and standard deviations to the style's; a trained decoder turns
the result back into an image.  No per-style training: any style image works at once.

Controls: ``alpha`` interpolates between the content features and the transferred ones; several
styles mix their transferred features with normalised weights; masks give each style its own
region (the content's statistics are then taken per region, so each region is normalised on
its own); ``preserve_color`` keeps the photo's colours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.core import images, lattice
from impasto.core.errors import ImpastoError
from impasto.core.masks import in_regions
from impasto.core.losses import mean_std, normalised
from impasto.core.modelfile import SHIPPED_DIR, load_model, load_weights
from impasto.core.runtime import (autocast, default_encoder, frozen_network, resolve_device, resolve_precision, to_device,
                      weights_in_compute_dtype)
from impasto.core.runtime import cached_engine as runtime_cached_engine

KIND = "adain-decoder"
ENCODER_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DEFAULT_DECODER = SHIPPED_DIR / "adain-decoder.pt"
#: The decoder upsamples three times, so inputs are padded to a multiple of 8.
MULTIPLE = 8
#: Mirrored border added around the photo before encoding (and cropped after decoding): the
#: encoder's zero padding otherwise makes the decoder paint a light frame along the edges.
MARGIN = 32
#: The decoder paints each 8 px cell of relu4_1's grid with nearly the same small pattern at each of
#: its 64 positions (a grid and fine stripes on flat areas, even with bilinear upsampling): the
#: pattern that repeats with the cell is taken out of every painting (:mod:`impasto.core.lattice`;
#: the measurements: docs/figures.md, "Machine marks").
CELL = 8


def with_margin(content: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """The photo with its :data:`MARGIN` (mirrored, to a multiple of 8) and the photo's box in it
    (top, left, height, width), to crop the decoded picture back: how every AdaIN painting sees a photo."""
    return images.pad_around(content, MARGIN, MULTIPLE, minimum=2 * MULTIPLE)


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Content features with the style features' channel-wise mean and std (both ``(N, C, H, W)``)."""
    style_mean, style_std = mean_std(style, eps)
    return adain_to(content, style_mean, style_std, eps)


def adain_to(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor,
             eps: float = 1e-5, mask: torch.Tensor | None = None) -> torch.Tensor:
    """AdaIN to given statistics; with a mask, the content is normalised by the masked region's statistics."""
    content = content.float()
    mean, std = mean_std(content, eps, mask=mask)
    return (content - mean) / std * style_std + style_mean


class Decoder(nn.Module):
    """Mirror of VGG-19 up to relu4_1: 3x3 convs with reflection padding, 2x upsampling.

    Output is RGB in [0, 1] (not clamped, so that training gradients do not vanish).  Upsampling
    is ``nearest`` (the paper's) or ``bilinear``: three nearest stages leave a faint 8 px grid on
    flat areas, which bilinear upsampling does not (``impasto.core.quality.grid`` measures it).
    """

    PLAN = (512, 256, "up", 256, 256, 256, 128, "up", 128, 64, "up", 64, 3)
    UPSAMPLING = ("nearest", "bilinear")

    def __init__(self, upsample: str = "nearest") -> None:
        super().__init__()
        if upsample not in self.UPSAMPLING:
            raise ImpastoError(f"unknown upsampling {upsample!r}; choose {' or '.join(self.UPSAMPLING)}")
        self.upsample = upsample
        layers: list[nn.Module] = []
        channels = self.PLAN[0]
        outputs = [step for step in self.PLAN[1:] if step != "up"]
        last = len(outputs) - 1
        count = 0
        for step in self.PLAN[1:]:
            if step == "up":
                layers.append(nn.Upsample(scale_factor=2, mode=upsample))
                continue
            layers.append(nn.Conv2d(channels, step, 3, padding=1, padding_mode="reflect"))
            if count != last:
                layers.append(nn.ReLU())
            channels = step
            count += 1
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


# ------------------------------------------------------------------------------------- inference


@dataclass
class StyleCode:
    """A style's relu4_1 channel statistics: all the decoder needs (compute once per clip/batch)."""

    mean: torch.Tensor
    std: torch.Tensor


class AdaIN:
    """A loaded encoder/decoder pair on a device; ``stylize`` takes tensors, ``style_code`` caches styles."""

    def __init__(self, decoder: str | os.PathLike | None = None, device: str = "auto",
                 precision: str = "auto", compile: bool = False) -> None:
        path = Path(decoder) if decoder is not None else DEFAULT_DECODER
        if decoder is None and not path.exists():
            raise ImpastoError(
                "no AdaIN decoder ships with this installation; train one with "
                "`impasto train adain --content PHOTOS_DIR --style PAINTINGS_DIR -o decoder.pt` "
                "and pass it with --model decoder.pt"
            )
        model = load_model(path, KIND)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        try:
            self.decoder = Decoder(str(model.config.get("upsample", "nearest")))
        except ImpastoError as exc:
            raise ImpastoError(str(exc), path) from None
        load_weights(self.decoder, model.state_dict, path)
        self.decoder.eval().requires_grad_(False)
        self.decoder.to(self.device, memory_format=torch.channels_last)
        # on a GPU: both networks with bf16/fp16 weights and no autocast (runtime.frozen_network)
        self.encoder, _ = frozen_network(default_encoder([ENCODER_LAYER], self.device), self.device, self.dtype)
        self.weights_dtype = torch.float32
        if weights_in_compute_dtype(self.device, self.dtype):
            self.decoder.to(self.dtype)
            self.weights_dtype, self.dtype = self.dtype, None
        self.content_encoder = self.encoder
        if compile:  # the photo's path through both networks, compiled once per size (styles stay eager)
            self.content_encoder = torch.compile(self.encoder, dynamic=False)
            self.decoder = torch.compile(self.decoder, dynamic=False)
        self.training = model.training
        self.path = path

    @torch.no_grad()
    def encode(self, image: torch.Tensor, encoder: torch.nn.Module | None = None) -> torch.Tensor:
        with autocast(self.device, self.dtype):
            return (encoder if encoder is not None else self.encoder)(to_device(image, self.device),
                                                                      [ENCODER_LAYER])[ENCODER_LAYER].float()

    @torch.no_grad()
    def style_code(self, style: torch.Tensor) -> StyleCode:
        style, _ = images.pad_to_multiple(style, 1, minimum=2 * MULTIPLE)  # a tiny style still has statistics
        mean, std = mean_std(self.encode(style))
        return StyleCode(mean, std)

    @torch.no_grad()
    def stylize(self, content: torch.Tensor, styles: Sequence[StyleCode], weights: Sequence[float] | None = None,
                masks: Sequence[torch.Tensor] | None = None, alpha: float = 1.0) -> torch.Tensor:
        """``content`` ``(1, 3, H, W)`` in [0, 1] -> stylized image of the same size (on the CPU, clamped)."""
        if not 0.0 <= alpha <= 1.0:
            raise ImpastoError(f"alpha must be between 0 and 1, got {alpha}")
        padded, box = with_margin(content)
        top, left, h, w = box
        features = self.encode(padded, self.content_encoder)
        target = transfer(features, styles, weights, _feature_masks(masks, padded.shape[-2:], box, features))
        target = alpha * target + (1.0 - alpha) * features
        with autocast(self.device, self.dtype):
            out = self.decoder(target.to(self.weights_dtype).contiguous(memory_format=torch.channels_last))
        out = lattice.remove_lattice(out.float(), CELL)  # the padded picture's cells are the encoder's
        out = out[..., top: top + h, left: left + w].clamp(0, 1).cpu()
        if masks is not None:  # the regions were painted in the features; outside them, the photo itself
            out = in_regions(out, masks, content.float().cpu())
        return out


def transfer(features: torch.Tensor, styles: Sequence[StyleCode], weights: Sequence[float] | None = None,
             masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """The AdaIN target for one or several styles.

    Without masks: the weighted sum of per-style AdaIN outputs (weights normalised to sum to 1).
    With masks (one per style, at feature resolution): each region gets its own style, with the
    content normalised by that region's statistics; where no mask covers, the content stays.
    """
    if not styles:
        raise ImpastoError("at least one style is needed")
    if masks is None:
        weights = normalised(weights if weights is not None else [1.0] * len(styles), "style weights")
        if len(weights) != len(styles):
            raise ImpastoError(f"{len(weights)} style weights given for {len(styles)} styles")
        return sum(w * adain_to(features, code.mean, code.std) for w, code in zip(weights, styles))
    if len(masks) != len(styles):
        raise ImpastoError(f"{len(masks)} masks given for {len(styles)} styles; give one mask per style")
    total = torch.stack(list(masks)).sum(dim=0)
    scale = total.clamp_min(1.0)  # overlapping masks share their region
    out = features * (1.0 - total.clamp(0, 1))
    for mask, code in zip(masks, styles):
        out = out + mask / scale * adain_to(features, code.mean, code.std, mask=mask)
    return out


def _feature_masks(masks: Sequence[torch.Tensor] | None, padded: tuple[int, int], box: tuple[int, int, int, int],
                   features: torch.Tensor) -> list[torch.Tensor] | None:
    """Each mask on the padded image's geometry (edges extended), averaged down to the features' grid."""
    if masks is None:
        return None
    top, left, h, w = box
    out = []
    for mask in masks:
        full = F.interpolate(mask.float(), size=(h, w), mode="bilinear", align_corners=False)
        full = F.pad(full, (left, padded[1] - w - left, top, padded[0] - h - top), mode="replicate")
        out.append(F.adaptive_avg_pool2d(full, features.shape[-2:]).to(features.device))
    return out


def cached_engine(model: str | os.PathLike | None, device: str, precision: str, compile: bool = False) -> AdaIN:
    """The loaded decoder (the shipped one when ``model`` is None), cached with every other model."""
    path = Path(model) if model is not None else DEFAULT_DECODER
    if model is None and not path.exists():
        return AdaIN(None, device, precision)  # explains that no decoder ships
    return runtime_cached_engine(AdaIN, path, device, precision, compile=compile)
