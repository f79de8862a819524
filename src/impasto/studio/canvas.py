"""The Create tab's canvas: the photo, and the area painted on it, which becomes the mask (a file
``--mask`` takes, or an object cut out of a box with GrabCut); and the small copy of both that the
instant preview paints from (kept on the server, so that a control's change sends nothing of the
canvas).

The page paints the area with its own brush (the page's script, :data:`BRUSH_SCRIPT`): a plain 2D
canvas over the photo, at most :data:`MASK_SIDE` px on a side, that draws each move of the hand as
one line and hands the painted area over as a PNG (a data URL) when the stroke ends; the photo
itself never travels again.  On the server a canvas is a dict, ``{"background": photo RGB(A)
uint8, "layers": [RGBA, ...]}``: the layers' painted pixels are the area."""

import base64
import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.studio.common import MAX_PIXELS, Studio, shown

#: The brush: a see-through pink, so the photo shows through the painted area.
BRUSH_COLOUR, BRUSH_OPACITY = "#ff40a0", 0.45
BRUSH_RGBA = (0xFF, 0x40, 0xA0, round(BRUSH_OPACITY * 255))
#: The long side (px) of the page's brush canvas: the painted area's resolution, whatever the
#: photo's (a mask is a soft choice of where the style goes; its edge is blended anyway).
MASK_SIDE = 1024
#: The longest painted area (characters of its data URL) the server reads.
MAX_MASK_URL = 8 * 1024 * 1024
MASK_URL_PREFIX = "data:image/png;base64,"


def save_mask(studio: Studio, editor: Any) -> Path:
    """The painted area as a black-and-white PNG (white = painted), the file ``--mask`` takes."""
    _, painted = editor_parts(editor)
    if painted is None:
        raise ImpastoError("paint on the photo first: the mask is the painted area")
    path = studio.new_path(".png", "impasto-mask")
    images.save_image(torch.from_numpy(painted)[None, None].expand(1, 3, -1, -1), path)
    return path


def editor_parts(value: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(photo RGB uint8, painted mask float in [0, 1] or None) from a canvas value."""
    if not value:
        return None, None
    background = value.get("background") if isinstance(value, dict) else value
    if background is None:
        return None, None
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.stack([background] * 3, axis=-1)
    photo = background[..., :3].astype(np.uint8, copy=False)
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
    """The canvas as the page sent it on: ``{"background": the photo's upload, "mask": the painted
    area's data URL or ""}``; the photo read from the studio's uploads folder, and from nowhere else,
    the painted area brought to the photo's size."""
    if not isinstance(sent, dict):
        return None
    folder = Path(studio.uploads).resolve()
    item = sent.get("background")
    path = item.get("path") if isinstance(item, dict) else None
    if not path:
        return None
    try:
        path = Path(path).resolve() if isinstance(path, str) else None
    except (OSError, ValueError):
        path = None
    if path is None or not path.is_relative_to(folder):
        raise ImpastoError("the canvas's files must be the page's own uploads")
    photo = read_photo(path)
    painted = mask_from_url(sent.get("mask"), photo.shape[:2])
    layers = []
    if painted is not None:
        layer = np.zeros((*painted.shape, 4), np.uint8)
        layer[painted] = BRUSH_RGBA
        layers.append(layer)
    return {"background": photo, "layers": layers, "composite": None}


def read_photo(path: str | Path) -> np.ndarray:
    """The photo on the canvas as RGB uint8 (read-only), turned as its camera said (as the page
    shows it), its size checked from the header first (:func:`impasto.core.images.image_size`); the
    last few are kept, so that a stroke's end does not decode the photo again."""
    path = Path(path)
    images.image_size(path, MAX_PIXELS)
    stat = path.stat()
    return _decoded(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _decoded(name: str, modified: int, size: int) -> np.ndarray:
    path = Path(name)
    try:
        with PIL.Image.open(path) as image:
            photo = np.asarray(PIL.ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, ValueError, PIL.Image.DecompressionBombError):
        raise ImpastoError("the photo could not be read: add it again", path.name) from None
    photo.setflags(write=False)
    return photo


def mask_from_url(url: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """The page's painted area (a PNG data URL; its opaque pixels are painted) as a boolean array of
    ``shape`` (height, width); None where nothing is painted."""
    if not url:
        return None
    if not isinstance(url, str) or not url.startswith(MASK_URL_PREFIX) or len(url) > MAX_MASK_URL:
        raise ImpastoError("the painted area could not be read: paint it again")
    try:
        data = base64.b64decode(url[len(MASK_URL_PREFIX):], validate=True)
        with PIL.Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if max(image.size) > 2 * MASK_SIDE:
                raise ValueError("too large")
            alpha = image.convert("RGBA").getchannel("A")
    except (OSError, ValueError, PIL.Image.DecompressionBombError):
        raise ImpastoError("the painted area could not be read: paint it again") from None
    if alpha.getextrema()[1] < 128:
        return None
    height, width = shape
    return np.asarray(alpha.resize((width, height), PIL.Image.BILINEAR)) >= 128


def mask_url(painted: np.ndarray | None) -> str:
    """A painted area (boolean or [0, 1], the photo's size) as the page's brush draws it: a PNG data
    URL in the brush's colour, at most :data:`MASK_SIDE` px on a side; "" for none."""
    if painted is None or not np.any(np.asarray(painted) > 0.5):
        return ""
    height, width = painted.shape[:2]
    scale = min(1.0, MASK_SIDE / max(height, width))
    alpha = PIL.Image.fromarray((np.asarray(painted) > 0.5).astype(np.uint8) * 255, "L")
    if scale < 1:
        alpha = alpha.resize((max(1, round(width * scale)), max(1, round(height * scale))), PIL.Image.BILINEAR)
    image = PIL.Image.new("RGBA", alpha.size, (*BRUSH_RGBA[:3], 255))
    image.putalpha(alpha)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return MASK_URL_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def small_canvas(editor: Any, side: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(photo, painted area) brought to ``side`` px on the long side, for the instant preview; None
    without a photo or for one over the page's pixel limit (Render names it).

    The photo is resized as a job resizes it (:func:`impasto.core.images.resize_max_side`) and the
    painted area as a method lays a mask on it (bilinear, :func:`impasto.core.masks.in_regions`), so
    that a job of size ``side`` painted from them is the one painted from the full canvas."""
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
    """(the photo at the result's size, the result) for the before/after slider, as the page shows
    them (:func:`shown`); None while working."""
    photo, _ = editor_parts(editor)
    if photo is None or not result_path:
        return None
    after = shown(PIL.Image.open(result_path).convert("RGB"))
    return PIL.Image.fromarray(photo).resize(after.size, PIL.Image.LANCZOS), after


#: The canvas as the page hands it on (:func:`impasto.studio.canvas.sent_canvas`): the photo's
#: upload and the brush's painted area.
CANVAS = "(photo) => ({background: photo, mask: impastoMaskData()})"
#: A new photo: nothing painted on it (the brush's canvas is made anew for it); the same photo
#: again (the page shows it at the same address): the area still painted on it.
NEW_PHOTO = "(photo) => ({background: photo, mask: photo?.url ? impastoMaskData(photo.url) : ''})"
#: Before a job starts: the canvas, and the preview brought into view (it is below the fold on a
#: laptop); the page's clock: when Render was pressed (a Stop after it stops this job).
SHOW_PREVIEW = ("(photo, clock) => { document.querySelector('#progress')?.scrollIntoView({behavior: 'smooth'}); "
                "return [{background: photo, mask: impastoMaskData()}, Date.now()]; }")
#: A painted area the server made (a box selection, a run brought back) goes onto the page's brush.
SHOW_MASK = "(shown) => { impastoShowMask(shown?.url || ''); }"

#: The brush bar under the photo: the brush's size, the eraser, and a clear.
BRUSH_BAR = """<div class="impasto-brush-bar">
<label>Brush size <input type="range" id="brush-size" min="4" max="160" value="32"></label>
<label><input type="checkbox" id="brush-erase"> Eraser</label>
<button type="button" id="brush-clear">Clear the painted area</button>
</div>"""

#: The page's brush (in the page's head): a 2D canvas laid over the photo as the page shows it
#: (``#content .image-frame img``), at most MASK_SIDE px on a side, in the brush's colour, seen
#: through at the brush's opacity.  Each move of the hand draws one line on it; nothing else runs
#: until the stroke ends, when the hidden ``#mask-sync`` button hands the area to the server
#: (``impastoMaskData()`` gives its data URL, "" for none).  A new photo gets an empty canvas;
#: ``impastoShowMask(url)`` puts an area the server made (a box selection, a run brought back) on it.
BRUSH_SCRIPT = """<script>
const impastoBrush = {size: 32, erase: false, painted: false, pending: null, canvas: null, img: null, src: null,
  observer: null};
function impastoBrushLayout() {
  const {canvas, img} = impastoBrush;
  if (!canvas || !img || !img.naturalWidth) return;
  const frame = img.parentElement, box = img.getBoundingClientRect(), outer = frame.getBoundingClientRect();
  const fit = getComputedStyle(img).objectFit;
  let scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  if (fit === "scale-down") scale = Math.min(scale, 1);
  let [width, height] = [img.naturalWidth * scale, img.naturalHeight * scale];
  if (fit === "fill" || fit === "") { width = box.width; height = box.height; }
  Object.assign(canvas.style, {left: (box.left - outer.left + (box.width - width) / 2) + "px",
    top: (box.top - outer.top + (box.height - height) / 2) + "px", width: width + "px", height: height + "px"});
}
function impastoMaskSync() { document.querySelector("#mask-sync")?.click(); }
function impastoBrushDraw(url) {  // the area ``url`` on the canvas, then handed to the server
  const {canvas} = impastoBrush;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  impastoBrush.painted = false;
  if (!url) { impastoMaskSync(); return; }
  const picture = new Image();
  picture.onload = () => {
    if (impastoBrush.canvas !== canvas) return;
    context.globalCompositeOperation = "source-over";
    context.drawImage(picture, 0, 0, canvas.width, canvas.height);
    impastoBrush.painted = true;
    impastoMaskSync();
  };
  picture.onerror = impastoMaskSync;  // the canvas is clear: the server hears so
  picture.src = url;
}
function impastoBrushStage() {
  const img = document.querySelector("#content .image-frame img");
  if (!img) {
    impastoBrush.canvas?.remove();
    impastoBrush.observer?.disconnect();
    Object.assign(impastoBrush, {canvas: null, img: null, src: null, painted: false});
    return;
  }
  if (impastoBrush.img === img && impastoBrush.src === img.src && impastoBrush.canvas?.isConnected) return;
  impastoBrush.canvas?.remove();  // never the last photo's area over (or sent for) a new one
  Object.assign(impastoBrush, {canvas: null, img: null, src: null, painted: false});
  if (!img.complete || !img.naturalWidth) { img.addEventListener("load", impastoBrushStage, {once: true}); return; }
  impastoBrush.observer?.disconnect();
  const canvas = document.createElement("canvas"), side = %(side)d;
  const scale = Math.min(1, side / Math.max(img.naturalWidth, img.naturalHeight));
  canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
  canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
  canvas.className = "impasto-brush";
  canvas.setAttribute("aria-label", "Paint where the style goes");
  img.parentElement.style.position = "relative";
  img.parentElement.append(canvas);
  Object.assign(impastoBrush, {canvas, img, src: img.src, painted: false});
  impastoBrush.observer = new ResizeObserver(impastoBrushLayout);
  impastoBrush.observer.observe(img);
  impastoBrushLayout();
  const context = canvas.getContext("2d");
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const line = (from, to) => {
    context.globalCompositeOperation = impastoBrush.erase ? "destination-out" : "source-over";
    context.strokeStyle = "%(colour)s";
    context.lineCap = "round";
    context.lineJoin = "round";
    context.lineWidth = impastoBrush.size * canvas.width / canvas.getBoundingClientRect().width;
    context.beginPath();
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  };
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    impastoBrush.size = Number(document.querySelector("#brush-size")?.value || impastoBrush.size);
    impastoBrush.erase = Boolean(document.querySelector("#brush-erase")?.checked);
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    line(last, last);
    if (!impastoBrush.erase) impastoBrush.painted = true;
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    line(last, next);
    last = next;
  });
  const end = () => {
    if (!last) return;
    last = null;
    impastoMaskSync();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  if (impastoBrush.pending !== null) { impastoBrushDraw(impastoBrush.pending); impastoBrush.pending = null; }
}
function impastoMaskData(photoUrl) {  // photoUrl: only the area painted on that photo
  if (photoUrl && photoUrl !== impastoBrush.src) return "";
  return impastoBrush.canvas && impastoBrush.painted ? impastoBrush.canvas.toDataURL("image/png") : "";
}
function impastoShowMask(url) {
  impastoBrush.pending = url || "";
  const img = document.querySelector("#content .image-frame img");
  if (impastoBrush.canvas && impastoBrush.img === img && impastoBrush.src === img?.src) {
    impastoBrushDraw(impastoBrush.pending);
    impastoBrush.pending = null;
  }
}
new MutationObserver(impastoBrushStage).observe(document.documentElement,
  {childList: true, subtree: true, attributes: true, attributeFilter: ["src"]});
document.addEventListener("input", (event) => {
  if (event.target.id === "brush-size") impastoBrush.size = Number(event.target.value);
});
document.addEventListener("change", (event) => {
  if (event.target.id === "brush-erase") impastoBrush.erase = event.target.checked;
});
document.addEventListener("click", (event) => {
  if (event.target.id !== "brush-clear" || !impastoBrush.canvas) return;
  impastoBrushDraw("");
});
</script>
<style>
#content .image-frame img { object-fit: contain !important; object-position: center; }
.impasto-brush { position: absolute; opacity: %(opacity)s; cursor: crosshair; touch-action: none; }
.impasto-brush-bar { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
.impasto-hidden { display: none !important; }
</style>""" % {"side": MASK_SIDE, "colour": BRUSH_COLOUR, "opacity": BRUSH_OPACITY}
