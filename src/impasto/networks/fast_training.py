"""Training a fast model (:class:`FastTask`): Johnson et al.'s perceptual losses on the shared
backbone, one network for one painting or several (conditional norms), relative content and style
terms and the shift-consistency term; the loop is :mod:`impasto.networks.training`'s."""

from __future__ import annotations

import random
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.edges import edge_consistency, frame_light
from impasto.core.losses import relative_content_loss, total_variation, training_style_loss
from impasto.core.runtime import autocast, default_encoder
from impasto.networks.training import ImageFolder, PaintingTask, random_flip, shift_term
from impasto.networks.transformer import MULTIPLE, TransformerNet
from impasto.networks.fast import KIND

CONTENT_LAYERS = ("relu2_2",)  # Johnson et al.: an early layer keeps the photo's structure
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: Weight of the (relative) style loss against the (relative) content loss; see the recipe
#: experiments in docs/archive/benchmarks-history.md.
DEFAULT_STYLE_WEIGHT = 3.0
#: The style term (Gram matrices, or the sliced Wasserstein distance between feature distributions,
#: on fresh directions each step) and its default weight: both terms are relative, but the distance
#: is smaller than the Gram error for the same painting (adapting Starry Night's norms from the
#: arbitrary network's prediction, weight 10 brought the result closer to the painting where the
#: Gram term at 3 moved it away; docs/archive/benchmarks-history.md).
STYLE_WEIGHTS = {"gram": DEFAULT_STYLE_WEIGHT, "swd": 10.0}
#: Weight of the shift-consistency loss (:func:`impasto.core.losses.shift_consistency`) against the
#: content loss; see "The 4 px lattice" in docs/archive/benchmarks-history.md.
DEFAULT_SHIFT_WEIGHT = 100.0
#: Weight of the edge-consistency loss (:func:`impasto.core.edges.edge_consistency`): off unless
#: asked; a model re-made with it says so in its training record and PROVENANCE.
DEFAULT_EDGE_WEIGHT = 0.0
#: Weight of the frame-light loss (:func:`impasto.core.edges.frame_light`): off unless asked, as
#: the edge term.
DEFAULT_FRAME_WEIGHT = 0.0
#: Share of each batch that the shift-consistency pass paints a second time (see "Training speed"
#: in docs/archive/benchmarks-history.md).
DEFAULT_SHIFT_SHARE = 1.0

class FastTask(PaintingTask):
    """Train a network for one or several styles (Johnson et al.'s perceptual losses on the shared backbone).

    Both losses are relative (each layer divided by its target's own scale; see
    :func:`impasto.core.losses.relative_gram_loss`), so colour, strokes and motifs all count and the
    weights mean the same for any painting.
    """

    kind = KIND

    def __init__(self, content: ImageFolder, styles: Sequence[torch.Tensor], style_names: Sequence[str],
                 width: float = 1.0, content_weight: float = 1.0, style_weight: float = DEFAULT_STYLE_WEIGHT,
                 tv_weight: float = 0.0, preview: torch.Tensor | None = None, output: str = "direct",
                 upsample: str = "nearest", shift_weight: float = DEFAULT_SHIFT_WEIGHT,
                 shift_share: float = DEFAULT_SHIFT_SHARE, style_loss: str = "gram",
                 edge_weight: float = DEFAULT_EDGE_WEIGHT, frame_weight: float = DEFAULT_FRAME_WEIGHT) -> None:
        if not styles:
            raise ImpastoError("give at least one --style image")
        self.loss = training_style_loss(style_loss)
        self.style_loss = self.loss.name
        self.content = content
        self.style_images = list(styles)
        self.style_names = list(style_names)
        self.width = width
        self.output = output
        self.content_weight = content_weight
        self.tv_weight = tv_weight
        self.edge_weight = edge_weight
        self.frame_weight = frame_weight
        super().__init__(style_weight, shift_weight, shift_share, upsample)
        self.network = TransformerNet(len(styles), width, output=output, upsample=upsample).to(
            memory_format=torch.channels_last)
        self._preview = preview
        self._targets: list[dict[str, torch.Tensor]] | None = None
        #: where the weights started, when not from scratch (``arbitrary_training.start_adaptation`` sets it)
        self.start: dict[str, Any] = {}

    def setup(self, device: torch.device, dtype: torch.dtype | None) -> None:
        """The photos onto the device; the styles' targets, once."""
        self.content.to(device)
        self._style_targets(device, dtype)

    def _style_targets(self, device: torch.device, dtype: torch.dtype | None) -> list[dict[str, torch.Tensor]]:
        """Each style's targets on the style layers (its Gram matrices, or its features), computed once."""
        if self._targets is None:
            encoder = default_encoder(list(STYLE_LAYERS), device)
            with torch.no_grad(), autocast(device, dtype):
                self._targets = [{name: self.loss.training_target(features) for name, features in
                                  encoder(style.to(device), STYLE_LAYERS).items()} for style in self.style_images]
        return self._targets

    def _style_term(self, features: dict[str, torch.Tensor], chosen: list[int], rng: random.Random,
                    device: torch.device, dtype: torch.dtype | None) -> torch.Tensor:
        """The batch's style loss, each image against the style it was painted with (the images
        painted with one style together, against it once; each group by its share of the batch)."""
        index = torch.tensor(chosen, device=device)
        targets = self._style_targets(device, dtype)
        drawn = self.loss.draw(rng)
        term = 0.0
        for style in sorted(set(chosen)):
            rows = index == style
            share = float(rows.float().mean())
            term = term + share * sum(self.loss.relative(features[name][rows], targets[style][name], drawn)
                                      for name in STYLE_LAYERS)
        return term

    def losses(self, network: nn.Module, batch_size: int, rng: random.Random,
               device: torch.device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        encoder = default_encoder([*CONTENT_LAYERS, *STYLE_LAYERS], device)
        content = random_flip(self.content.sample(batch_size, rng), rng).to(device)
        count = len(self.style_images)
        chosen = [rng.randrange(count) for _ in range(batch_size)]
        mix = F.one_hot(torch.tensor(chosen), count).float().to(device)
        with torch.no_grad(), autocast(device, dtype):
            content_features = encoder(content, CONTENT_LAYERS)
        with autocast(device, dtype):
            output = network(content.contiguous(memory_format=torch.channels_last), mix)
            features = encoder(output, [*CONTENT_LAYERS, *STYLE_LAYERS])
        content_term = sum(relative_content_loss(features[name], content_features[name]) for name in CONTENT_LAYERS)
        style_term = self._style_term(features, chosen, rng, device, dtype)
        terms = {"content": self.content_weight * content_term, "style": self.style_weight * style_term}
        total = terms["content"] + terms["style"]
        if self.tv_weight:
            terms["tv"] = self.tv_weight * total_variation(output.float())
            total = total + terms["tv"]
        if self.shift_weight:
            terms["shift"] = self.shift_weight * shift_term(lambda moved, part: network(moved, mix[:part]), content,
                                                            output, batch_size, self.shift_share, rng, device, dtype)
            total = total + terms["shift"]
        if self.edge_weight:
            with autocast(device, dtype):
                terms["edge"] = self.edge_weight * edge_consistency(
                    lambda cut: network(cut.contiguous(memory_format=torch.channels_last), mix), content, output)
            total = total + terms["edge"]
        if self.frame_weight:
            terms["frame"] = self.frame_weight * frame_light(output, content)
            total = total + terms["frame"]
        return {"total": total, **{name: value.detach() for name, value in terms.items()}}

    def preview(self, network: nn.Module, device: torch.device) -> torch.Tensor:
        content = self._preview if self._preview is not None else self.content.sample(1, random.Random(0))
        content, (h, w) = images.pad_to_multiple(content, MULTIPLE)
        rows = []
        for index in range(len(self.style_images)):
            mix = F.one_hot(torch.tensor([index]), len(self.style_images)).float().to(device)
            rows.append(network(content.to(device), mix).float().clamp(0, 1)[..., :h, :w].cpu())
        return torch.cat([content[..., :h, :w].cpu(), *rows], dim=-1)

    def config(self) -> dict[str, Any]:
        return {"styles": len(self.style_images), "width": self.width, "residual_blocks": 5,
                "output": self.output, "upsample": self.upsample, "style_names": self.style_names}

    def describe(self) -> dict[str, Any]:
        return {
            "content_data": f"{self.content.root.name} ({len(self.content)} images)",
            "style_images": self.style_names,
            "style_size": max(self.style_images[0].shape[-2:]),
            "crop": self.content.crop,
            "shorter_side": self.content.shorter_side,
            "content_weight": self.content_weight,
            "style_weight": self.style_weight,
            "style_loss": self.style_loss,
            "tv_weight": self.tv_weight,
            "shift_weight": self.shift_weight,
            "shift_share": self.shift_share,
            "edge_weight": self.edge_weight,
            "frame_weight": self.frame_weight,
            "content_layers": list(CONTENT_LAYERS),
            "style_layers": list(STYLE_LAYERS),
            "losses": "relative (each layer divided by its target's mean square)",
            **self.start,
        }
