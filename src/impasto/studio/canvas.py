"""The Create tab's canvas: the photo as the editor holds it, and the area painted on it, which
becomes the mask (a file ``--mask`` takes, or an object cut out of a box with GrabCut); and the
small copy of both that the instant preview paints from (kept on the server, so that a control's
change sends nothing of the canvas)."""

from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.studio.common import MAX_PIXELS, Studio

#: The brush: a see-through pink, so the photo shows through the painted area.
BRUSH_COLOUR, BRUSH_OPACITY = "#ff40a0", 0.45
BRUSH_RGBA = (0xFF, 0x40, 0xA0, round(BRUSH_OPACITY * 255))


def save_mask(studio: Studio, editor: Any) -> Path:
    """The painted area as a black-and-white PNG (white = painted), the file ``--mask`` takes."""
    _, painted = editor_parts(editor)
    if painted is None:
        raise ImpastoError("paint on the photo first: the mask is the painted area")
    path = studio.new_path(".png", "impasto-mask")
    images.save_image(torch.from_numpy(painted)[None, None].expand(1, 3, -1, -1), path)
    return path


def editor_parts(value: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(photo RGB uint8, painted mask float in [0, 1] or None) from an ImageEditor value."""
    if not value:
        return None, None
    background = value.get("background") if isinstance(value, dict) else value
    if background is None:
        return None, None
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.stack([background] * 3, axis=-1)
    photo = background[..., :3].astype(np.uint8)
    mask = None
    for layer in (value.get("layers") or []) if isinstance(value, dict) else []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[-1] == 4:
            painted = (layer[..., 3] > 0).astype(np.float32)  # a see-through brush: painted is painted
            mask = painted if mask is None else np.maximum(mask, painted)
    if mask is not None and mask.max() <= 0:
        mask = None
    return photo, mask


def sent_canvas(studio: Studio, sent: Any) -> dict | None:
    """The editor's value as the page sent it on (its files, already uploaded): the background and
    layers read from the studio's uploads folder, and from nowhere else."""
    if not isinstance(sent, dict):
        return None
    folder = Path(studio.uploads).resolve()

    def read(item: Any) -> np.ndarray | None:
        path = item.get("path") if isinstance(item, dict) else None
        if not path:
            return None
        path = Path(path).resolve()
        if not path.is_relative_to(folder):
            raise ImpastoError("the canvas's files must be the page's own uploads")
        try:
            with PIL.Image.open(path) as image:
                return np.asarray(image.convert("RGBA"))
        except (OSError, ValueError, PIL.Image.DecompressionBombError):
            raise ImpastoError("the canvas could not be read: add the photo again", path.name) from None

    background = read(sent.get("background"))
    if background is None:
        return None
    return {"background": background, "layers": [read(item) for item in sent.get("layers") or [] if item],
            "composite": None}


def small_canvas(editor: Any, side: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(photo, painted area) brought to ``side`` px on the long side, for the instant preview; None
    without a photo or for one over the page's pixel limit (Render names it).

    The photo is resized as a job resizes it (:func:`impasto.core.images.resize_max_side`) and the
    painted area as a method lays a mask on it (bilinear, :func:`impasto.core.masks.in_regions`), so
    that a job of size ``side`` painted from them is the one painted from the editor's full canvas."""
    photo, painted = editor_parts(editor)
    if photo is None or photo.shape[0] * photo.shape[1] > MAX_PIXELS:
        return None
    small = images.resize_max_side(images.as_tensor(photo), side, MAX_PIXELS)
    if painted is None:
        return small, None
    region = F.interpolate(torch.from_numpy(painted)[None, None], size=small.shape[-2:], mode="bilinear",
                           align_corners=False)
    return small, region[0, 0]


def photo_size(editor: Any) -> tuple[int, int] | None:
    """(height, width) of the photo on the canvas, for the estimate."""
    photo, _ = editor_parts(editor)
    return None if photo is None else tuple(photo.shape[:2])


def box_mask(editor: Any, box: tuple[int, int, int, int]) -> dict:
    """The canvas with the object inside ``box`` (x0, y0, x1, y1 in the photo's pixels) painted
    on it, as cut by OpenCV's GrabCut (:func:`impasto.core.masks.grabcut_mask`)."""
    from impasto.core.masks import grabcut_mask

    photo, _ = editor_parts(editor)
    if photo is None:
        raise ImpastoError("add a content photo first (drop it on the canvas)")
    mask = grabcut_mask(images.as_tensor(photo), box)[0, 0].numpy() > 0.5
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask] = BRUSH_RGBA
    return {"background": photo, "layers": [layer], "composite": None}


def before_after(editor: Any, result_path: str | None):
    """(the photo at the result's size, the result) for the before/after slider; None while working."""
    photo, _ = editor_parts(editor)
    if photo is None or not result_path:
        return None
    after = PIL.Image.open(result_path).convert("RGB")
    return PIL.Image.fromarray(photo).resize(after.size, PIL.Image.LANCZOS), after
