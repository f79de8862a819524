"""Training the arbitrary-style network (:class:`ArbitraryTask`: the transformer and the style
predictor together, on photos and paintings), and adapting it into a per-style model in minutes
(:func:`start_adaptation`, ``impasto train fast --from-arbitrary``)."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.core import images
from impasto.core.color import rgb_to_ycbcr, ycbcr_to_rgb
from impasto.core.errors import ImpastoError
from impasto.networks.transformer import MULTIPLE, TransformerNet
from impasto.networks.transformer import network_from_config as transformer_from_config
from impasto.core.losses import relative_content_loss, training_style_loss
from impasto.core.modelfile import load_model, load_weights
from impasto.core.runtime import autocast, default_encoder
from impasto.networks.arbitrary import (CODE_LAYERS, CODE_SIZE, KIND, STYLE_SIDE, ArbitraryModel, ArbitraryNet,
                                        StylePredictor)
from impasto.networks.training import ImageFolder, PaintingTask, random_flip, shift_term

#: The losses: content at relu2_2 (the photo's edges) and relu4_2 (its objects: the optimisation
#: method's content layer); style on relu1_1 ... relu4_1 (the layers the quality measure reads).
#: Leaving out relu5_1 saves a third of the backbone's cost per step, which on a CPU is most of it.
CONTENT_LAYERS = ("relu2_2", "relu4_2")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DEFAULT_STYLE_WEIGHT = 3.0
DEFAULT_SHIFT_WEIGHT = 100.0
DEFAULT_SHIFT_SHARE = 0.25


def adapted_network(model: ArbitraryModel, codes: Sequence[torch.Tensor]) -> TransformerNet:
    """A transformer for ``len(codes)`` paintings with the model's convolutions and, as each
    painting's norms, what the model predicts for its code: the start of a per-style model
    (``impasto train fast --from-arbitrary``).  ``model`` loaded in float32 (as
    :func:`start_adaptation` does): a bf16 model's convolutions are rounded."""
    network = TransformerNet(len(codes), float(model.config["width"]),
                             upsample=str(model.config.get("upsample", "nearest")))
    shared = {name: value for name, value in model.network.transformer.state_dict().items()
              if not name.endswith(NORM_PARAMETERS)}
    network.load_state_dict(shared, strict=False)
    with torch.no_grad():
        for row, code in enumerate(codes):
            for name, value in model.norms(code).items():
                network.get_parameter(name)[row].copy_(value.reshape(-1).cpu())
    return network


#: The names of the parameters the style predictor sets (a per-style model's own, when adapted).
NORM_PARAMETERS = ("norm.scale", "norm.shift")


def start_adaptation(task: Any, model: str | os.PathLike | None = None, norms_only: bool = True) -> None:
    """Make a per-style training task (:class:`impasto.networks.fast_training.FastTask`, one painting or
    several) start from what the arbitrary network predicts for each painting; with ``norms_only``
    only the norms train (the convolutions stay the shared ones), which is what makes minutes enough."""
    engine = ArbitraryModel(model, "cpu", "fp32")
    if float(engine.config["width"]) != task.width or task.output != "direct" or task.upsample != str(
            engine.config.get("upsample", "nearest")):
        raise ImpastoError(f"the per-style network must match the arbitrary one (width {engine.config['width']}, "
                           "direct output, its upsampling)", engine.path)
    codes = [engine.style_code(images.resize_max_side(style, STYLE_SIDE)) for style in task.style_images]
    task.network.load_state_dict(adapted_network(engine, codes).state_dict())
    for name, parameter in task.network.named_parameters():
        parameter.requires_grad_(not norms_only or name.endswith(NORM_PARAMETERS))
    task.start = {"from_arbitrary": engine.path.name, "trained": "norms" if norms_only else "all"}


def turn_hue(image: torch.Tensor, angle: float, saturation: float = 1.0) -> torch.Tensor:
    """Rotate the chroma of ``image`` by ``angle`` radians in YCbCr and scale it by ``saturation``."""
    ycc = rgb_to_ycbcr(image)
    cos, sin = math.cos(angle) * saturation, math.sin(angle) * saturation
    cb, cr = ycc[:, 1:2], ycc[:, 2:3]
    return ycbcr_to_rgb(torch.cat([ycc[:, :1], cos * cb - sin * cr, sin * cb + cos * cr], dim=1)).clamp(0, 1)


def jitter_photo(image: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Mild brightness, contrast and saturation changes (photos as cameras give them)."""
    out = image * rng.uniform(0.85, 1.15)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * rng.uniform(0.8, 1.2) + mean
    return turn_hue(out.clamp(0, 1), rng.uniform(-0.1, 0.1), rng.uniform(0.7, 1.3))


def random_turn(batch: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Each square crop turned by a random multiple of 90 degrees."""
    return torch.stack([image.rot90(rng.randrange(4), dims=(-2, -1)) for image in batch])


def random_zoom(batch: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    """Each crop cut to a random square of ``size`` .. its own size and scaled to ``size``: scales vary."""
    side = batch.shape[-1]
    out = []
    for image in batch:
        window = rng.randrange(size, side + 1)
        top, left = rng.randrange(side - window + 1), rng.randrange(side - window + 1)
        crop = image[None, :, top: top + window, left: left + window]
        out.append(crop[0] if window == size else
                   F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0])
    return torch.stack(out)


class ArbitraryTask(PaintingTask):
    """Train the transformer network and the style predictor on folders of photos and paintings."""

    kind = KIND

    def __init__(self, content: ImageFolder, style: ImageFolder, crop: int, width: float = 0.5,
                 style_weight: float = DEFAULT_STYLE_WEIGHT, shift_weight: float = DEFAULT_SHIFT_WEIGHT,
                 shift_share: float = DEFAULT_SHIFT_SHARE, procedural: int = 32, hold_out: Sequence[str] = (),
                 start_from: str | os.PathLike | None = None, preview: torch.Tensor | None = None,
                 style_loss: str = "gram", upsample: str = "bilinear") -> None:
        self.loss = training_style_loss(style_loss)
        self.style_loss = self.loss.name
        self.content = content  # crops of 1.5 x crop, zoomed to crop
        self.style = style
        self.crop = crop
        self.width = width
        super().__init__(style_weight, shift_weight, shift_share, upsample)
        self.procedural_count = procedural
        self.hold_out = sorted(hold_out)
        self.network = ArbitraryNet(width, upsample)
        self.network.transformer.to(memory_format=torch.channels_last)
        self.start_from = Path(start_from).name if start_from is not None else None
        if start_from is not None:
            self._start_from(start_from)
        self._procedural: list[torch.Tensor] = []
        self._preview = preview

    def _start_from(self, path: str | os.PathLike) -> None:
        """Convolutions from a trained feed-forward model of the same width; the predictor's bias
        from its norms (their mean over its styles)."""
        model = load_model(path, "fast")
        if float(model.config.get("width", 0)) != self.width or model.config.get("output", "residual") != "direct":
            raise ImpastoError(f"starts only from a direct-output feed-forward model of width {self.width}", path)
        network = transformer_from_config(model.config, path)
        load_weights(network, model.state_dict, Path(path))
        state = {k: v for k, v in network.state_dict().items() if not k.endswith(("norm.scale", "norm.shift"))}
        self.network.transformer.load_state_dict(state, strict=False)
        norms = dict(network.named_modules())
        scales = [norms[name].scale.mean(0) for name, _ in self.network.predictor.norms]
        shifts = [norms[name].shift.mean(0) for name, _ in self.network.predictor.norms]
        with torch.no_grad():
            self.network.predictor.head.bias.copy_(torch.cat([*scales, *shifts]))

    def setup(self, device: torch.device, dtype: torch.dtype | None) -> None:
        from impasto.core.samples import PALETTES, painted_style

        self.content.to(device)
        self.style.to(device)
        side = self.style.shorter_side
        palettes = sorted(PALETTES)
        self._procedural = [images.pil_to_tensor(painted_style(side, seed=1000 + i, strokes=int(6000 * (side / 512) ** 2),
                                                               palette=palettes[i % len(palettes)])).to(device)
                            for i in range(self.procedural_count)]

    def _styles(self, count: int, rng: random.Random, device: torch.device) -> torch.Tensor:
        """Painting crops (one in eight procedural, when there are any), flipped, turned, hue-turned."""
        crops = []
        for _ in range(count):
            if self._procedural and rng.random() < 0.125:
                image = self._procedural[rng.randrange(len(self._procedural))]
                size = self.style.crop
                top = rng.randrange(image.shape[-2] - size + 1)
                left = rng.randrange(image.shape[-1] - size + 1)
                crops.append(image[..., top: top + size, left: left + size])
            else:
                crops.append(self.style.sample(1, rng))
        batch = random_turn(random_flip(torch.cat(crops).to(device), rng), rng)
        out = []
        for image in batch:
            if rng.random() < 0.5:
                image = turn_hue(image[None], rng.uniform(-math.pi, math.pi), rng.uniform(0.8, 1.2))[0]
            out.append(image)
        return torch.stack(out)

    def losses(self, network: nn.Module, batch_size: int, rng: random.Random,
               device: torch.device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        encoder = default_encoder([*CONTENT_LAYERS, *STYLE_LAYERS], device)
        content = random_zoom(self.content.sample(batch_size, rng), self.crop, rng)
        content = jitter_photo(random_turn(random_flip(content, rng), rng), rng).to(device)
        styles = self._styles(batch_size, rng, device)
        with torch.no_grad(), autocast(device, dtype):
            content_features = encoder(content, CONTENT_LAYERS)
            style_features = encoder(styles, STYLE_LAYERS)
            targets = {name: self.loss.training_target(style_features[name]) for name in STYLE_LAYERS}
        statistics = StylePredictor.statistics(style_features)
        with autocast(device, dtype):
            output = network(content.contiguous(memory_format=torch.channels_last), statistics)
            features = encoder(output, [*CONTENT_LAYERS, *STYLE_LAYERS])
        content_term = sum(relative_content_loss(features[n], content_features[n]) for n in CONTENT_LAYERS)
        drawn = self.loss.draw(rng)
        style_term = sum(self.loss.relative(features[n], targets[n], drawn) for n in STYLE_LAYERS)
        terms = {"content": content_term, "style": self.style_weight * style_term}
        total = terms["content"] + terms["style"]
        if self.shift_weight:
            terms["shift"] = self.shift_weight * shift_term(lambda moved, part: network(moved, statistics[:part]),
                                                            content, output, batch_size, self.shift_share, rng, device,
                                                            dtype)
            total = total + terms["shift"]
        return {"total": total, **{name: value.detach() for name, value in terms.items()}}

    def preview(self, network: nn.Module, device: torch.device) -> torch.Tensor:
        """The preview photo beside four paintings' results (each painting shown small above its result)."""
        photo = self._preview if self._preview is not None else self.content.sample(1, random.Random(0))
        photo, (h, w) = images.pad_to_multiple(photo, MULTIPLE)
        encoder = default_encoder(list(CODE_LAYERS), device)
        columns = [photo[..., :h, :w].cpu()]
        for index in range(4):
            style = self.style.sample(1, random.Random(index))
            statistics = StylePredictor.statistics(encoder(style.to(device), CODE_LAYERS))
            out = network(photo.to(device), statistics).float().clamp(0, 1)[..., :h, :w].cpu()
            thumb = images.resize(style.cpu(), (h // 3, h // 3))
            out[..., : h // 3, : h // 3] = thumb
            columns.append(out)
        return torch.cat(columns, dim=-1)

    def config(self) -> dict[str, Any]:
        return {"width": self.width, "upsample": self.upsample, "residual_blocks": 5, "hidden": 512, "code": CODE_SIZE,
                "code_layers": list(CODE_LAYERS), "style_side": STYLE_SIDE}

    def describe(self) -> dict[str, Any]:
        return {
            "content_data": f"{self.content.root.name} ({len(self.content)} images)",
            "style_data": f"{self.style.root.name} ({len(self.style)} images) + {self.procedural_count} procedural",
            "crop": self.crop,
            "shorter_side": self.content.shorter_side,
            "style_crop": self.style.crop,
            "style_shorter_side": self.style.shorter_side,
            "style_weight": self.style_weight,
            "style_loss": self.style_loss,
            "upsample": self.upsample,
            "shift_weight": self.shift_weight,
            "shift_share": self.shift_share,
            "content_layers": list(CONTENT_LAYERS),
            "style_layers": list(STYLE_LAYERS),
            "augmentation": "zoom 1-1.5x, flips, quarter turns, photo colour jitter, painting hue turns",
            "held_out_styles": self.hold_out,
            "start_from": self.start_from,
        }
