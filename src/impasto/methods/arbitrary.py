"""Any painting, one pass of a small network (:mod:`impasto.arbitrary`): the painting's style code is
computed once (per style size), the photo goes only through the feed-forward network.

``weights`` blend the paintings' codes (one pass, a style in between); ``masks`` paint each
region with its own painting; ``strength`` blends the result with the photo (0 = the photo);
``histogram`` recolours the paintings to the photo before their codes are taken.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .. import arbitrary, images
from ..runtime import cached_engine
from . import Request, check
from .style_codes import StyleCodePainter


class Arbitrary:
    name = "arbitrary"
    label = "Any painting, instant: style network"  # in plain words, for the studio
    summary = ("any painting in one pass of a small network whose norms a style predictor sets "
               "(after Ghiasi et al. 2017); the fastest way to use your own painting")
    uses_styles = True
    model_kind = arbitrary.KIND
    model_required = False
    default_strength = 1.0
    one_pass = True
    options = None
    quick_options: dict = {}

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "ArbitraryPainter":
        check(self, styles, request)
        return ArbitraryPainter(styles, request)


def cached_model(model, device: str, precision: str, compile: bool = False) -> arbitrary.ArbitraryModel:
    """The loaded network (the shipped one when ``model`` is None), cached with every other model."""
    if model is None and not arbitrary.DEFAULT_MODEL.exists():
        return arbitrary.ArbitraryModel(None, device, precision)  # explains that none ships
    return cached_engine(arbitrary.ArbitraryModel, model if model is not None else arbitrary.DEFAULT_MODEL,
                         device, precision, compile=compile)


class ArbitraryPainter(StyleCodePainter):
    """The paintings are read at one size whatever the photo's (the network's receptive field is
    in pixels); ``strength`` blends the result with the photo."""

    recipe_name = "arbitrary"

    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        engine = cached_model(request.model, request.device, request.precision, request.compile)
        super().__init__(engine, styles, request, Arbitrary.default_strength)

    def style_side(self, content: torch.Tensor) -> int | None:
        return arbitrary.style_side(self.request.style_scale)

    def render(self, content: torch.Tensor, codes: list[torch.Tensor]) -> torch.Tensor:
        out = self.engine.stylize(content, codes, weights=self.request.weights, masks=self.masks)
        if self.strength < 1.0:
            out = self.strength * out + (1.0 - self.strength) * content
        return out
