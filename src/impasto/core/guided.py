"""Stroke scale: a one-pass network paints at a working size, and the result is brought to the
output size guided by the photo.

A feed-forward network's brushwork has a fixed size in pixels (its receptive field and the
strokes it learnt on small crops), so the same network on a 1920 px photo paints strokes a
quarter as large, relative to the picture, as on a 512 px one: a sky turns into fine knitting.
Painting at a working size whose long side is ``STROKE_SIDE / stroke_scale`` keeps the brushwork's
size relative to the picture whatever the output size, and costs the network's time at the
working size only.

The painted image is then brought to the output size by :func:`guided_upsample`, a detail
transfer in the manner of the guided filter (He, Sun & Tang 2013; its fast form, He & Sun 2015):
at the working size, each small window of the painting is modelled as an affine function of the
photo's grey there (a slope ``a`` per pixel and painted channel, ridge-regularised by ``eps``);
the output is the painting upsampled (bicubic) plus ``a`` (upsampled) times the photo's detail
that the working size lost (the full photo's grey minus its working-size copy upsampled).  Where the painting
follows the photo (an edge, a contour), the photo's sharp edge comes back at full resolution;
where it ignores it (flat sky, the painting's own strokes), ``a`` is near zero and the painting
is kept as painted.  Unlike the plain fast guided filter (the affine model alone, upsampled), the
painting's own texture is never smoothed away.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from impasto.core import images
from impasto.core.errors import ImpastoError

#: The long side (px) of the working size at stroke scale 1: the size the one-pass networks are
#: used at most and whose brushwork the default keeps at any output size.
STROKE_SIDE = 512
#: The largest stroke scale (a working long side of 32 px).
MAX_STROKE_SCALE = 16.0
#: The smallest working long side a network is run at.
MIN_WORKING_SIDE = 32
#: Guided upsampling's window radius (working-size pixels) and ridge term (in [0, 1] colour units squared).
RADIUS = 2
EPS = 1e-3
#: The unsharp mask after upsampling: its blur (output pixels) and how much of the difference is added.
SHARPEN_SIGMA = 1.5
SHARPEN_AMOUNT = 1.0


def check_stroke_scale(stroke_scale: float | None) -> None:
    """Raise :class:`ImpastoError` naming ``stroke_scale`` unless it is None or a number in (0, 16]."""
    if stroke_scale is None:
        return
    if isinstance(stroke_scale, bool) or not isinstance(stroke_scale, (int, float)) or not math.isfinite(stroke_scale) \
            or not 0 < stroke_scale <= MAX_STROKE_SCALE:
        raise ImpastoError(f"stroke scale must be a number above 0 and at most {MAX_STROKE_SCALE:g}, got {stroke_scale!r}",
                           parameter="stroke_scale")


def working_size(height: int, width: int, stroke_scale: float | None,
                 max_pixels: int = images.DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The (height, width) a one-pass network paints an ``height`` x ``width`` output at.

    ``stroke_scale`` s: the long side ``STROKE_SIDE / s`` (strokes s times as large, relative to the
    picture, as a 512 px painting's; below 1 the network may paint above the output size, and the
    result is brought down).  None (the default): the long side ``min(output, STROKE_SIDE)``, so
    that an output up to 512 px is painted as it is and a larger one keeps a 512 px painting's
    brushwork."""
    check_stroke_scale(stroke_scale)
    side = max(height, width)
    wanted = min(side, STROKE_SIDE) if stroke_scale is None else STROKE_SIDE / stroke_scale
    wanted = max(MIN_WORKING_SIDE, round(wanted))
    if wanted == side:
        return height, width
    size = images.scaled_size(height, width, wanted)
    if size[0] * size[1] > max_pixels:
        raise ImpastoError(f"stroke scale {stroke_scale} paints a {size[1]}x{size[0]} image, more than the pixel "
                           f"limit of {max_pixels} (raise the stroke scale or the pixel limit)", parameter="stroke_scale")
    return size


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The mean over a (2r+1)^2 window, the image mirrored at its edges."""
    k = 2 * radius + 1
    padded = F.pad(x.contiguous(memory_format=torch.channels_last), (radius,) * 4, mode="reflect")
    return F.avg_pool2d(padded, k, stride=1).contiguous()


def grey(image: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)``: the ITU-R 601 luma of ``(N, 3, H, W)``."""
    r, g, b = image.float().unbind(dim=1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def affine_model(painted: torch.Tensor, guide: torch.Tensor, radius: int = RADIUS,
                 eps: float = EPS) -> torch.Tensor:
    """The guided filter's local linear model of ``painted`` (N, C, h, w) on the grey ``guide``
    (N, 1, h, w): per pixel, the slope ``a`` of the least-squares fit ``painted ~ a guide + b`` over
    the window around it, ridge term ``eps`` (N, C, h, w)."""
    painted, guide = painted.float(), guide.float()
    channels = painted.shape[1]
    stats = _box(torch.cat([guide, painted, guide * guide, painted * guide], dim=1), radius)
    mean_i, mean_p = stats[:, :1], stats[:, 1:1 + channels]
    variance = stats[:, 1 + channels:2 + channels] - mean_i * mean_i
    covariance = stats[:, 2 + channels:] - mean_p * mean_i
    return covariance / (variance + eps)


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` (N, C, h, w) brought up to ``size`` by Pillow's bicubic, plane by plane in float, then
    given back its sharpness by an unsharp mask (:data:`SHARPEN_SIGMA`, :data:`SHARPEN_AMOUNT`).

    Pillow's kernel (a = -0.5) is as sharp between the small image's pixels as on them; PyTorch's
    bicubic (a = -0.75) and bilinear are not, and at a ratio like 512 -> 1920 that unevenness
    repeats every few output pixels: a regular lattice over the whole picture.  The even kernel is
    softer, so the unsharp mask, the same at every pixel, brings the strokes' edges back
    (docs/figures.md, "Machine marks")."""
    import cv2
    import numpy as np
    from PIL import Image

    planes = x.detach().float().cpu().numpy()
    out = np.empty((*planes.shape[:2], *size), np.float32)
    blurred = np.empty(size, np.float32)  # one buffer for every plane: a large output is not paged in again
    for index in np.ndindex(*planes.shape[:2]):
        plane = Image.fromarray(np.ascontiguousarray(planes[index]), mode="F")
        up = np.asarray(plane.resize((size[1], size[0]), Image.Resampling.BICUBIC))
        cv2.GaussianBlur(up, (0, 0), SHARPEN_SIGMA, dst=blurred, borderType=cv2.BORDER_REFLECT_101)
        cv2.addWeighted(up, 1 + SHARPEN_AMOUNT, blurred, -SHARPEN_AMOUNT, 0.0, dst=out[index])  # up + a (up - blur)
    return torch.from_numpy(out).to(x.device)


def guided_upsample(painted: torch.Tensor, photo_small: torch.Tensor, photo: torch.Tensor,
                    radius: int = RADIUS, eps: float = EPS, detail: float = 1.0) -> torch.Tensor:
    """``painted`` (N, 3, h, w), painted from ``photo_small`` (the same size), brought to ``photo``'s
    size (N, 3, H, W): the painting upsampled (bicubic) plus, through the painting's local affine
    relation to the photo's grey (:func:`affine_model`), the photo's detail that the small size
    lost (``detail`` scales it; 0 is plain bicubic upsampling).  Clamped to [0, 1], float32."""
    size = tuple(photo.shape[-2:])
    # bicubic: bilinear upsampling softens the painting's own strokes (brought back down to the working
    # size, it is further from the painting in style; docs/figures.md, "Machine marks")
    out = _up(painted, size)
    if detail == 0:
        return out.clamp_(0, 1)
    small_guide = grey(photo_small)
    slope = affine_model(painted, small_guide, radius, eps)
    lost = grey(photo).to(out.device) - _up(small_guide, size)  # the photo's detail finer than the small size
    return out.addcmul_(_up(detail * slope, size), lost).clamp_(0, 1)


def paint_at_scale(paint: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor, stroke_scale: float | None,
                   max_pixels: int = images.DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """``paint`` (a one-pass network's call, photo -> painting of the same size) of ``photo`` with
    the brushwork of ``stroke_scale`` (:func:`working_size`): painted at the working size and
    brought to the photo's size (:func:`guided_upsample` up, antialiased resizing down)."""
    height, width = photo.shape[-2:]
    size = working_size(height, width, stroke_scale, max_pixels)
    if size == (height, width):
        return paint(photo)
    small = images.resize(photo, size)
    painted = paint(small)
    if size[0] >= height and size[1] >= width:
        return images.resize(painted.float(), (height, width))
    return guided_upsample(painted, small, photo)
