"""What every method reports: :class:`Progress` after each step (for bars, previews, stopping) and
the :class:`Result` of a run.  Its own module, below every method, so that each can use it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

from impasto.core import images


@dataclass
class Progress:
    """What a step callback sees after each iteration."""

    iteration: int  # counted over all pyramid levels
    iterations: int  # planned over all pyramid levels
    evaluations: int
    terms: dict[str, float]
    image: torch.Tensor  # current pixels (1, 3, H, W), not clamped; do not modify
    level: int = 1
    levels: int = 1


@dataclass
class Result:
    """The outcome of a run: the image (clamped to [0, 1], on the CPU) and how it ended."""

    image: torch.Tensor
    iterations: int
    evaluations: int
    terms: dict[str, float]
    stop_reason: str  # "iterations", "converged", "interrupted" or "non-finite"
    seconds: float
    history: list[float] = field(default_factory=list)

    def to_pil(self) -> Image.Image:
        return images.tensor_to_pil(self.image)
