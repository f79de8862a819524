"""A trained feed-forward network as a method (Johnson et al. 2016): one pass, its styles built in.

``weights`` mixes a multi-style network's styles (Dumoulin et al. 2017); one mask keeps the
painting inside it and the photo outside; ``strength`` blends the result with the photo; ``histogram`` colour preservation falls back to ``luminance``, since the
network has no style image to recolour; ``stroke_scale`` sets the working size the network paints
at (:mod:`impasto.core.guided`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

import torch

from impasto.core import color, guided, images
from impasto.networks import fast
from impasto.core.files import file_digest
from impasto.core.masks import in_regions, load_masks
from impasto.methods import OnePassMethod, Progress, Request, Result, Temporal, one_step

if TYPE_CHECKING:  # the clip pipeline (OpenCV's flow) loads only when a clip is painted
    from impasto.methods.frames import FeedForwardFrames


class FeedForward(OnePassMethod):
    name = "fast"
    label = 'Instant, trained styles: a fast model'  # in plain words, for the studio
    summary = "a trained network per style (or set of styles), one forward pass (Johnson et al. 2016)"
    uses_styles = False
    model_kind = fast.KIND
    model_required = True

    def painter(self, styles: Sequence[images.ImageLike], request: Request) -> "FeedForwardPainter":
        return FeedForwardPainter(request)


class FeedForwardPainter:
    def __init__(self, request: Request) -> None:
        self.engine = fast.cached_model(request.model, request.device, request.precision, request.compile)
        self.mix = self.engine.mix(request.style_blend).tolist()  # checks the weights against the model
        self.strength = FeedForward.default_strength if request.strength is None else request.strength
        self.masks = load_masks(request.masks, request.max_pixels) if request.masks is not None else None
        self.request = request

    def _stylize(self, content: torch.Tensor) -> torch.Tensor:
        out = guided.paint_at_scale(lambda photo: self.engine.stylize(photo, self.mix), content,
                                    self.request.stroke_scale, self.request.max_pixels)
        if self.masks is not None:  # the model paints inside its mask; outside, the photo itself
            out = in_regions(out, self.masks, content)
        if self.strength < 1.0:
            out = self.strength * out + (1.0 - self.strength) * content
        return color.finish(color.for_model(self.request.preserve_color), out, content)

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        started = time.perf_counter()
        content_t = self.request.load(content)
        return one_step(lambda: self._stylize(content_t), on_step, started)

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Loaded photos of one size in one network call, each as :meth:`paint` paints it."""
        return list(self._stylize(torch.cat(list(contents))).split(1))

    def frames(self, temporal: Temporal) -> FeedForwardFrames:
        from impasto.methods.frames import FeedForwardFrames

        recipe = {"model": file_digest(self.engine.path), "style_mix": self.mix, "strength": self.strength,
                  "preserve_color": self.request.preserve_color, "stroke_scale": self.request.stroke_scale}
        if self.masks is not None:
            recipe["masks"] = [images.digest(mask) for mask in self.masks]
        return FeedForwardFrames(self._stylize, "fast", temporal.blend, recipe, batch=self.request.frame_batch())
