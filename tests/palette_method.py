"""A fifth method, made only for the tests: the photo's colour statistics moved to the paintings'
(each channel's mean and spread, after Reinhard et al. 2001).

It shows what a new method takes: this file and one line in the registry (``test_methods`` adds
it), and every contract test runs for it.  Built on the painter the any-painting methods share,
it only says what a painting's code is and how codes become the picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from impasto.core import images
from impasto.core.losses import normalised, resize_mask
from impasto.methods import Request, check
from impasto.methods.style_codes import StyleCodePainter


class ChannelStatistics:
    """The "engine": a painting's code is its channels' means and spreads."""

    path = Path(__file__)  # what a clip's recipe records as the model

    def style_code(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = image.flatten(2)
        return pixels.mean(2)[..., None, None], pixels.std(2)[..., None, None] + 1e-3


@dataclass
class PaletteSettings:
    """The method's own settings: the command line gets ``--palette-contrast`` from this alone."""

    contrast: float = field(default=1.0, metadata={"help": "the paintings' spread of each channel, times this"})


class Palette:
    name = "palette"
    label = "Palette (a test method)"
    summary = "the photo's colour statistics moved to the paintings'"
    uses_styles = True
    model_kind = None
    model_required = False
    default_strength = 1.0
    one_pass = True
    options = PaletteSettings
    quick_options: dict = {}

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "PalettePainter":
        check(self, styles, request)
        return PalettePainter(styles, request)


class PalettePainter(StyleCodePainter):
    recipe_name = "palette"

    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        super().__init__(ChannelStatistics(), styles, request, Palette.default_strength)
        self.contrast = (request.options or PaletteSettings()).contrast

    def style_side(self, height: int, width: int) -> int | None:
        return 64

    def render(self, content: torch.Tensor, codes: list) -> torch.Tensor:
        mean, spread = self.engine.style_code(content)
        standard = (content - mean) / spread

        def painted(weights: Sequence[float]) -> torch.Tensor:
            target_mean = sum(w * code[0] for w, code in zip(weights, codes))
            target_spread = sum(w * code[1] for w, code in zip(weights, codes)) * self.contrast
            return (standard * target_spread + target_mean).clamp(0, 1)

        if self.masks is None:
            out = painted(normalised(self.request.style_blend or [1.0] * len(codes), "blend weights"))
        else:  # each painting in its region, the photo where no mask is
            regions = [resize_mask(mask, content.shape[-2:]) for mask in self.masks]
            out = content * (1 - sum(regions)).clamp(0, 1)
            for k, region in enumerate(regions):
                out = out + region * painted([1.0 if j == k else 0.0 for j in range(len(codes))])
        return self.strength * out + (1.0 - self.strength) * content
