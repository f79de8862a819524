"""Masks: where each style goes.  Read from grey images (white: the style, black: the photo), or
cut from the photo itself around a box the user draws (GrabCut separates the subject inside the
box from the background around it)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from impasto.core.errors import ImpastoError
from impasto.core.images import ImageLike, as_tensor, image_size, source_label

#: GrabCut works on a copy whose long side is at most this: its cost grows with the pixels and the
#: outline it finds does not need more; the mask is brought back to the photo's size.
GRABCUT_SIDE = 512

Box = tuple[int, int, int, int]


def load_masks(masks: Sequence[ImageLike], max_pixels: int) -> list[torch.Tensor]:
    """Grayscale masks as ``(1, 1, H, W)`` weights in [0, 1]; an all-black mask is an error."""
    loaded = []
    for mask in masks:
        weights = as_tensor(mask, max_pixels).mean(dim=1, keepdim=True)
        if float(weights.max()) < 1 / 255:
            raise ImpastoError("mask is empty (all black): its style would apply nowhere", source_label(mask, "mask"))
        loaded.append(weights)
    return loaded


def in_regions(paintings: Sequence[torch.Tensor] | torch.Tensor, masks: Sequence[torch.Tensor],
               photo: torch.Tensor) -> torch.Tensor:
    """Each painting inside its mask (where masks overlap they share the pixel) and the photo itself
    where no mask covers: what a painted area means in every method.  One painting (a tensor) is
    the one for every mask (a method that paints all regions at once).  Masks at any size, brought
    to the photo's with bilinear resampling (soft edges stay soft)."""
    if isinstance(paintings, torch.Tensor):
        paintings = [paintings] * len(masks)
    regions = [F.interpolate(mask.float(), size=photo.shape[-2:], mode="bilinear", align_corners=False)
               for mask in masks]
    total = torch.stack(regions).sum(dim=0)
    out = photo * (1.0 - total.clamp(0, 1))
    for region, painting in zip(regions, paintings):
        out = out + region / total.clamp_min(1.0) * painting
    return out.clamp(0, 1)


def check_box(box: Sequence[int], height: int, width: int) -> Box:
    """The box ``(x0, y0, x1, y1)`` if it is a non-empty area inside a ``width`` x ``height`` photo
    that leaves some of the photo outside it (the background GrabCut learns from)."""
    if len(box) != 4:
        raise ImpastoError(f"a box is 4 numbers X0,Y0,X1,Y1, got {len(box)}", parameter="mask_box")
    x0, y0, x1, y1 = (int(v) for v in box)
    where = f"box {x0},{y0},{x1},{y1}"
    if x1 <= x0 or y1 <= y0:
        raise ImpastoError(f"{where} is empty: X1 must be more than X0 and Y1 more than Y0", parameter="mask_box")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise ImpastoError(f"{where} is outside the {width}x{height} photo", parameter="mask_box")
    if (x0, y0, x1, y1) == (0, 0, width, height):
        raise ImpastoError(f"{where} is the whole photo: leave some background around the subject",
                           parameter="mask_box")
    return x0, y0, x1, y1


def grabcut_mask(photo: torch.Tensor, box: Box, iterations: int = 5) -> torch.Tensor:
    """The subject inside ``box`` (``x0, y0, x1, y1`` in the photo's pixels) as a ``(1, 1, H, W)``
    mask of 0. and 1., for a ``(1, 3, H, W)`` photo in [0, 1].  Everything outside the box is
    background; GrabCut decides which pixels inside it belong with the subject.  Large photos are
    cut on a smaller copy (bounded cost) and the mask scaled back."""
    import cv2

    if photo.dim() != 4 or photo.shape[:2] != (1, 3):
        raise ImpastoError(f"expected a (1, 3, H, W) photo, got {tuple(photo.shape)}", parameter="photo")
    if iterations < 1:
        raise ImpastoError(f"iterations must be 1 or more, got {iterations}", parameter="iterations")
    height, width = photo.shape[-2:]
    x0, y0, x1, y1 = check_box(box, height, width)
    scale = min(1.0, GRABCUT_SIDE / max(height, width))
    small = photo.detach().float().cpu()
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = F.interpolate(small, size=size, mode="area")
    h, w = small.shape[-2:]
    sx, sy = w / width, h / height
    left, top = min(int(x0 * sx), w - 1), min(int(y0 * sy), h - 1)
    right, bottom = max(left + 1, min(w, round(x1 * sx))), max(top + 1, min(h, round(y1 * sy)))
    # OpenCV wants 8-bit BGR
    pixels = (small[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()[:, :, ::-1].copy()
    labels = np.zeros((h, w), np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(pixels, labels, (left, top, right - left, bottom - top), background, foreground, iterations,
                cv2.GC_INIT_WITH_RECT)
    subject = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    mask = torch.from_numpy(subject.astype(np.float32))[None, None]
    if (h, w) != (height, width):
        mask = F.interpolate(mask, size=(height, width), mode="bilinear", align_corners=False)
    mask = (mask >= 0.5).float()
    if not mask.any():
        raise ImpastoError(f"found no subject in box {x0},{y0},{x1},{y1}: draw the box closer around it",
                           parameter="mask_box")
    return mask


#: How far a mask's aspect ratio may be from its photo's: a mask saved at another size keeps its
#: photo's shape to within rounding; beyond this it would be stretched onto the photo.
ASPECT_TOLERANCE = 0.02


def shown_size(path: str | os.PathLike, max_pixels: int) -> tuple[int, int]:
    """(width, height) of an image file as it is shown (its EXIF orientation applied), from its header."""
    from PIL import Image

    if not os.path.isfile(path):
        raise ImpastoError("file not found", path)
    width, height = image_size(path, max_pixels)
    try:
        with Image.open(path) as img:
            turned = img.getexif().get(0x0112) in (5, 6, 7, 8)  # orientations that swap the sides
    except Exception:  # no EXIF to read: as stored
        turned = False
    return (height, width) if turned else (width, height)


def check_fits(mask: ImageLike, mask_size: tuple[int, int], photo: object, photo_size: tuple[int, int]) -> None:
    """Refuse a mask whose shape is not its photo's (sizes as (width, height)): it would be
    stretched onto the photo, its regions landing elsewhere than where they were drawn."""
    (mw, mh), (pw, ph) = mask_size, photo_size
    if abs((mw / mh) / (pw / ph) - 1) > ASPECT_TOLERANCE:
        raise ImpastoError(f"the mask is {mw}x{mh} but the photo {source_label(photo, 'photo')} is {pw}x{ph}: "
                           "its shape differs and it would be stretched; draw the mask on the photo "
                           "(or on a copy of it scaled as a whole)", source_label(mask, "mask"), parameter="masks")


def check_masks_fit(masks: Sequence[ImageLike], photos: Sequence[tuple[object, tuple[int, int]]],
                    max_pixels: int) -> None:
    """Every mask against every photo it will be laid on (``(photo, (width, height))`` pairs)."""
    for mask in masks:
        if isinstance(mask, (str, os.PathLike)):
            size = shown_size(mask, max_pixels)
        else:
            size = tuple(as_tensor(mask, max_pixels).shape[-1:-3:-1])
        for photo, photo_size in photos:
            check_fits(mask, size, photo, photo_size)
