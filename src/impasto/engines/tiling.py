"""Overlapping tiles for images too large to optimise in one piece.

The image is covered by tiles of at most ``tile`` px a side whose neighbours overlap by at least
``overlap`` px.  A tile's result is written back with a weight that ramps linearly from 0 to 1
across the middle half of each overlap it shares with an earlier tile (and is 1 elsewhere), so
that consecutive tiles cross-fade instead of meeting at a hard edge, and neither tile's pixels
next to its own inner edge (which saw padding, not image) survive.  Tiles are processed one after another on one
canvas, each starting from the pixels its neighbours already wrote, which is what keeps the
texture continuous across borders.
"""

from __future__ import annotations

import math

import torch

Box = tuple[int, int, int, int]  # top, left, height, width


def _axis(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Tile starts and tile length along one axis: as few tiles as fit, each as short as that allows."""
    if length <= tile:
        return [0], length
    count = math.ceil((length - overlap) / (tile - overlap))
    size = min(tile, math.ceil((length + (count - 1) * overlap) / count))
    return [round(i * (length - size) / (count - 1)) for i in range(count)], size


def tile_boxes(height: int, width: int, tile: int, overlap: int) -> list[Box]:
    """Tiles covering a ``height`` x ``width`` image, in raster order."""
    if overlap >= tile:
        raise ValueError("the overlap must be smaller than the tile")
    tops, tile_height = _axis(height, tile, overlap)
    lefts, tile_width = _axis(width, tile, overlap)
    return [(top, left, tile_height, tile_width) for top in tops for left in lefts]


def _ramp(start: int, size: int, starts: list[int], tile_size: int) -> torch.Tensor:
    """1-D weight along one axis: ramps up across the overlap with the previous tile, 1 elsewhere.

    Tiles are written in raster order, so only the side facing an already written tile needs a
    cross-fade; the side facing a later tile is cross-faded when that tile is written.  The
    quarter of the overlap at each end is left to one tile alone: pixels next to a tile's inner
    edge saw the edge of its window, not the image.
    """
    weight = torch.ones(size)
    previous = [s for s in starts if s < start]
    if previous:
        overlap = min(previous[-1] + tile_size - start, size)
        if overlap > 0:
            margin = overlap // 4
            position = torch.arange(overlap, dtype=torch.float32)
            weight[:overlap] = ((position - margin + 1) / (overlap - 2 * margin + 1)).clamp(0, 1)
    return weight


def blend_weight(box: Box, height: int, width: int, tile: int, overlap: int) -> torch.Tensor:
    """``(1, 1, h, w)`` write-back weight of one tile (1 inside, ramps where it overlaps others)."""
    top, left, h, w = box
    rows = _ramp(top, h, *_axis(height, tile, overlap))
    cols = _ramp(left, w, *_axis(width, tile, overlap))
    return (rows[:, None] * cols[None, :]).view(1, 1, h, w)


def crop(image: torch.Tensor, box: Box) -> torch.Tensor:
    top, left, h, w = box
    return image[..., top:top + h, left:left + w]


def paste(canvas: torch.Tensor, piece: torch.Tensor, box: Box, weight: torch.Tensor) -> None:
    """Blend ``piece`` into ``canvas`` in place: canvas = canvas * (1 - weight) + piece * weight."""
    region = crop(canvas, box)
    region.mul_(1 - weight).add_(piece * weight)


def expand(box: Box, height: int, width: int, context: int) -> Box:
    """The box grown by ``context`` px on every side, within the image."""
    top, left, h, w = box
    new_top, new_left = max(0, top - context), max(0, left - context)
    bottom, right = min(height, top + h + context), min(width, left + w + context)
    return new_top, new_left, bottom - new_top, right - new_left


def inner_box(box: Box, window: Box) -> Box:
    """``box`` in the coordinates of ``window`` (which contains it)."""
    return box[0] - window[0], box[1] - window[1], box[2], box[3]


def box_mask(box: Box, window: Box) -> torch.Tensor:
    """``(1, 1, h, w)`` of the window's size: 1 inside ``box`` (window coordinates), 0 outside."""
    mask = torch.zeros(1, 1, window[2], window[3])
    top, left, h, w = box
    mask[..., top:top + h, left:left + w] = 1
    return mask


def insert(surroundings: torch.Tensor, box: Box, pixels: torch.Tensor) -> torch.Tensor:
    """The surroundings with ``pixels`` in ``box``: differentiable in ``pixels``, fixed elsewhere."""
    top, left, h, w = box
    out = surroundings.clone()
    out[..., top:top + h, left:left + w] = pixels
    return out
