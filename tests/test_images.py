import io
import os

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageCms

from impasto.core import images
from impasto.core.errors import ImpastoError

from helpers import gradient_photo, need_data


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path):
    # A 40x20 landscape picture whose left half is red; orientation 6 = rotate 90 degrees clockwise to display.
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = (255, 0, 0)
    array[:, 20:] = (0, 0, 255)
    img = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(img, tmp_path / "rotated.jpg", exif=exif, quality=98)
    t = images.read_image(path)
    assert t.shape == (1, 3, 40, 20)  # displayed as portrait
    # after a clockwise turn the (red) left half is at the top
    assert t[0, 0, :15].mean() > 0.8 and t[0, 2, :15].mean() < 0.2
    assert t[0, 2, 25:].mean() > 0.8


def test_16bit_grayscale_png_keeps_precision(tmp_path):
    array = (np.arange(64 * 32, dtype=np.uint32).reshape(32, 64) * 31).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    t = images.read_image(path)
    assert t.shape == (1, 3, 32, 64)
    assert torch.allclose(t[0, 0], torch.from_numpy(array.astype(np.float32) / 65535.0), atol=1e-6)
    assert torch.equal(t[0, 0], t[0, 2])


def test_16bit_rgb_tiff_keeps_precision(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 65536, (24, 40, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, array, photometric="rgb")
    t = images.read_image(path)
    assert torch.allclose(t[0].permute(1, 2, 0), torch.from_numpy(array.astype(np.float32) / 65535.0), atol=1e-6)


def test_16bit_tiff_round_trip(tmp_path):
    t = torch.rand(1, 3, 17, 23)
    path = images.save_image(t, tmp_path / "out.tiff")
    back = images.read_image(path)
    assert (back - t).abs().max() < 1.0 / 65535 + 1e-6  # 16-bit, not 8-bit, precision
    assert tifffile.imread(path).dtype == np.uint16


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "1"])
def test_modes_become_rgb(tmp_path, mode):
    base = gradient_photo()
    img = base.convert(mode)
    path = _save(img, tmp_path / f"img_{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
    t = images.read_image(path)
    assert t.shape == (1, 3, 48, 64) and 0 <= t.min() and t.max() <= 1


def test_alpha_is_composited_over_white(tmp_path):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    t = images.read_image(_save(img, tmp_path / "clear.png"))
    assert torch.allclose(t, torch.ones_like(t))


@pytest.mark.parametrize("ext", ["webp", "bmp", "tiff", "jpeg"])
def test_formats(tmp_path, ext):
    img = gradient_photo()
    path = _save(img, tmp_path / f"img.{ext}", **({"lossless": True} if ext == "webp" else {}))
    t = images.read_image(path)
    assert t.shape == (1, 3, 48, 64)
    if ext != "jpeg":
        assert torch.allclose(t, images.pil_to_tensor(img), atol=1 / 255)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    t = images.read_image(path)
    assert t[0, 0].mean() > 0.9 and t[0, 1].mean() < 0.1


def test_icc_profile_is_converted_to_srgb():
    path = need_data("train", "content_extra", "Atlanta.jpg")  # carries an Adobe RGB (1998) profile
    raw = Image.open(path)
    assert "Adobe RGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(raw.info["icc_profile"])))
    t = images.read_image(path)
    naive = images._array_to_tensor(np.asarray(raw.convert("RGB"), np.float32) / 255)
    expected = ImageCms.profileToProfile(raw, ImageCms.ImageCmsProfile(io.BytesIO(raw.info["icc_profile"])),
                                         ImageCms.createProfile("sRGB"), outputMode="RGB")
    assert torch.allclose(t, images.pil_to_tensor(expected.convert("RGB")), atol=1 / 255)
    assert (t - naive).abs().mean() > 0.005  # the conversion changed the colours


def test_missing_directory_and_non_image(tmp_path):
    with pytest.raises(ImpastoError, match="file not found") as err:
        images.read_image(tmp_path / "nope.png")
    assert "nope.png" in str(err.value)
    with pytest.raises(ImpastoError, match="is a directory"):
        images.read_image(tmp_path)
    text = tmp_path / "notes.jpg"
    text.write_text("hello, I am not a picture")
    with pytest.raises(ImpastoError, match="not an image"):
        images.read_image(text)


def test_truncated_image(tmp_path):
    path = _save(gradient_photo(256, 256), tmp_path / "full.png")
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImpastoError, match="truncated or corrupt"):
        images.read_image(cut)


def test_decompression_bomb_limit(tmp_path):
    path = _save(Image.new("RGB", (300, 200)), tmp_path / "big.png")
    with pytest.raises(ImpastoError, match="more than the limit of 50000"):
        images.read_image(path, max_pixels=50_000)
    assert images.read_image(path, max_pixels=60_000).shape == (1, 3, 200, 300)


def test_resize_by_max_side_keeps_aspect():
    t = torch.rand(1, 3, 300, 200)
    out = images.resize_max_side(t, 150)
    assert out.shape == (1, 3, 150, 100)
    assert images.scaled_size(1080, 1920, 512) == (288, 512)
    with pytest.raises(ImpastoError):
        images.scaled_size(10, 10, 0)


def test_save_formats_by_extension(tmp_path):
    t = torch.rand(1, 3, 20, 30)
    for ext, fmt in [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP")]:
        path = images.save_image(t, tmp_path / f"o{ext}")
        assert Image.open(path).format == fmt
    with pytest.raises(ImpastoError, match="unknown output format"):
        images.save_image(t, tmp_path / "o.xyz")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    images.save_image(torch.zeros(1, 3, 8, 8), target)
    before = target.read_bytes()

    def broken_save(self, fp, format=None, **params):
        fp.write(b"\x89PNG half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImpastoError, match="No space left"):
        images.save_image(torch.ones(1, 3, 8, 8), target)
    assert target.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["out.png"]  # no temporary left behind
    with pytest.raises(ImpastoError):
        images.save_image(torch.ones(1, 3, 8, 8), tmp_path / "new.png")
    assert not (tmp_path / "new.png").exists()


def test_output_checks(tmp_path):
    src = _save(gradient_photo(), tmp_path / "in.png")
    with pytest.raises(ImpastoError, match="refusing to overwrite an input"):
        images.check_output_path(src, (src,))
    assert images.check_output_path(src, (src,), overwrite_inputs=True) == src
    with pytest.raises(ImpastoError, match="folder does not exist"):
        images.check_output_path(tmp_path / "missing" / "o.png")
    with pytest.raises(ImpastoError, match="is a directory"):
        (tmp_path / "d.png").mkdir()
        images.check_output_path(tmp_path / "d.png")


def test_a_name_too_long_for_the_temporary_file_fails_before_the_work(tmp_path):
    name = "a" * 246 + ".png"  # a legal name (250 characters); ".NAME.XXXXXXXX.part" is not
    with pytest.raises(ImpastoError, match="file name is too long"):
        images.check_output_path(tmp_path / name)


def test_leftover_temporary_files_are_cleaned_up_by_the_next_write(tmp_path):
    import time

    from impasto.core.files import STALE_SECONDS

    stale = tmp_path / ".out.png.abc123_x.part"
    fresh = tmp_path / ".out.png.def456_y.part"  # perhaps another process writing right now: kept
    other = tmp_path / ".other.png.abc123_z.part"
    kept = tmp_path / ".notes.part"  # not one of impasto's temporary names
    for part in (stale, fresh, other, kept):
        part.write_bytes(b"half")
    old = time.time() - STALE_SECONDS - 60
    for part in (stale, other, kept):
        os.utime(part, (old, old))
    images.save_image(torch.zeros(1, 3, 8, 8), tmp_path / "out.png")
    assert not stale.exists() and not other.exists() and fresh.exists() and kept.exists()


def test_unwritable_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # root may write into a 0o500 folder, but not into /proc: one of the two must refuse
    targets = [locked / "o.png"] + ([] if not os.path.isdir("/proc/self") else [__import__("pathlib").Path("/proc/o.png")])
    refused = 0
    for target in targets:
        try:
            images.check_output_path(target)
        except ImpastoError as exc:
            assert "not writable" in str(exc) and str(target) in str(exc)
            refused += 1
    assert refused >= 1


def test_as_tensor_accepts_pil_array_tensor():
    img = gradient_photo()
    t = images.as_tensor(img)
    assert torch.allclose(images.as_tensor(np.asarray(img)), t)
    assert torch.allclose(images.as_tensor(t[0]), t)
    with pytest.raises(ImpastoError):
        images.as_tensor(torch.rand(2, 3, 4, 4))
