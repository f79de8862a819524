"""Image files in and out: every input becomes an sRGB float tensor, every output is written atomically.

Inputs may be JPEG, PNG, WebP, TIFF, BMP or GIF (first frame), in any mode Pillow knows: EXIF
orientation is applied, embedded ICC profiles are converted to sRGB, alpha is composited over
white, palette/grayscale/CMYK become RGB, and 16-bit data keeps its precision (TIFF through
tifffile, PNG through Pillow's 16-bit modes).

Tensors are ``(1, 3, H, W)`` float32 in ``[0, 1]``, RGB.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Iterator, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from impasto.core.errors import ImpastoError
from impasto.core.files import atomic_write, check_writable, refuse_inputs

ImageLike = Union[str, os.PathLike, Image.Image, torch.Tensor, np.ndarray]

#: The output's long side (px) when none is asked for: every front end's default size.
DEFAULT_SIZE = 512
#: Refuse images with more pixels than this unless the caller raises the limit (decompression bombs).
DEFAULT_MAX_PIXELS = 100_000_000

#: Output formats by file extension.
OUTPUT_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

_SRGB = ImageCms.createProfile("sRGB")


# ----------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Read an image file into a ``(1, 3, H, W)`` float tensor in [0, 1] (sRGB).

    Raises :class:`ImpastoError` naming the file for anything wrong with it.
    """
    path = Path(path)
    if not path.exists():
        raise ImpastoError("file not found", path)
    if path.is_dir():
        raise ImpastoError("is a directory, not an image file", path)
    if path.suffix.lower() in (".tif", ".tiff"):
        array = _read_tiff_high_depth(path, max_pixels)
        if array is not None:
            return _array_to_tensor(array)
    array = _read_png_high_depth(path, max_pixels)
    if array is not None:
        return _array_to_tensor(array)
    with _opened(path, max_pixels) as img:
        img.seek(0)  # animated GIF/WebP: the first frame
        img.load()
        return pil_to_tensor(img)


@contextlib.contextmanager
def _opened(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """The image opened (header read, size checked); anything wrong with the file, then or while
    the caller decodes it, becomes one :class:`ImpastoError` naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(img.size, max_pixels, path)
                yield img
    except ImpastoError:
        raise
    except UnidentifiedImageError:
        raise ImpastoError("not an image, or a format that cannot be read", path) from None
    except Image.DecompressionBombError:
        raise ImpastoError(
            f"image is too large (more than {max_pixels} pixels; raise the limit with --max-pixels)", path
        ) from None
    except PermissionError:
        raise ImpastoError("permission denied", path) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImpastoError(f"truncated or corrupt image data ({exc})", path) from None


def _check_pixels(size: tuple[int, int], max_pixels: int, path: Path) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImpastoError(
            f"image is {width}x{height} = {width * height} pixels, more than the limit of {max_pixels} "
            "(a possible decompression bomb; raise the limit with --max-pixels)",
            path,
        )


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file's header, checked against ``max_pixels``; nothing is decoded.

    Checks an image before the work starts (a folder scan, an upload) without paying for it.
    """
    path = Path(path)
    with _opened(path, max_pixels) as img:
        return img.size


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_png_high_depth(path: Path, max_pixels: int) -> np.ndarray | None:
    """16-bit colour PNGs through OpenCV (Pillow reads them as 8 bits); None for every other file.

    Returns RGB floats in [0, 1], alpha composited over white as for 8-bit images.
    """
    try:
        with open(path, "rb") as handle:
            header = handle.read(26)
    except OSError:
        return None  # Pillow's reader reports it
    if len(header) < 26 or header[:8] != _PNG_SIGNATURE or header[12:16] != b"IHDR":
        return None
    bit_depth, colour_type = header[24], header[25]
    if bit_depth != 16 or colour_type not in (2, 6):  # 16-bit grey is read by Pillow in full
        return None
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    _check_pixels((width, height), max_pixels, path)
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3:
        raise ImpastoError("truncated or corrupt image data (16-bit PNG)", path)
    array = array[:, :, [2, 1, 0, 3][: array.shape[2]]].astype(np.float32) / 65535.0  # BGR(A) -> RGB(A)
    if array.shape[2] == 4:
        rgb, alpha = array[:, :, :3], array[:, :, 3:4]
        array = rgb * alpha + (1 - alpha)
    with Image.open(path) as img:
        orientation = img.getexif().get(0x0112, 1)
    return _apply_orientation(array, int(orientation))


def _read_tiff_high_depth(path: Path, max_pixels: int) -> np.ndarray | None:
    """16/32-bit TIFFs through tifffile (Pillow would drop to 8 bits); None for ordinary ones."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            if page.dtype is None or np.dtype(page.dtype).itemsize == 1:
                return None
            shape = page.shape
            height, width = (shape[0], shape[1]) if page.samplesperpixel > 1 or len(shape) == 2 else shape[:2]
            if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
                return None
            _check_pixels((int(width), int(height)), max_pixels, path)
            array = page.asarray()
            orientation = page.tags.get("Orientation")
            orientation = int(orientation.value) if orientation is not None else 1
    except ImpastoError:
        raise
    except Exception:  # not a TIFF tifffile understands: let Pillow try and report
        return None
    if array.dtype.kind == "f":
        array = np.clip(array.astype(np.float32), 0.0, 1.0)
    else:
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.shape[2] == 2:  # gray + alpha
        gray, alpha = array[:, :, :1], array[:, :, 1:2]
        array = np.repeat(gray * alpha + (1 - alpha), 3, axis=2)
    elif array.shape[2] >= 4:  # RGB + alpha (+ extra samples)
        rgb, alpha = array[:, :, :3], array[:, :, 3:4]
        array = rgb * alpha + (1 - alpha)
    return _apply_orientation(array[:, :, :3], orientation)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF/TIFF orientation tag (1..8) to an H x W x C array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 1)[::-1, :],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a PIL image in any mode to a ``(1, 3, H, W)`` sRGB float tensor in [0, 1]."""
    img = ImageOps.exif_transpose(img)
    icc = img.info.get("icc_profile")
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        array = np.asarray(img, dtype=np.float32)
        scale = 1.0 if img.mode == "F" else 65535.0
        array = np.clip(array / scale, 0.0, 1.0)
        return _array_to_tensor(np.repeat(array[:, :, None], 3, axis=2))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode == "1":
        img = img.convert("L")
    if icc and img.mode in ("RGB", "RGBA", "L", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            img = ImageCms.profileToProfile(img, source, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to treating the pixels as sRGB
    img = img.convert("RGB")
    return _array_to_tensor(np.asarray(img, dtype=np.float32) / 255.0)


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0).contiguous()


def as_tensor(source: ImageLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Accept a path, a PIL image, an H x W x 3 array or a tensor; return ``(1, 3, H, W)`` float in [0, 1]."""
    if isinstance(source, torch.Tensor):
        t = source.detach().float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] not in (1, 3):
            raise ImpastoError(f"expected an image tensor of shape (3, H, W) or (1, 3, H, W), got {tuple(t.shape)}")
        return t.expand(1, 3, *t.shape[2:]).clamp(0, 1).cpu().contiguous()
    if isinstance(source, Image.Image):
        return pil_to_tensor(source)
    if isinstance(source, np.ndarray):
        array = source.astype(np.float32)
        if source.dtype == np.uint8:
            array /= 255.0
        elif source.dtype == np.uint16:
            array /= 65535.0
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        return _array_to_tensor(np.clip(array[:, :, :3], 0, 1))
    return read_image(source, max_pixels=max_pixels)


# ---------------------------------------------------------------------------------------- resizing


def source_label(source: object, what: str) -> str:
    """How to name an input in a message: its path, or ``<what>`` for an in-memory image."""
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{what}>"


def scaled_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The (height, width) with the long side equal to ``max_side``, keeping the aspect ratio."""
    if max_side <= 0:
        raise ImpastoError(f"size must be a positive number of pixels, got {max_side}")
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a ``(N, C, H, W)`` tensor to ``size`` = (H, W) with antialiased bicubic filtering."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0)


def resize_max_side(image: torch.Tensor, max_side: int | None,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Resize so that the long side is ``max_side`` (no-op for None).

    The new size is checked against ``max_pixels`` before anything is allocated, so that a
    mistyped ``--size`` is a message, not an out-of-memory crash.
    """
    if max_side is None:
        return image
    height, width = scaled_size(image.shape[-2], image.shape[-1], max_side)
    if height * width > max_pixels:
        raise ImpastoError(f"size {max_side} makes a {width}x{height} image = {width * height} pixels, more than "
                           f"the limit of {max_pixels} (lower --size or raise --max-pixels)")
    return resize(image, (height, width))


# ----------------------------------------------------------------------------------------- writing


def pad_to_multiple(image: torch.Tensor, multiple: int, minimum: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right so both sides divide by ``multiple`` (and reach ``minimum``); returns the original size.

    Networks that downsample need this for inputs of any size; crop their output back to it.
    """
    h, w = image.shape[-2:]
    ph, pw = max(minimum - h, (-h) % multiple), max(minimum - w, (-w) % multiple)
    ph, pw = ph + (-(h + ph)) % multiple, pw + (-(w + pw)) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        image = F.pad(image, (0, pw, 0, ph), mode=mode)
    return image, (h, w)


def pad_around(image: torch.Tensor, margin: int, multiple: int,
               minimum: int = 0) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Mirror ``margin`` px onto every side, then pad to a multiple; returns (padded, (top, left, h, w)).

    Convolutional networks see zero padding at an image's edge and paint a frame there; seen
    through a mirrored margin, the edge looks like the image's inside.  Crop the output with the box.
    """
    h, w = image.shape[-2:]
    margin = max(0, min(margin, h - 1, w - 1))
    if margin:
        image = F.pad(image, (margin, margin, margin, margin), mode="reflect")
    padded, _ = pad_to_multiple(image, multiple, minimum)
    return padded, (margin, margin, h, w)


def digest(image: torch.Tensor) -> str:
    """A short hash of an image's 8-bit pixels and size: the same picture, the same digest."""
    import hashlib

    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return hashlib.sha256(str(pixels.shape).encode() + pixels.tobytes()).hexdigest()[:16]


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` float tensor in [0, 1] -> 8-bit RGB PIL image."""
    t = image.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    array = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def check_output_path(
    path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = (), overwrite_inputs: bool = False
) -> Path:
    """Fail early (before hours of work) if ``path`` cannot be written or would clobber an input."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        known = ", ".join(sorted(OUTPUT_FORMATS))
        raise ImpastoError(f"unknown output format {path.suffix or '(no extension)'!r}; use one of {known}", path)
    if path.is_dir():
        raise ImpastoError("is a directory; give a file name for the output", path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ImpastoError("cannot write output: the folder does not exist", path)
    # the only reliable test (root, read-only mounts, network file systems, names too long once
    # the temporary file's prefix and suffix are added): make the very temporary file a write makes
    check_writable(path)
    if path.exists() and not os.access(path, os.W_OK):
        raise ImpastoError("cannot write output: the file is read-only", path)
    if not overwrite_inputs:
        refuse_inputs(path, [source for source in inputs
                             if isinstance(source, (str, os.PathLike)) and not Path(source).is_dir()])
    return path


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike, quality: int = 95,
               png_level: int | None = None) -> Path:
    """Write an image atomically: to a temporary file beside ``path``, then rename over it.

    The format follows the extension; ``.tif``/``.tiff`` from a tensor is written as 16-bit RGB;
    ``png_level``: a PNG's zlib level (None: Pillow's default, 6).  A failure at any point leaves
    no partial file and an existing file at ``path`` untouched.
    """
    path = check_output_path(path)
    fmt = OUTPUT_FORMATS[path.suffix.lower()]

    def write(handle) -> None:
        if fmt == "TIFF" and isinstance(image, torch.Tensor):
            _write_tiff16(image, handle)
            return
        pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
        if pil.mode not in ("RGB", "L"):
            pil = pil.convert("RGB")
        options: dict[str, int] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
        if fmt == "PNG" and png_level is not None:
            options["compress_level"] = png_level
        pil.save(handle, format=fmt, **options)

    return atomic_write(path, write)


def _write_tiff16(image: torch.Tensor, handle) -> None:
    import tifffile

    t = image.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    array = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 65535.0 + 0.5).astype(np.uint16)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="rgb", compression="zlib")
    handle.write(buffer.getvalue())
