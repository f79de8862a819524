"""How a one-pass method paints the frames of a clip so that the result holds still: each output
blended with the previous one warped along the optical flow, where the flow is reliable; and the
same with a schedule of strengths (a sound-driven clip).  The video pipeline
(:mod:`impasto.jobs.clip`) calls these through :class:`FrameStylizer`."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import torch

from impasto.core.errors import ImpastoError


class FrameStylizer(Protocol):
    """Stylizes one frame; ``history`` holds (warped earlier output, reliability) pairs, nearest first.

    A stylizer with a ``batch`` above 1 also has ``paint_many(frames)`` (the part of the work that
    does not depend on earlier frames, for several at once) and ``settle(painted, history)`` (the
    rest, frame by frame); :class:`FeedForwardFrames` is one.
    """

    name: str

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        ...


#: Weight of the warped previous output in a one-pass method's frame, where the flow is reliable.
DEFAULT_BLEND = 0.7


class FeedForwardFrames:
    """A one-pass stylizer, stabilised by blending with the warped previous output where reliable."""

    def __init__(self, stylize: Callable[[torch.Tensor], torch.Tensor], name: str, blend: float | None = None,
                 recipe: dict | None = None, batch: int = 1) -> None:
        blend = DEFAULT_BLEND if blend is None else blend
        if not 0.0 <= blend < 1.0:
            raise ImpastoError(f"the temporal blend must be in [0, 1), got {blend}")
        if not isinstance(batch, int) or batch < 1:
            raise ImpastoError(f"the frame batch must be a positive whole number, got {batch}", parameter="batch")
        self.stylize = stylize
        self.name = name
        self.blend = blend
        #: frames per network call: the network's pass does not depend on earlier frames (only the
        #: blend does), so a clip's frames can go through it together
        self.batch = batch
        #: everything that shapes a frame (model file's hash, styles' hashes, options): a resumed job must match it
        self.recipe = {"method": name, "blend": blend, **(recipe or {})}

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        return self.settle(self.stylize(frame), history)

    def paint_many(self, frames: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The network's pass over several frames of one clip (same size) in one call."""
        return list(self.stylize(torch.cat(list(frames))).split(1))

    def settle(self, out: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Blend a painted frame with the warped previous output where the flow is reliable."""
        if history:
            warped, reliable = history[0]
            weight = self.blend * reliable
            out = weight * warped + (1.0 - weight) * out
        return out


class ScheduledFrames:
    """A stylizer whose controls change from frame to frame (sound-driven strength and blend
    weights): ``make(strength, weights)`` builds a stylizer for one setting, and one is kept per
    distinct setting after rounding (strength to 0.02, weights to 0.05), so a clip needs a few dozen."""

    batch = 1

    def __init__(self, make: Callable[[float, tuple[float, ...] | None], FrameStylizer],
                 strengths: Sequence[float], weights: Sequence[Sequence[float]] | None, recipe: dict) -> None:
        if weights is not None and len(weights) != len(strengths):
            raise ImpastoError(f"{len(strengths)} strengths but {len(weights)} sets of weights")
        self.make = make
        self.strengths = [round(float(s) / 0.02) * 0.02 for s in strengths]
        self.weights = None if weights is None else [self._rounded(w) for w in weights]
        self._made: dict[tuple, FrameStylizer] = {}
        self.index = 0
        first = self._stylizer(0)
        self.name = first.name
        self.recipe = {**(getattr(first, "recipe", None) or {"method": first.name}), **recipe}

    @staticmethod
    def _rounded(weights: Sequence[float]) -> tuple[float, ...]:
        steps = [round(float(w) / 0.05) for w in weights]
        if sum(steps) == 0:
            steps = [1] * len(steps)
        return tuple(step / sum(steps) for step in steps)

    def _stylizer(self, index: int) -> FrameStylizer:
        index = min(index, len(self.strengths) - 1)
        key = (self.strengths[index], None if self.weights is None else self.weights[index])
        if key not in self._made:
            self._made[key] = self.make(*key)
        return self._made[key]

    def seek(self, index: int) -> None:
        """The next call paints the frame ``index`` (from the first frame painted, 0-based)."""
        self.index = index

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        return self._stylizer(self.index)(frame, history)

