"""Any painting, one pass of a small network (:mod:`impasto.networks.arbitrary`): the painting's style code is
computed once (per style size), the photo goes only through the feed-forward network.

``weights`` blend the paintings' codes (one pass, a style in between); ``masks`` paint each
region with its own painting; ``strength`` blends the result with the photo (0 = the photo);
``histogram`` recolours the paintings to the photo before their codes are taken; ``stroke_scale``
sets the working size the network paints at (:mod:`impasto.core.guided`).
"""

from __future__ import annotations

from typing import Sequence

import torch

from impasto.networks import arbitrary
from impasto.core import guided, images
from impasto.core.runtime import cached_engine
from impasto.methods import OnePassMethod, Request
from impasto.methods.style_codes import StyleCodePainter


class Arbitrary(OnePassMethod):
    name = "arbitrary"
    label = "Any painting, instant: style network"  # in plain words, for the studio
    summary = ("any painting in one pass of a small network whose norms a style predictor sets "
               "(after Ghiasi et al. 2017); the fastest way to use your own painting")
    model_kind = arbitrary.KIND

    def painter(self, styles: Sequence[images.ImageLike], request: Request) -> "ArbitraryPainter":
        return ArbitraryPainter(styles, request)


def cached_model(model, device: str, precision: str, compile: bool = False) -> arbitrary.ArbitraryModel:
    """The loaded network (the shipped one when ``model`` is None), cached with every other model."""
    if model is None and not arbitrary.DEFAULT_MODEL.exists():
        return arbitrary.ArbitraryModel(None, device, precision)  # explains that none ships
    return cached_engine(arbitrary.ArbitraryModel, model if model is not None else arbitrary.DEFAULT_MODEL,
                         device, precision, compile=compile)


class ArbitraryPainter(StyleCodePainter):
    """The paintings are read at one size whatever the photo's (the network's receptive field is
    in pixels); the photo is painted at the stroke scale's working size; ``strength`` blends the
    result with the photo at the output size."""

    recipe_name = "arbitrary"

    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        engine = cached_model(request.model, request.device, request.precision, request.compile)
        super().__init__(engine, styles, request, Arbitrary.default_strength)

    def style_side(self, height: int, width: int) -> int | None:
        return arbitrary.style_side(self.request.style_scale)

    def render(self, content: torch.Tensor, codes: list[torch.Tensor]) -> torch.Tensor:
        out = guided.paint_at_scale(
            lambda photo: self.engine.stylize(photo, codes, weights=self.request.style_blend, masks=self.masks),
            content, self.request.stroke_scale, self.request.max_pixels)
        if self.strength < 1.0:
            out = self.strength * out + (1.0 - self.strength) * content
        return out
