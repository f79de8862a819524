"""AdaIN (Huang & Belongie 2017) as a method: any style in one forward pass of a trained decoder.

The decoder and encoder load once (:func:`impasto.adain.cached_engine`); each style's channel
statistics are computed once per style size, so a folder batch or a clip pays for them once.
``strength`` is the paper's alpha: the content features blended with the AdaIN target.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .. import adain, images
from . import Request, check
from .style_codes import StyleCodePainter


class AdaINMethod:
    name = "adain"
    label = 'Any style, instant: AdaIN'  # in plain words, for the studio
    summary = "any style in one forward pass (a trained decoder; Huang & Belongie 2017)"
    uses_styles = True
    model_kind = adain.KIND
    model_required = False
    default_strength = 1.0
    one_pass = True
    options = None
    quick_options: dict = {}

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "AdaINPainter":
        check(self, styles, request)
        return AdaINPainter(styles, request)


class AdaINPainter(StyleCodePainter):
    """The styles' statistics are taken at the style size for each photo's size; ``strength`` is
    the paper's alpha (the photo's features blended with the target statistics)."""

    recipe_name = "adain"
    strength_key = "alpha"

    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        engine = adain.cached_engine(request.model, request.device, request.precision, request.compile)
        super().__init__(engine, styles, request, AdaINMethod.default_strength)

    def style_side(self, content: torch.Tensor) -> int | None:
        return self.request.style_size(max(content.shape[-2:]))

    def render(self, content: torch.Tensor, codes: list[adain.StyleCode]) -> torch.Tensor:
        return self.engine.stylize(content, codes, weights=self.request.weights, masks=self.masks,
                                   alpha=self.strength)
