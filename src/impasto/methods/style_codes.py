"""The painter shared by the any-painting methods (AdaIN, the arbitrary network): each painting is
reduced once to a style code by the method's engine, and every photo or frame is one network call
with those codes.

A subclass says at what size a painting is read (:meth:`StyleCodePainter.style_side`) and how the
codes and the photo become the picture (:meth:`StyleCodePainter.render`); loading the paintings
and masks, caching the codes, the colour modes, batches and video frames live here once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Sequence
from weakref import WeakKeyDictionary

import torch

from impasto.core import color, images
from impasto.core.files import file_digest
from impasto.core.masks import load_masks
from impasto.methods import Progress, Request, Result, Temporal, one_step

if TYPE_CHECKING:  # the clip pipeline (OpenCV's flow) loads only when a clip is painted
    from impasto.methods.frames import FeedForwardFrames


#: Style codes kept across painters: per engine (forgotten with it), by (painting, size).
CODE_CACHE_SIZE = 64
_CODES: "WeakKeyDictionary[Any, OrderedDict[tuple, Any]]" = WeakKeyDictionary()


def forget_codes() -> None:
    """Empty the process-wide cache of style codes (benchmarks time a painting's first use with it)."""
    _CODES.clear()


class StyleCodePainter:
    #: the method's name, recorded with a clip's frames (a resumed clip must be the same recipe)
    recipe_name = ""
    #: what the clip recipe calls ``strength`` (AdaIN's is the paper's alpha)
    strength_key = "strength"

    def __init__(self, engine: Any, styles: Sequence[images.ImageLike], request: Request,
                 default_strength: float) -> None:
        self.engine = engine  # has .style_code(tensor) and .path
        self.request = request
        self.styles = [images.as_tensor(style, request.max_pixels) for style in styles]
        self.masks = load_masks(request.masks, request.max_pixels) if request.masks is not None else None
        self.strength = default_strength if request.strength is None else request.strength
        self._codes: dict[int | None, list[Any]] = {}
        self._digests: list[str] | None = None

    def style_side(self, height: int, width: int) -> int | None:
        """The longest side the paintings are read at for a photo of this size (None: as they are)."""
        raise NotImplementedError

    def render(self, content: torch.Tensor, codes: list[Any]) -> torch.Tensor:
        """The painted photo (before ``luminance`` colour), from the paintings' codes."""
        raise NotImplementedError

    def codes(self, content: torch.Tensor) -> list[Any]:
        """The paintings' codes, computed once per style size (with a colour mode: per photo, from
        the paintings matched to it, :func:`impasto.core.color.styles_for`)."""
        side = self.style_side(*content.shape[-2:])
        mode = self.request.preserve_color
        if not color.depends_on_photo(mode) and side in self._codes:
            return self._codes[side]  # every frame of a clip, every photo of a folder: no resizing again
        if color.depends_on_photo(mode):
            styles = [images.resize_max_side(style, side, self.request.max_pixels) for style in self.styles]
            return [self.engine.style_code(style) for style in color.styles_for(mode, styles, content)]
        if self._digests is None:
            self._digests = [images.digest(style) for style in self.styles]
        self._codes[side] = [self._code(style, digest, side) for style, digest in zip(self.styles, self._digests)]
        return self._codes[side]

    def ready(self, height: int, width: int) -> None:
        """The paintings' codes for a photo of this size, made now: a job counts them as its
        preparation, not its painting (nothing to do for a colour mode, which makes them per photo,
        or for a size past the pixel limit, which loading refuses)."""
        if not color.depends_on_photo(self.request.preserve_color) and height * width <= self.request.max_pixels:
            self.codes(torch.empty(1, 3, height, width, device="meta"))  # its size only: nothing allocated

    def _code(self, style: torch.Tensor, digest: str, side: int | None) -> Any:
        """A painting's code, from the process-wide cache when this engine has made it before (a
        studio's repeated painting, a clip whose strength follows its sound)."""
        cache = _CODES.setdefault(self.engine, OrderedDict())
        key = (digest, side)
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        code = self.engine.style_code(images.resize_max_side(style, side, self.request.max_pixels))
        cache[key] = code
        while len(cache) > CODE_CACHE_SIZE:
            cache.popitem(last=False)
        return code

    def _stylize(self, content: torch.Tensor, codes: list[Any]) -> torch.Tensor:
        out = self.render(content, codes)
        return color.finish(self.request.preserve_color, out, content)

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        started = time.perf_counter()
        content_t = self.request.load(content)
        return one_step(lambda: self._stylize(content_t, self.codes(content_t)), on_step, started)

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Loaded photos of one size in one network call, each as :meth:`paint` paints it."""
        if color.depends_on_photo(self.request.preserve_color):  # the paintings are matched to each photo
            return [self._stylize(content, self.codes(content)) for content in contents]
        return list(self._stylize(torch.cat(list(contents)), self.codes(contents[0])).split(1))

    def frames(self, temporal: Temporal) -> FeedForwardFrames:
        """Frames of one clip: the codes once per clip; a colour mode matches the paintings to the
        clip's first frame, so that the palette holds still."""
        from impasto.methods.frames import FeedForwardFrames

        codes: list[Any] = []

        def stylize(frame: torch.Tensor) -> torch.Tensor:
            if not codes:
                codes.extend(self.codes(frame[:1]))  # the first frame (a batch's first)
            return self._stylize(frame, codes)

        recipe = {"model": file_digest(self.engine.path), "styles": [images.digest(s) for s in self.styles],
                  "weights": None if self.request.style_blend is None else list(self.request.style_blend),
                  self.strength_key: self.strength, "preserve_color": self.request.preserve_color,
                  "style_scale": self.request.style_scale, "stroke_scale": self.request.stroke_scale}
        if self.masks is not None:  # other regions, other frames (a clip without masks keeps its recipe)
            recipe["masks"] = [images.digest(mask) for mask in self.masks]
        return FeedForwardFrames(stylize, self.recipe_name, temporal.blend, recipe, batch=self.request.frame_batch())
