"""Training the AdaIN decoder (:class:`AdainTask`): content loss against the AdaIN target and the
mean/standard-deviation style loss, each VGG layer divided by its typical activation; the loop is
:mod:`impasto.networks.training`'s."""

from __future__ import annotations

import random
from typing import Any, Sequence

import torch
import torch.nn as nn

from impasto.core import images, lattice
from impasto.core.losses import content_loss, mean_std, mean_std_loss, random_shift, shift_consistency, shift_images
from impasto.core.runtime import autocast, default_encoder
from impasto.networks.adain import CELL, ENCODER_LAYER, KIND, STYLE_LAYERS, Decoder, adain, adain_to, with_margin
from impasto.networks.training import ImageFolder, PaintingTask, random_flip

#: Mean activation of the Caffe VGG-19 on natural photos (measured on BSDS500 crops).  The losses
#: divide each layer by it, as the paper's "normalised" VGG did with its weights, so that every
#: layer counts alike and the paper's style weight (10) means what it meant there.
LAYER_SCALE = {"relu1_1": 20.0, "relu2_1": 120.0, "relu3_1": 120.0, "relu4_1": 500.0}
#: Style images of the training set kept out of the shipped decoder's training, for the held-out check.
HELD_OUT_STYLES = ("asheville.jpg", "la_muse.jpg", "picasso_self_portrait.jpg", "starry_night.jpg",
                   "the_scream.jpg", "woman-with-hat-matisse.jpg")

def decoder_losses(decoder: nn.Module, content: torch.Tensor, style: torch.Tensor, device: torch.device,
                   dtype: torch.dtype | None, shift: tuple[int, int] | None = None,
                   shift_count: int | None = None) -> dict[str, torch.Tensor]:
    """The training objective's terms for a batch of (content, style) pairs.

    Content: the decoded image's relu4_1 against the AdaIN target; style: mean and std
    differences on relu1_1..relu4_1; each layer divided by its typical activation squared.
    With ``shift`` (dy, dx), also the shift consistency of the decoded image
    (:func:`impasto.core.losses.shift_consistency`: the photo moved, decoded with the same style), on
    the first ``shift_count`` pairs (all when None).
    """
    encoder = default_encoder(list(STYLE_LAYERS), device)
    with torch.no_grad(), autocast(device, dtype):
        content_features = encoder(content, [ENCODER_LAYER])[ENCODER_LAYER]
        style_features = encoder(style, STYLE_LAYERS)
    style_stats = {name: mean_std(value) for name, value in style_features.items()}
    target = adain_to(content_features, *style_stats[ENCODER_LAYER])
    with autocast(device, dtype):
        output = decoder(target.contiguous(memory_format=torch.channels_last))
        output_features = encoder(output, STYLE_LAYERS)
    scale = LAYER_SCALE
    terms = {
        "content": content_loss(output_features[ENCODER_LAYER], target) / scale[ENCODER_LAYER] ** 2,
        "style": sum(mean_std_loss(output_features[name], *style_stats[name]) / scale[name] ** 2
                     for name in STYLE_LAYERS),
    }
    if shift is not None:
        part = slice(0, shift_count)
        mean, std = (value[part] for value in style_stats[ENCODER_LAYER])

        def paint(moved: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                features = encoder(moved, [ENCODER_LAYER])[ENCODER_LAYER]
            return decoder(adain_to(features, mean, std).contiguous(memory_format=torch.channels_last))

        with autocast(device, dtype):
            terms["shift"] = shift_consistency(paint, content[part], output[part], shift)
    return terms


class AdainTask(PaintingTask):
    """Train the decoder: content loss against the AdaIN target, mean/std style loss on relu1_1..relu4_1."""

    kind = KIND

    def __init__(self, content: ImageFolder, style: ImageFolder, style_weight: float = 10.0,
                 preview: tuple[torch.Tensor, torch.Tensor] | None = None, hold_out: Sequence[str] = (),
                 upsample: str = "nearest", shift_weight: float = 0.0, shift_share: float = 1.0) -> None:
        self.content = content
        self.style = style
        super().__init__(style_weight, shift_weight, shift_share, upsample)
        self.network = Decoder(upsample).to(memory_format=torch.channels_last)
        self._preview = preview
        self.hold_out = sorted(hold_out)

    def setup(self, device: torch.device, dtype: torch.dtype | None) -> None:
        self.content.to(device)
        self.style.to(device)

    def losses(self, network: nn.Module, batch_size: int, rng: random.Random,
               device: torch.device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        content = random_flip(self.content.sample(batch_size, rng), rng).to(device)
        style = random_flip(self.style.sample(batch_size, rng), rng).to(device)
        terms = decoder_losses(network, content, style, device, dtype,
                               shift=random_shift(rng) if self.shift_weight else None,
                               shift_count=shift_images(batch_size, self.shift_share))
        if "shift" in terms:  # reported weighted, as train fast's
            terms["shift"] = self.shift_weight * terms["shift"]
        total = terms["content"] + self.style_weight * terms["style"] + terms.get("shift", 0.0)
        return {"total": total, **{name: value.detach() for name, value in terms.items()}}

    def preview(self, network: nn.Module, device: torch.device) -> torch.Tensor:
        if self._preview is None:
            content = self.content.sample(1, random.Random(0))
            style = self.style.sample(1, random.Random(1))
        else:
            content, style = self._preview
        encoder = default_encoder([ENCODER_LAYER], device)
        padded, (top, left, height, width) = with_margin(content)  # as stylize: no dark band along the edges
        content_f = encoder(padded.to(device), [ENCODER_LAYER])[ENCODER_LAYER]
        style_f = encoder(style.to(device), [ENCODER_LAYER])[ENCODER_LAYER]
        out = network(adain(content_f, style_f).contiguous(memory_format=torch.channels_last)).float()
        out = lattice.remove_lattice(out, CELL)[..., top: top + height, left: left + width].clamp(0, 1)  # as stylize
        h = content.shape[-2]
        style_small = images.resize(style, (h, max(1, round(style.shape[-1] * h / style.shape[-2]))))
        return torch.cat([content.cpu(), style_small.cpu(), out.cpu()], dim=-1)

    def config(self) -> dict[str, Any]:
        return {"encoder": "vgg19/caffe", "encoder_layer": ENCODER_LAYER, "decoder": "vgg19-mirror",
                "upsample": self.upsample}

    def describe(self) -> dict[str, Any]:
        return {
            "content_data": f"{self.content.root.name} ({len(self.content)} images)",
            "style_data": f"{self.style.root.name} ({len(self.style)} images)",
            "crop": self.content.crop,
            "shorter_side": self.content.shorter_side,
            "style_weight": self.style_weight,
            "shift_weight": self.shift_weight,
            "shift_share": self.shift_share,
            "held_out_styles": self.hold_out,
        }
