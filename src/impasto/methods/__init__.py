"""What a style-transfer method is, and the registry of the methods impasto has.

Every method answers the same :class:`Request` (size, style size, blend weights, masks, colour,
strength, model, device, precision, pixel limit) with the same meaning, so the CLI, the video
pipeline and the studio call :func:`get` and the protocol below and never ask which method runs.

A method is a module in this package with one class that has the attributes and the
``prepare`` method of :class:`Method`; :data:`REGISTRY` names it.  ``prepare`` does the work
that does not depend on the photo (loading a model, reading the styles, their statistics)
once, and returns a :class:`Painter` that paints any number of photos or video frames.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import torch

from impasto.core import guided, images
from impasto.core.color import METHODS as COLOR_MODES
from impasto.core.errors import ImpastoError
from impasto.core.fields import CLIP, CONTROL, HARDWARE, SIZE, setting
from impasto.core.runtime import PRECISIONS
from impasto.core.results import Progress, Result

if TYPE_CHECKING:
    from impasto.methods.frames import FrameStylizer

__all__ = ["REGISTRY", "Method", "Painter", "Progress", "Request", "Result", "Temporal", "for_model", "get",
           "names", "stylize"]

#: name -> "module:Class" (imported when first asked for, so that the CLI starts fast).
REGISTRY = {
    "optimize": "impasto.methods.optimize:Optimize",
    "adain": "impasto.methods.adain:AdaINMethod",
    "fast": "impasto.methods.fast:FeedForward",
    "neighbours": "impasto.methods.neighbours:Neighbours",
    "arbitrary": "impasto.methods.arbitrary:Arbitrary",
}


@dataclass
class Request:
    """The options every method understands, each with one meaning for all of them.

    ``style_blend``: how much of each style, normalised (the style images, or a multi-style model's
    styles).  ``masks``: one grey image per style (a model with its styles built in: one, where it
    paints), white where that style goes, black where the photo itself stays.  ``preserve_color``: ``luminance`` matches the style images' brightness to the
    photo's, then keeps the photo's colours and takes only the brightness from the result;
    ``histogram`` recolours the style images to the photo's palette first (a model with its styles
    built in has no image to recolour, so it does ``luminance``): :mod:`impasto.core.color`'s one policy.
    ``strength`` 0..1: 0 is the photo, 1 the strongest style (``None``: the method's default).
    ``options``: the method's own settings (a dataclass, see :attr:`Method.options`), or None.
    """

    size: int | None = setting(images.DEFAULT_SIZE, short="-s", group=SIZE, check="positive",
                               help="long side of the output in pixels")
    style_scale: float = setting(1.0, group=SIZE, check="positive",
                                 help="style image size relative to the output (smaller = finer brushwork)")
    style_blend: Sequence[float] | None = setting(
        None, group=CONTROL, old=("--style-mix",), default_text="equal; a multi-style model: its first style",
        help="comma-separated weights of the styles (normalised; a multi-style model: its styles)")
    masks: Sequence[images.ImageLike] | None = None
    preserve_color: str = setting("none", group=CONTROL, choices=COLOR_MODES,
                                  help="keep the photo's colours: luminance (the style's brightness matched to the "
                                       "photo's, then brightness only transferred) or histogram (recolour the style "
                                       "to the photo's palette first)")
    strength: float | None = setting(None, group=CONTROL, check="non_negative", old=("--alpha",),
                                     help="0..1: 0 = the photo, 1 = the strongest style")
    model: str | os.PathLike | None = None
    device: str = setting("auto", group=HARDWARE, help="auto, cpu, cuda, cuda:N or mps")
    precision: str = setting("auto", group=HARDWARE, choices=PRECISIONS,
                             help="backbone arithmetic: auto = bf16 where the hardware has it, else fp32")
    compile: bool = setting(False, group=HARDWARE,
                            help="fast models and AdaIN: compile the networks for this machine (once per image "
                                 "size; then faster, see docs/figures.md): for clips and folders of same-size "
                                 "photos; optimize: compile the backbone once per pyramid level (slow to compile "
                                 "on a CPU; for GPUs)")
    max_pixels: int = setting(images.DEFAULT_MAX_PIXELS, group=SIZE, check="positive",
                              help="refuse input images with more pixels than this")
    options: Any = None
    batch: int | None = setting(None, group=HARDWARE, check="positive", metavar="N",
                                default_text="8 on a GPU, 1 on a CPU",
                                help="fast models and AdaIN: photos of one size (folders) or a clip's frames per "
                                     "network call")
    stroke_scale: float | None = setting(
        None, group=SIZE, check="positive", default_text="a 512 px painting's brushwork at any larger size",
        help="one-pass methods: brushwork size relative to the picture, as a 512 px painting's times this "
             "(painted at a working size, brought to the output size along the photo's edges)")

    def frame_batch(self) -> int:
        """Frames per network call for a one-pass method: as asked, else 8 on a GPU (one frame
        leaves most of it idle) and 1 on a CPU (no faster batched: docs/figures.md)."""
        if self.batch is not None:
            return self.batch
        from impasto.core.runtime import resolve_device

        return 8 if resolve_device(self.device).type == "cuda" else 1

    def style_size(self, content_side: int | None = None) -> int | None:
        """Long side of the style images: the output's long side times ``style_scale``."""
        side = self.size if content_side is None else content_side
        return None if side is None else max(1, round(side * self.style_scale))

    def load(self, content: images.ImageLike) -> torch.Tensor:
        """The photo as a tensor at the output size (within the pixel limit, before and after resizing)."""
        return images.resize_max_side(images.as_tensor(content, self.max_pixels), self.size, self.max_pixels)


@dataclass
class Temporal:
    """How video frames are kept steady: ``None`` fields take the method's own default.

    ``blend`` (one-pass methods): weight of the warped previous output where the flow is reliable.
    ``weight`` and ``iterations`` (iterative methods): the temporal loss's weight and the
    iterations per frame after the first.
    """

    blend: float | None = setting(None, group=CLIP, check="non_negative", default_text="0.7",
                                  help="one-pass methods (fast, arbitrary, adain): weight of the warped previous "
                                       "output where the flow is reliable")
    weight: float | None = setting(None, flag="--temporal-weight", group=CLIP, check="non_negative",
                                   default_text="the method's own", help="iterative methods: weight of the temporal loss")
    iterations: int = setting(30, flag="--frame-iterations", group=CLIP, check="positive",
                              help="iterative methods: iterations per frame after the first")


class Painter(Protocol):
    """A method made ready for one set of styles and options.  A painter that sets something up at
    its first photo of a size (a painting's code) may also have ``ready(height, width)``, which does
    it at once: a job counts that time as preparation (:mod:`impasto.jobs.estimate`)."""

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        """Stylize one photo.  ``on_step`` sees each finished step (one for a one-pass method); if it
        raises KeyboardInterrupt the work stops and the result is the image so far, ``stop_reason``
        ``"interrupted"``."""

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Loaded photos of one size (``request.load``), each painted as :meth:`paint` paints it: a
        one-pass method in one network call, an optimisation one after the other."""

    def frames(self, temporal: Temporal) -> "FrameStylizer":
        """A stylizer for the frames of one clip."""


class Method(Protocol):
    name: str
    label: str  # what it is in plain words (for the studio)
    summary: str
    uses_styles: bool  # takes style images (False: its styles are inside its model file)
    model_kind: str | None  # the kind of model file it loads, or None
    model_required: bool  # no default model ships (a model file must be given)
    one_pass: bool  # a single forward pass (fit for a camera), not an optimisation
    default_strength: float  # the strength used when the request gives none
    options: type | None  # its own settings dataclass, or None
    #: the fields of ``options`` for the quickest run that still goes through every stage (tests,
    #: smoke checks); empty for a method without options
    quick_options: dict[str, Any]

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> Painter:
        ...


class OnePassMethod:
    """What the one-pass methods (a network's single pass) share: no settings of their own, the
    full strength by default, and a ``prepare`` that checks the request (the stroke scale too) and
    makes the method's painter with :meth:`painter`."""

    uses_styles = True
    model_required = False
    default_strength = 1.0
    one_pass = True
    options = None
    quick_options: dict[str, Any] = {}

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> Painter:
        check(self, styles, request)
        guided.check_stroke_scale(request.stroke_scale)
        return self.painter(styles, request)

    def painter(self, styles: Sequence[images.ImageLike], request: Request) -> Painter:
        raise NotImplementedError


_LOADED: dict[str, Method] = {}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> Method:
    """The method called ``name``."""
    if name not in REGISTRY:
        raise ImpastoError(f"unknown method {name!r}; choose one of {', '.join(REGISTRY)}", parameter="method")
    if name not in _LOADED:
        module, _, cls = REGISTRY[name].partition(":")
        _LOADED[name] = getattr(importlib.import_module(module), cls)()
    return _LOADED[name]


def for_model(path: str | os.PathLike) -> Method:
    """The method that uses this model file (by the kind written in the file)."""
    from impasto.core.modelfile import model_kind

    kind = model_kind(Path(path))
    for name in REGISTRY:
        if get(name).model_kind == kind:
            return get(name)
    raise ImpastoError(f"is a {kind!r} model, which no method can use", path)


def choose(name: str | None, model: str | os.PathLike | None) -> Method:
    """The method from an explicit name and/or a model file: the model's kind decides when no name is given."""
    if model is None:
        method = get(name or "optimize")
        if method.model_required:
            raise ImpastoError(f"the {method.name} method needs a trained model (see `impasto models`)",
                               parameter="model")
        return method
    method = for_model(model)
    if name is not None and name != method.name:
        raise ImpastoError(f"is a {method.name} model, not usable with the {name} method", model)
    return method


def check(method: Method, styles: Sequence[object], request: Request) -> None:
    """The checks every method shares: raise :class:`ImpastoError` naming the parameter."""
    if method.uses_styles and not styles:
        raise ImpastoError(f"the {method.name} method needs at least one style image", parameter="styles")
    if not method.uses_styles and styles:
        raise ImpastoError(f"the {method.name} method takes its styles from its model, not from style images",
                           parameter="styles")
    if method.model_required and request.model is None:
        raise ImpastoError(f"the {method.name} method needs a trained model (see `impasto models`)",
                           parameter="model")
    if request.size is not None and (not isinstance(request.size, int) or request.size <= 0):
        raise ImpastoError(f"size must be a positive whole number, got {request.size}", parameter="size")
    if not (isinstance(request.style_scale, (int, float)) and request.style_scale > 0
            and math.isfinite(request.style_scale)):
        raise ImpastoError(f"style scale must be a positive number, got {request.style_scale}", parameter="style_scale")
    if not isinstance(request.max_pixels, int) or request.max_pixels <= 0:
        raise ImpastoError(f"the pixel limit must be a positive whole number, got {request.max_pixels}",
                           parameter="max_pixels")
    if request.preserve_color not in COLOR_MODES:
        raise ImpastoError(f"unknown colour mode {request.preserve_color!r}; choose one of {', '.join(COLOR_MODES)}",
                           parameter="preserve_color")
    if request.strength is not None and not (0.0 <= request.strength <= 1.0):
        raise ImpastoError(f"strength must be between 0 and 1, got {request.strength}", parameter="strength")
    if request.style_blend is not None:
        if method.uses_styles and len(request.style_blend) != len(styles):
            raise ImpastoError(f"{len(request.style_blend)} style blend weights given for {len(styles)} style images",
                               parameter="style_blend")
        if any(not (w >= 0 and math.isfinite(w)) for w in request.style_blend) or sum(request.style_blend) <= 0:
            raise ImpastoError(f"style blend weights must be finite, non-negative numbers with a positive sum, "
                               f"got {list(request.style_blend)}", parameter="style_blend")
    if request.masks is not None:
        if not method.uses_styles and len(request.masks) != 1:
            raise ImpastoError(f"{len(request.masks)} masks given; a {method.name} model paints inside one mask "
                               "(the photo stays outside it)", parameter="masks")
        if method.uses_styles and len(request.masks) != len(styles):
            raise ImpastoError(f"{len(request.masks)} masks given for {len(styles)} style images; "
                               "give one mask per style", parameter="masks")
    if request.options is not None and (method.options is None or not isinstance(request.options, method.options)):
        wanted = method.options.__name__ if method.options else "no options"
        raise ImpastoError(f"the {method.name} method takes {wanted}, not {type(request.options).__name__}",
                           parameter="options")


def stylize(method: str, content: images.ImageLike, styles: Sequence[images.ImageLike] = (),
            request: Request | None = None, on_step: Callable[[Progress], None] | None = None) -> Result:
    """Stylize one photo with the method called ``method``; see :class:`Request`."""
    return get(method).prepare(styles, request or Request()).paint(content, on_step)


def one_by_one(painter: Painter, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``paint_many`` of a method that paints one photo at a time (Ctrl-C stops the whole batch)."""
    painted = []
    for content in contents:
        result = painter.paint(content)
        if result.stop_reason == "interrupted":
            raise KeyboardInterrupt
        painted.append(result.image)
    return painted


def one_step(work: Callable[[], torch.Tensor], on_step: Callable[[Progress], None] | None,
             started: float) -> Result:
    """The :class:`Result` of a one-pass method: a single step that ``on_step`` sees (and may stop)."""
    image = work()
    stop_reason = "done"
    if on_step is not None:
        try:
            on_step(Progress(1, 1, 1, {}, image))
        except KeyboardInterrupt:
            stop_reason = "interrupted"
    return Result(image, 1, 1, {}, stop_reason, time.perf_counter() - started)
