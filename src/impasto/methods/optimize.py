"""The optimisation method (Gatys et al. 2015) as a method: the pixels are optimised against the
content and style losses of :mod:`impasto.engines.optimize`, whose :class:`~impasto.engines.optimize.OptimizeSettings`
are its own options (iterations, optimiser, losses, layers, pyramid, tiles, init).

Video follows Ruder et al. 2016: each frame starts from the warped previous output, with a
temporal loss on the pixels where the optical flow is reliable.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch

from impasto.core import images
from impasto.core.losses import TemporalTarget
from impasto.engines.optimize import OptimizeSettings, StyleSettings, run
from impasto.methods import Progress, Request, Result, Temporal, check, one_by_one

#: Temporal loss weight of Ruder et al.'s setting, for pixels in 0-255 units.
TEMPORAL_WEIGHT = 20.0


def settings_for(request: Request, side: int) -> StyleSettings:
    """The engine's settings: the method's own (``request.options``) with the request's shared
    options (a whole :class:`StyleSettings` given as options gives only its own part)."""
    own = (request.options if request.options is not None else OptimizeSettings()).own()
    return StyleSettings(**vars(own), size=request.size or side, style_scale=request.style_scale,
                         style_blend=request.style_blend, masks=request.masks, preserve_color=request.preserve_color, strength=request.strength,
                         device=request.device, precision=request.precision, max_pixels=request.max_pixels,
                         compile=request.compile)


class Optimize:
    name = "optimize"
    label = 'Quality, slow: the optimisation method'  # in plain words, for the studio
    summary = "optimise the pixels against content and style losses (Gatys et al. 2015): best quality, slowest"
    uses_styles = True
    model_kind = None
    model_required = False
    default_strength = 0.5  # the style loss's own default weight (the log scale's middle)
    one_pass = False
    options = OptimizeSettings
    quick_options = {"iterations": 2, "pyramid": 1}

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "OptimizePainter":
        check(self, styles, request)
        settings_for(request, request.size or images.DEFAULT_SIZE).validate(len(styles))
        return OptimizePainter(list(styles), request)


class OptimizePainter:
    def __init__(self, styles: list[images.ImageLike], request: Request) -> None:
        self.styles = styles  # kept as given, so that errors name the files
        self.request = request

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        side = self.request.size
        if side is None:
            side = max(images.as_tensor(content, self.request.max_pixels).shape[-2:])
        return run(content, self.styles, settings_for(self.request, side), on_step)

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return one_by_one(self, contents)

    def frames(self, temporal: Temporal) -> "OptimizeFrames":
        styles = [images.as_tensor(style, self.request.max_pixels) for style in self.styles]
        weight = TEMPORAL_WEIGHT if temporal.weight is None else temporal.weight
        return OptimizeFrames(styles, settings_for(self.request, self.request.size or images.DEFAULT_SIZE), temporal.iterations,
                              weight)


class OptimizeFrames:
    """Ruder et al.: warm start from the warped previous output, temporal loss on reliable pixels.

    The first frame gets the full still-image run (``settings``, pyramid and all); later frames run
    ``iterations`` at the frame size only.  Without history (independent mode) every frame runs
    from the photo with the same per-frame iterations.
    """

    def __init__(self, styles: Sequence[images.ImageLike], settings: StyleSettings, iterations: int = 30,
                 temporal_weight: float = TEMPORAL_WEIGHT) -> None:
        self.styles = [images.as_tensor(style, settings.max_pixels) for style in styles]
        self.settings = settings
        self.iterations = iterations
        self.temporal_weight = temporal_weight
        self.name = "optimize"
        self.first = True
        self.recipe = {"method": self.name, "styles": [images.digest(style) for style in self.styles],
                       "settings": dataclasses.asdict(settings), "iterations": iterations,
                       "temporal_weight": temporal_weight}

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        side = max(frame.shape[-2:])
        if self.first and not history:
            settings = dataclasses.replace(self.settings, size=side)
        else:
            init = history[0][0] if history else "content"
            settings = dataclasses.replace(self.settings, size=side, init=init, pyramid=1, iterations=self.iterations)
        self.first = False
        temporal = [TemporalTarget(image, reliable, self.temporal_weight) for image, reliable in history]
        result = run(frame, self.styles, settings, temporal=temporal)
        if result.stop_reason == "interrupted":
            raise KeyboardInterrupt
        return result.image
