"""AdaIN (Huang & Belongie 2017) as a method: any style in one forward pass of a trained decoder.

The decoder and encoder load once (:func:`impasto.networks.adain.cached_engine`); each style's channel
statistics are computed once per style size, so a folder batch or a clip pays for them once.
``strength`` is the paper's alpha: the content features blended with the AdaIN target.
``stroke_scale`` sets the working size the decoder paints at (:mod:`impasto.core.guided`); the
styles are read at the style scale of that size.
"""

from __future__ import annotations

from typing import Sequence

import torch

from impasto.networks import adain
from impasto.core import guided, images
from impasto.methods import OnePassMethod, Request
from impasto.methods.style_codes import StyleCodePainter


class AdaINMethod(OnePassMethod):
    name = "adain"
    label = 'Any style, instant: AdaIN'  # in plain words, for the studio
    summary = "any style in one forward pass (a trained decoder; Huang & Belongie 2017)"
    model_kind = adain.KIND

    def painter(self, styles: Sequence[images.ImageLike], request: Request) -> "AdaINPainter":
        return AdaINPainter(styles, request)


class AdaINPainter(StyleCodePainter):
    """The styles' statistics are taken at the style size for each photo's working size (the stroke
    scale's); ``strength`` is the paper's alpha (the photo's features blended with the target statistics)."""

    recipe_name = "adain"
    strength_key = "alpha"

    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        engine = adain.cached_engine(request.model, request.device, request.precision, request.compile)
        super().__init__(engine, styles, request, AdaINMethod.default_strength)

    def style_side(self, height: int, width: int) -> int | None:
        working = guided.working_size(height, width, self.request.stroke_scale, self.request.max_pixels)
        return self.request.style_size(max(working))

    def render(self, content: torch.Tensor, codes: list[adain.StyleCode]) -> torch.Tensor:
        return guided.paint_at_scale(
            lambda photo: self.engine.stylize(photo, codes, weights=self.request.style_blend, masks=self.masks,
                                              alpha=self.strength),
            content, self.request.stroke_scale, self.request.max_pixels)
