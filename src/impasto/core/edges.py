"""A painting's sides: what keeps a one-pass network from painting a frame along them.

A network sees its picture's edge only through its convolutions' padding, and a painting that keeps
the photo's layout keeps the photo's own light falling off at its edges, made stronger by the
painting's contrast.  The edge term (:func:`edge_consistency`) asks a cut's edge to be painted as
the photo's inside is; the frame-light term (:func:`frame_light`) allows a side no more light or
dark than the photo's own side; :func:`side_bands` is the measure both the term and the frame score
(:func:`impasto.core.quality.frame_sides`) read.
"""

from __future__ import annotations

from typing import Callable

import torch

from impasto.core.guided import grey


def edge_consistency(paint: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor, painted: torch.Tensor,
                     inset: int = 32, band: int = 16) -> torch.Tensor:
    """Mean squared difference, over the outer ``band`` px of a cut, between the painting of the photo
    cut ``inset`` px in from every side and the photo's painting ``painted`` (held fixed) over the
    same pixels.

    A network sees its picture's edge only through its convolutions' padding, and can paint a frame
    there (a dark or light band along a side, the same on every photo); inside the photo those pixels
    have picture all around.  This term asks the cut's edge to be painted as the photo's inside is.
    ``inset`` keeps the cut a multiple of the network's stride (8) and larger than its reach into the
    padding, so the reference pixels are far from the photo's own edge; a small photo (under four
    insets on a side) is cut less deep, in steps of 8 px, and its band narrows to a quarter of the cut.
    """
    h, w = photo.shape[-2:]
    inset = max(8, min(inset, min(h, w) // 4 // 8 * 8))
    band = max(1, min(band, (min(h, w) - 2 * inset) // 4))
    cut = paint(photo[..., inset:h - inset, inset:w - inset]).float()
    expected = painted.detach().float()[..., inset:h - inset, inset:w - inset]
    ring = torch.ones(cut.shape[-2:], dtype=torch.bool, device=cut.device)
    ring[band:-band, band:-band] = False
    return torch.mean((cut - expected)[..., ring] ** 2)


def side_bands(grey: torch.Tensor, band: int = 8) -> torch.Tensor:
    """Per side (top, bottom, left, right; the last dimension): the mean of the outer ``band`` px
    rows or columns of ``grey`` (``(..., H, W)``) minus that of the next ``band`` px inward.  The
    bands leave out the corners (``2 * band`` px at each end), which belong to two sides.  A
    picture under ``6 * band`` px on a side has no bands to compare: zeros."""
    h, w = grey.shape[-2:]
    if min(h, w) <= 6 * band:
        return grey.new_zeros((*grey.shape[:-2], 4))
    rows, columns = slice(2 * band, h - 2 * band), slice(2 * band, w - 2 * band)
    return torch.stack([
        grey[..., :band, columns].mean((-2, -1)) - grey[..., band:2 * band, columns].mean((-2, -1)),
        grey[..., h - band:, columns].mean((-2, -1)) - grey[..., h - 2 * band:h - band, columns].mean((-2, -1)),
        grey[..., rows, :band].mean((-2, -1)) - grey[..., rows, band:2 * band].mean((-2, -1)),
        grey[..., rows, w - band:].mean((-2, -1)) - grey[..., rows, w - 2 * band:w - band].mean((-2, -1)),
    ], dim=-1)


def frame_light(painted: torch.Tensor, photo: torch.Tensor, band: int = 8) -> torch.Tensor:
    """How much more light or dark the painting's sides are than its next ``band`` px inward, beyond
    what the photo's own sides are (:func:`side_bands` of the grey images, in 0..1; the excess
    squared, mean over sides and images).

    A painting that keeps the photo's layout keeps the photo's light falling off at its edges, and a
    contrasted painting makes it stronger: a frame no painter meant.  The painting may have less of
    it than the photo; only more costs."""
    painting = side_bands(grey(painted)[:, 0], band)
    own = side_bands(grey(photo)[:, 0], band).detach()
    return torch.mean(torch.relu(painting.abs() - own.abs()) ** 2)
