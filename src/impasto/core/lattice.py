"""Taking out a pattern tied to the pixel grid: what a network that paints from a coarse feature grid
(AdaIN's decoder, from relu4_1's 8 px cells) or a pixel optimisation seen through VGG's strided
layers (neural neighbours) leaves on flat areas: every cell of ``period`` x ``period`` pixels carries
nearly the same small pattern, seen as fine stripes, a grid or a 2x2 speckle
(:func:`impasto.core.quality.lattice_peak` measures it).

The pattern is estimated where it is: the picture's detail (the picture minus a Gaussian blur,
which keeps its slopes, so that a gradient is not mistaken for a sawtooth) is averaged, per position
in the cell, over the cells of a window around each cell; what the positions do not share is the
pattern, and it is subtracted.  The picture's own strokes and edges fall at every position of the
cell alike across a window, so they stay.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The window (px) over which a cell position's mean is taken: wide enough that the picture's own
#: detail averages out (the notch it cuts in the spectrum stays narrow), narrow enough to follow a
#: pattern that changes across the picture.
WINDOW = 136


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur, the picture mirrored at its edges."""
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-taps * taps / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    padded = F.pad(image, (radius,) * 4, mode="reflect")  # the callers' pictures are larger than 3 sigma
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def lattice_pattern(image: torch.Tensor, period: int, window: int = WINDOW) -> torch.Tensor:
    """The part of ``image`` ((N, C, H, W)) that repeats with every ``period`` x ``period`` cell
    (cells counted from the top left pixel), estimated over ``window`` px around each cell; the
    same shape as ``image``."""
    n, c, h, w = image.shape
    if period < 2 or min(h, w) < 2 * period:
        return torch.zeros_like(image)
    image = image.float()
    pad_h, pad_w = (-h) % period, (-w) % period
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
    detail = image - _blur(image, period / 2)
    positions = F.pixel_unshuffle(detail, period)  # (N, C * period^2, H / period, W / period)
    cells = max(1, window // period) | 1  # odd: the window centred on its cell
    radius = cells // 2
    local = F.avg_pool2d(F.pad(positions, (radius,) * 4, mode="replicate"), cells, stride=1)
    local = local.view(n, c, period * period, *local.shape[-2:])
    pattern = (local - local.mean(dim=2, keepdim=True)).view(n, c * period * period, *local.shape[-2:])
    return F.pixel_shuffle(pattern, period)[..., :h, :w]


def remove_lattice(image: torch.Tensor, period: int, window: int = WINDOW) -> torch.Tensor:
    """``image`` without the pattern that repeats with its ``period`` px cells (:func:`lattice_pattern`),
    float32; not clamped."""
    return image.float() - lattice_pattern(image, period, window)
