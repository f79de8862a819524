import numpy as np
import pytest
import torch
from PIL import Image

from impasto.core.errors import ImpastoError
from impasto.core.masks import GRABCUT_SIDE, grabcut_mask

from helpers import one_error_line, run_cli, stripes

FAST = ["--size", "48", "--precision", "fp32", "--device", "cpu", "-q"]


def disc_photo(width: int = 120, height: int = 90, centre=(60, 45), radius: int = 25, seed: int = 0):
    """A bright disc on a dark, noisy, striped background: (photo tensor, the disc's true mask)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    background = 0.25 + 0.1 * np.sin(x / 3.0)[..., None] * np.array([1.0, 0.6, 0.3]) + rng.normal(0, 0.04, (height, width, 3))
    disc = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius ** 2
    pixels = np.where(disc[..., None], np.array([0.95, 0.9, 0.7]) + rng.normal(0, 0.02, (height, width, 3)), background)
    photo = torch.from_numpy(np.clip(pixels, 0, 1)).float().permute(2, 0, 1)[None]
    return photo, torch.from_numpy(disc)


def iou(mask: torch.Tensor, truth: torch.Tensor) -> float:
    found = mask[0, 0] > 0.5
    return float((found & truth).sum()) / float((found | truth).sum())


def test_grabcut_finds_the_disc_in_its_box():
    photo, disc = disc_photo()
    mask = grabcut_mask(photo, (25, 10, 95, 80))
    assert mask.shape == (1, 1, 90, 120) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert iou(mask, disc) > 0.8
    assert float(mask[0, 0][~disc].mean()) < 0.05  # little of the background
    assert not mask[0, 0, :, :25].any() and not mask[0, 0, :10].any()  # nothing outside the box


def test_grabcut_on_a_large_photo_works_on_a_smaller_copy(monkeypatch):
    import cv2

    seen = []
    real = cv2.grabCut

    def spy(image, *args):
        seen.append(image.shape[:2])
        return real(image, *args)

    monkeypatch.setattr(cv2, "grabCut", spy)
    photo, disc = disc_photo(1200, 900, centre=(600, 450), radius=250)
    mask = grabcut_mask(photo, (250, 100, 950, 800), iterations=3)
    assert max(seen[0]) == GRABCUT_SIDE and mask.shape[-2:] == (900, 1200)
    assert iou(mask, disc) > 0.8


@pytest.mark.parametrize("box, words", [((0, 0, 0, 10), "is empty"), ((30, 10, 20, 40), "is empty"),
                                        ((10, 10, 200, 40), "outside the 120x90 photo"),
                                        ((-5, 0, 20, 20), "outside"), ((0, 0, 120, 90), "whole photo")])
def test_bad_boxes_are_errors_naming_mask_box(box, words):
    photo, _ = disc_photo()
    with pytest.raises(ImpastoError, match=words) as caught:
        grabcut_mask(photo, box)
    assert caught.value.parameter == "mask_box"


def test_stylize_with_a_mask_box(capsys, tmp_path):
    """The box's subject takes the style, the background keeps the photo (strength 1, adain)."""
    photo, disc = disc_photo()
    content, out = tmp_path / "disc.png", tmp_path / "out.png"
    Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(content)
    stripes(64, colours=((20, 200, 40), (30, 40, 220))).save(tmp_path / "style.png")
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", content, tmp_path / "style.png", "-o", out,
                           "--mask-box", "25,10,95,80", *FAST)
    assert code == 0, err
    painted = torch.from_numpy(np.asarray(Image.open(out).convert("RGB"), np.float32) / 255).permute(2, 0, 1)
    before = torch.nn.functional.interpolate(photo, size=painted.shape[-2:], mode="area")[0]
    change = (painted - before).abs().mean(0)
    small = torch.nn.functional.interpolate(disc[None, None].float(), size=painted.shape[-2:], mode="area")[0, 0]
    assert float(change[small > 0.99].mean()) > 3 * float(change[small < 0.01].mean())


def test_mask_box_errors_are_one_line(capsys, tmp_path):
    photo, _ = disc_photo()
    content = tmp_path / "disc.png"
    Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(content)
    stripes(64).save(tmp_path / "style.png")
    base = ["stylize", "--method", "adain", content, tmp_path / "style.png", "-o", tmp_path / "out.png", *FAST]
    code, _, err = run_cli(capsys, *base, "--mask-box", "10,10,500,40")
    assert code == 2 and one_error_line(err) == "impasto: error: --mask-box: box 10,10,500,40 is outside the 120x90 photo"
    code, _, err = run_cli(capsys, *base, "--mask-box", "10,10,5")
    assert code == 2 and "--mask-box" in one_error_line(err) and "4 numbers" in err
    code, _, err = run_cli(capsys, *base, "--mask-box", "30,10,20,40")
    assert code == 2 and "is empty" in one_error_line(err)
    code, _, err = run_cli(capsys, *base, "--mask-box", "25,10,95,80", "--mask", content)
    assert code == 2 and "2 masks given for 1 style images" in one_error_line(err)
    assert not (tmp_path / "out.png").exists()


def test_video_with_a_mask_box_cut_from_its_first_frame(capsys, tmp_path):
    photo, disc = disc_photo()
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.fromarray((photo[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(frames / f"f{i:03d}.png")
    stripes(64, colours=((20, 200, 40), (30, 40, 220))).save(tmp_path / "style.png")
    code, _, err = run_cli(capsys, "video", frames, "-o", tmp_path / "out", "--method", "adain", "--style",
                           tmp_path / "style.png", "--mask-box", "25,10,95,80", "--independent", *FAST)
    assert code == 0, err
    painted = sorted((tmp_path / "out").glob("*.png"))
    assert len(painted) == 2
    result = torch.from_numpy(np.asarray(Image.open(painted[0]).convert("RGB"), np.float32) / 255).permute(2, 0, 1)
    before = torch.nn.functional.interpolate(photo, size=result.shape[-2:], mode="area")[0]
    change = (result - before).abs().mean(0)
    small = torch.nn.functional.interpolate(disc[None, None].float(), size=result.shape[-2:], mode="area")[0, 0]
    assert float(change[small > 0.99].mean()) > 3 * float(change[small < 0.01].mean())
    code, _, err = run_cli(capsys, "video", frames, "-o", tmp_path / "out2", "--method", "adain", "--style",
                           tmp_path / "style.png", "--mask-box", "25,10,950,80", *FAST)
    assert code == 2 and "outside the 120x90 photo" in one_error_line(err)


def test_a_mask_of_another_shape_is_refused_naming_both_sizes(capsys, tmp_path):
    """A 37x11 mask for a square photo was stretched onto it without a word."""
    content, style, mask = tmp_path / "photo.png", tmp_path / "style.png", tmp_path / "thin.png"
    Image.new("RGB", (64, 64), (120, 90, 60)).save(content)
    stripes(64).save(style)
    Image.new("L", (37, 11), 255).save(mask)
    base = ["stylize", "--method", "adain", content, style, "-o", tmp_path / "out.png", *FAST]
    code, _, err = run_cli(capsys, *base, "--mask", mask)
    line = one_error_line(err)
    assert code == 2 and str(mask) in line and "37x11" in line and "64x64" in line, line
    assert not (tmp_path / "out.png").exists()
    Image.new("L", (63, 64), 255).save(mask)  # within rounding of the photo's shape: taken
    code, _, err = run_cli(capsys, *base, "--mask", mask)
    assert code == 0, err


def test_the_job_itself_refuses_a_mask_of_another_shape_before_painting(tmp_path):
    """The check lives in the job, so the API and the studio get it too, files and tensors alike."""
    from impasto.jobs.image_job import ImageJob
    from impasto.methods import Request

    style = tmp_path / "style.png"
    stripes(64).save(style)
    thin = Image.new("L", (37, 11), 255)
    job = ImageJob(photos=[torch.rand(1, 3, 64, 64)], styles=[style], output=None, method="adain",
                   request=Request(size=64, masks=[thin]))
    with pytest.raises(ImpastoError, match="37x11 but the photo .* is 64x64") as caught:
        job.run()
    assert caught.value.parameter == "masks"
    job.request.masks = [Image.new("L", (64, 64), 255)]
    assert job.validate()[0].name == "adain"


def test_a_folder_of_photos_is_checked_photo_by_photo(capsys, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(photos / "a.png")
    Image.new("RGB", (48, 64), (120, 90, 60)).save(photos / "b.png")  # portrait
    stripes(64).save(tmp_path / "style.png")
    Image.new("L", (64, 48), 255).save(tmp_path / "mask.png")
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", photos, tmp_path / "style.png", "-o",
                           tmp_path / "out", "--mask", tmp_path / "mask.png", *FAST)
    assert code == 2 and "b.png is 48x64" in one_error_line(err)


def test_an_exif_turned_photo_takes_a_mask_drawn_on_it_as_shown(tmp_path):
    from impasto.core.masks import check_masks_fit

    photo = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 64x48, shown 48x64
    Image.new("RGB", (64, 48), (120, 90, 60)).save(photo, exif=exif)
    mask = Image.new("L", (48, 64), 255)
    from impasto.core.masks import shown_size

    check_masks_fit([mask], [(photo, shown_size(photo, 10**6))], 10**6)
    with pytest.raises(ImpastoError, match="is 64x48"):
        check_masks_fit([Image.new("L", (64, 48), 255)], [(photo, shown_size(photo, 10**6))], 10**6)


def test_a_video_refuses_a_mask_of_another_shape(capsys, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 48), (100 + i, 90, 60)).save(frames / f"f{i:03d}.png")
    stripes(64).save(tmp_path / "style.png")
    Image.new("L", (48, 48), 255).save(tmp_path / "mask.png")
    code, _, err = run_cli(capsys, "video", frames, "-o", tmp_path / "out", "--method", "adain", "--style",
                           tmp_path / "style.png", "--mask", tmp_path / "mask.png", *FAST)
    assert code == 2 and "48x48" in one_error_line(err) and "64x48" in err


def test_a_missing_mask_file_is_said_so(capsys, tmp_path):
    Image.new("RGB", (64, 48), (120, 90, 60)).save(tmp_path / "photo.png")
    stripes(64).save(tmp_path / "style.png")
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", tmp_path / "photo.png", tmp_path / "style.png",
                           "-o", tmp_path / "out.png", "--mask", tmp_path / "gone.png", *FAST)
    assert code == 2 and one_error_line(err) == f"impasto: error: {tmp_path / 'gone.png'}: file not found"


@pytest.mark.parametrize("method, styles, model", [("fast", 0, "mosaic"), ("adain", 1, None), ("arbitrary", 1, None)])
def test_outside_its_mask_every_one_pass_method_keeps_the_photo_itself(tmp_path, method, styles, model):
    """A painted area means one thing everywhere: the painting inside, the photo's own pixels outside
    (AdaIN's decoder and a fast model used to repaint the photo there, and the studio patched it)."""
    from impasto import methods
    from impasto.core.modelfile import resolve_model

    model = resolve_model(model) if model else None
    photo = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 1, 48, 64)
    mask[..., :, :32] = 1.0
    request = methods.Request(size=64, masks=[mask], model=model)
    painted = methods.stylize(method, photo, [stripes(48)] * styles, request).image
    assert painted.shape == photo.shape
    torch.testing.assert_close(painted[..., 34:], photo[..., 34:], atol=1 / 255, rtol=0)  # the photo, untouched
    assert float((painted[..., :30] - photo[..., :30]).abs().mean()) > 0.05  # painted inside


def test_a_fast_model_takes_one_mask_not_two():
    from impasto import methods

    mask = torch.ones(1, 1, 8, 8)
    with pytest.raises(ImpastoError, match="paints inside one mask") as caught:
        methods.stylize("fast", torch.rand(1, 3, 8, 8), [], methods.Request(size=8, masks=[mask, mask], model="mosaic"))
    assert caught.value.parameter == "masks"
