"""Any painting, one pass of a small network (:mod:`impasto.arbitrary`): the painting's style code is
computed once (per style size), the photo goes only through the feed-forward network.

``weights`` blend the paintings' codes (one pass, a style in between); ``masks`` paint each
region with its own painting; ``strength`` blends the result with the photo (0 = the photo);
``histogram`` recolours the paintings to the photo before their codes are taken.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from .. import arbitrary, images
from ..color import match_histogram, transfer_luminance
from ..files import file_digest
from ..runtime import cached_engine
from ..video import FeedForwardFrames
from . import Progress, Request, Result, Temporal, check, one_step


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

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "ArbitraryPainter":
        check(self, styles, request)
        return ArbitraryPainter(styles, request)


def cached_model(model, device: str, precision: str, compile: bool = False) -> arbitrary.ArbitraryModel:
    """The loaded network (the shipped one when ``model`` is None), cached with every other model."""
    if model is None and not arbitrary.DEFAULT_MODEL.exists():
        return arbitrary.ArbitraryModel(None, device, precision)  # explains that none ships
    return cached_engine(arbitrary.ArbitraryModel, model if model is not None else arbitrary.DEFAULT_MODEL,
                         device, precision, compile=compile)


class ArbitraryPainter:
    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        self.engine = cached_model(request.model, request.device, request.precision, request.compile)
        self.request = request
        self.styles = [images.as_tensor(style, request.max_pixels) for style in styles]
        self.masks = images.load_masks(request.masks, request.max_pixels) if request.masks is not None else None
        self.strength = Arbitrary.default_strength if request.strength is None else request.strength
        self._codes: list[torch.Tensor] | None = None

    def codes(self, content: torch.Tensor) -> list[torch.Tensor]:
        """The paintings' codes (once; for ``histogram``, per photo, from paintings recoloured to it)."""
        side = arbitrary.style_side(self.request.style_scale)
        styles = [images.resize_max_side(style, side, self.request.max_pixels) for style in self.styles]
        if self.request.preserve_color == "histogram":
            return [self.engine.style_code(match_histogram(style, content)) for style in styles]
        if self._codes is None:
            self._codes = [self.engine.style_code(style) for style in styles]
        return self._codes

    def _stylize(self, content: torch.Tensor, codes: list[torch.Tensor]) -> torch.Tensor:
        out = self.engine.stylize(content, codes, weights=self.request.weights, masks=self.masks)
        if self.strength < 1.0:
            out = self.strength * out + (1.0 - self.strength) * content
        return transfer_luminance(out, content) if self.request.preserve_color == "luminance" else out

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        started = time.perf_counter()
        content_t = self.request.load(content)
        return one_step(lambda: self._stylize(content_t, self.codes(content_t)), on_step, started)

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Loaded photos of one size in one network call, each as :meth:`paint` paints it."""
        if self.request.preserve_color == "histogram":  # the paintings are recoloured to each photo
            return [self._stylize(content, self.codes(content)) for content in contents]
        return list(self._stylize(torch.cat(list(contents)), self.codes(contents[0])).split(1))

    def frames(self, temporal: Temporal) -> FeedForwardFrames:
        """Frames of one clip: the codes once per clip (``histogram``: recoloured to its first frame)."""
        codes: list[torch.Tensor] = []

        def stylize(frame: torch.Tensor) -> torch.Tensor:
            if not codes:
                codes.extend(self.codes(frame[:1]))
            return self._stylize(frame, codes)

        recipe = {"model": file_digest(self.engine.path), "styles": [images.digest(s) for s in self.styles],
                  "weights": None if self.request.weights is None else list(self.request.weights),
                  "strength": self.strength, "preserve_color": self.request.preserve_color,
                  "style_scale": self.request.style_scale}
        return FeedForwardFrames(stylize, "arbitrary", temporal.blend, recipe, batch=self.request.frame_batch())
