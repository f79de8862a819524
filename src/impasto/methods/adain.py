"""AdaIN (Huang & Belongie 2017) as a method: any style in one forward pass of a trained decoder.

The decoder and encoder load once (:func:`impasto.adain.cached_engine`); each style's channel
statistics are computed once per style size, so a folder batch or a clip pays for them once.
``strength`` is the paper's alpha: the content features blended with the AdaIN target.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from .. import adain, images
from ..color import match_histogram, transfer_luminance
from ..files import file_digest
from ..video import FeedForwardFrames
from . import Progress, Request, Result, Temporal, check, one_step


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

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "AdaINPainter":
        check(self, styles, request)
        return AdaINPainter(styles, request)


class AdaINPainter:
    def __init__(self, styles: Sequence[images.ImageLike], request: Request) -> None:
        self.engine = adain.cached_engine(request.model, request.device, request.precision, request.compile)
        self.request = request
        self.styles = [images.as_tensor(style, request.max_pixels) for style in styles]
        self.masks = images.load_masks(request.masks, request.max_pixels) if request.masks is not None else None
        self.alpha = AdaINMethod.default_strength if request.strength is None else request.strength
        self._codes: dict[int | None, list[adain.StyleCode]] = {}

    def _styles_at(self, side: int | None) -> list[torch.Tensor]:
        return [images.resize_max_side(style, side, self.request.max_pixels) for style in self.styles]

    def codes(self, content: torch.Tensor) -> list[adain.StyleCode]:
        """The styles' statistics at the style size for this content (recoloured to it for ``histogram``)."""
        side = self.request.style_size(max(content.shape[-2:]))
        if self.request.preserve_color == "histogram":
            return [self.engine.style_code(match_histogram(s, content)) for s in self._styles_at(side)]
        if side not in self._codes:
            self._codes[side] = [self.engine.style_code(s) for s in self._styles_at(side)]
        return self._codes[side]

    def _stylize(self, content: torch.Tensor, codes: list[adain.StyleCode]) -> torch.Tensor:
        out = self.engine.stylize(content, codes, weights=self.request.weights, masks=self.masks, alpha=self.alpha)
        return transfer_luminance(out, content) if self.request.preserve_color == "luminance" else out

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        started = time.perf_counter()
        content_t = self.request.load(content)
        return one_step(lambda: self._stylize(content_t, self.codes(content_t)), on_step, started)

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Loaded photos of one size in one network call, each as :meth:`paint` paints it."""
        if self.request.preserve_color == "histogram":  # the styles are recoloured to each photo
            return [self._stylize(content, self.codes(content)) for content in contents]
        return list(self._stylize(torch.cat(list(contents)), self.codes(contents[0])).split(1))

    def frames(self, temporal: Temporal) -> FeedForwardFrames:
        """Frames of one clip: the style statistics once per clip; ``histogram`` recolours the styles
        to the clip's first frame, so that the palette holds still."""
        codes: list[adain.StyleCode] = []

        def stylize(frame: torch.Tensor) -> torch.Tensor:
            if not codes:
                codes.extend(self.codes(frame[:1]))  # the first frame (a batch's first)
            return self._stylize(frame, codes)

        recipe = {"model": file_digest(self.engine.path), "styles": [images.digest(s) for s in self.styles],
                  "weights": None if self.request.weights is None else list(self.request.weights),
                  "alpha": self.alpha, "preserve_color": self.request.preserve_color,
                  "style_scale": self.request.style_scale}
        return FeedForwardFrames(stylize, "adain", temporal.blend, recipe, batch=self.request.frame_batch())
