"""Fault suite: bad input and broken files end in one line and a non-zero exit, never a traceback,
and never lose finished work. Each test is one fault class (see docs/faults.md)."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from impasto.core import images
from impasto import methods
from impasto.core.errors import ImpastoError
from impasto.core.modelfile import resolve_model
from impasto.networks.training import ImageFolder

from helpers import gradient_photo, image_folder, one_error_line, run_cli, stripes

QUICK = ["--precision", "fp32", "--device", "cpu"]


@pytest.mark.parametrize("method", [["-n", "1"], ["--method", "adain"], ["--model", "mosaic"]])
def test_a_huge_size_is_refused_before_anything_is_allocated(capsys, tmp_path, inputs, method):
    content, style = inputs
    inputs = [content] if "--model" in method else [content, style]
    code, _, err = run_cli(capsys, "stylize", *inputs, "-o", tmp_path / "out.png", "--size", "1000000",
                           *method, *QUICK)
    assert code == 2
    line = one_error_line(err)  # also: no empty progress bar before the error
    assert "more than the limit" in line and "--max-pixels" in line
    assert not (tmp_path / "out.png").exists()


def test_the_size_limit_follows_max_pixels():
    image = torch.rand(1, 3, 30, 40)
    assert images.resize_max_side(image, 80, max_pixels=80 * 60).shape[-2:] == (60, 80)
    with pytest.raises(ImpastoError, match="more than the limit of 4799"):
        images.resize_max_side(image, 80, max_pixels=80 * 60 - 1)


def test_one_corrupt_photo_does_not_stop_a_batch(capsys, tmp_path):
    folder = image_folder(tmp_path / "in", 3)
    (folder / "photo_01.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "stylize", folder, "--model", "mosaic", "-o", out, "--size", "32", *QUICK)
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["photo_00.png", "photo_02.png"]
    assert "photo_01.png" in err and "1 of 3 image(s) failed" in err and "Traceback" not in err
    # a rerun with --skip-existing retries only the bad one and reports it again
    code, _, err = run_cli(capsys, "stylize", folder, "--model", "mosaic", "-o", out, "--size", "32",
                           "--skip-existing", *QUICK)
    assert code == 1 and "1 of 3" in err


def test_an_output_folder_that_cannot_be_made_is_one_line(capsys, tmp_path):
    folder = image_folder(tmp_path / "in", 2)
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    code, _, err = run_cli(capsys, "stylize", folder, "--model", "mosaic", "-o", blocker / "out", *QUICK)
    assert code != 0
    assert "a-file" in one_error_line(err)
    assert blocker.read_text() == "in the way"


def test_score_video_on_frames_of_mixed_sizes(capsys, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    gradient_photo(40, 40).save(frames / "0001.png")
    gradient_photo(50, 40).save(frames / "0002.png")
    code, _, err = run_cli(capsys, "score-video", frames, frames)
    assert code == 2
    assert "frames differ in size: frame 1 is 50x40" in one_error_line(err)


def test_a_one_pixel_init_image(capsys, tmp_path, inputs):
    content, style = inputs
    Image.new("RGB", (1, 1), (120, 80, 200)).save(tmp_path / "dot.png")
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "out.png", "--size", "32", "-n", "2",
                           "--init", tmp_path / "dot.png", "-q", *QUICK)
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == (32, 24)


def test_a_seed_out_of_range_is_a_usage_error(capsys, tmp_path, inputs):
    content, style = inputs
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "out.png", "--size", "32", "-n", "1",
                           "--init", "noise", "--seed", str(10**30), "-q", *QUICK)
    assert code == 2 and "a seed is 0 to" in one_error_line(err)
    assert not (tmp_path / "out.png").exists()
    from impasto.engines.optimize import StyleSettings

    with pytest.raises(ImpastoError, match="seed must be"):
        StyleSettings(seed=-1).validate(1)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04broken zip", b"\x80\x02}q\x00."])
def test_a_corrupt_model_file_never_suggests_unsafe_loading(capsys, tmp_path, inputs, content):
    model = tmp_path / "bad.pt"
    model.write_bytes(content)
    code, _, err = run_cli(capsys, "stylize", inputs[0], "--model", model, "-o", tmp_path / "o.png", *QUICK)
    assert code == 2
    line = one_error_line(err)
    assert "not a valid impasto model file" in line and "weights_only" not in line


def test_a_port_out_of_range_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "serve", "--port", "70000")
    assert code == 2 and "a port is 1 to 65535, got 70000" in one_error_line(err)


@pytest.mark.parametrize("weights", [[math.inf, 1.0], [math.nan, 1.0], [-1.0, 2.0], [0.0, 0.0]])
def test_non_finite_or_negative_blend_weights_are_refused_by_the_library(weights):
    with pytest.raises(ImpastoError, match="finite, non-negative"):
        methods.stylize("fast", torch.rand(1, 3, 32, 32), (), methods.Request(
            size=None, style_blend=weights, model=resolve_model("two-styles"), device="cpu", precision="fp32"))


def test_a_decompression_bomb_in_a_training_folder_is_skipped_and_counted(tmp_path):
    folder = image_folder(tmp_path / "photos", 2)
    Image.new("1", (15_000, 15_000)).save(folder / "bomb.png")  # 225 Mpx, a few kB on disk
    data = ImageFolder(folder, crop=16)
    assert len(data) == 2
    assert [p.name for p, _ in data.skipped] == ["bomb.png"]
    assert "too large" in data.skipped_note()


def test_sixteen_bit_colour_png_keeps_sixteen_bits(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, (12, 20, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), rgb[:, :, ::-1])  # OpenCV writes BGR
    image = images.read_image(tmp_path / "deep.png")
    assert image.shape == (1, 3, 12, 20)
    expected = torch.from_numpy(rgb.astype(np.float32) / 65535).permute(2, 0, 1)
    assert torch.allclose(image[0], expected, atol=1e-6)  # 8 bits would be off by up to 1/510


def test_sixteen_bit_png_with_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint16)
    rgba[..., 0] = 65535  # red, fully transparent on the left half
    rgba[:, 2:, 3] = 65535
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba[:, :, [2, 1, 0, 3]])
    image = images.read_image(tmp_path / "alpha.png")[0]
    assert torch.allclose(image[:, :, :2], torch.ones(3, 4, 2))
    assert torch.allclose(image[:, :, 2:], torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 4, 2))


def test_a_sixteen_bit_png_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), np.zeros((30, 40, 3), np.uint16))
    with pytest.raises(ImpastoError, match="more than the limit of 1000"):
        images.read_image(tmp_path / "deep.png", max_pixels=1000)
    assert images.image_size(tmp_path / "deep.png") == (40, 30)


def _train(capsys, tmp_path, *extra):
    photos = image_folder(tmp_path / "photos", 2)
    stripes(32).save(tmp_path / "style.png")
    return run_cli(capsys, "train", "fast", "--style", tmp_path / "style.png", "--data", photos, "--steps", "1",
                   "--crop", "32", "--width", "0.25", "-q", *QUICK, *extra)


def test_training_refuses_to_write_previews_into_its_data(capsys, tmp_path):
    code, _, err = _train(capsys, tmp_path, "-o", tmp_path / "m.pt", "--previews", tmp_path / "photos" / "previews")
    assert code == 2 and "inside an input folder" in one_error_line(err)
    assert not (tmp_path / "photos" / "previews").exists() and not (tmp_path / "m.pt").exists()


def test_training_refuses_a_previews_folder_with_other_files(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "step-000001.png").write_bytes(b"my own picture")
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"x")
    code, _, err = _train(capsys, tmp_path, "-o", tmp_path / "m.pt", "--previews", tmp_path / "mine")
    assert code == 2 and "holds other files" in one_error_line(err)
    assert (tmp_path / "mine" / "step-000001.png").read_bytes() == b"my own picture"


def test_training_refuses_to_overwrite_its_init_model(capsys, tmp_path):
    first = tmp_path / "m.pt"
    assert _train(capsys, tmp_path, "-o", first)[0] == 0
    before = first.read_bytes()
    code, _, err = _train(capsys, tmp_path, "-o", tmp_path / "copy.pt", "--init", first)
    assert code == 0, err
    (tmp_path / "copy.pt.ckpt").unlink()
    code, _, err = _train(capsys, tmp_path, "-o", tmp_path / "copy.pt", "--init", tmp_path / "copy.pt")
    assert code == 2 and "refusing to overwrite an input" in one_error_line(err)
    assert first.read_bytes() == before


def test_export_refuses_to_overwrite_its_model(capsys, tmp_path):
    model = tmp_path / "model.ts"
    model.write_bytes(resolve_model("mosaic").read_bytes())
    code, _, err = run_cli(capsys, "export", model, "-o", model)
    assert code == 2 and "refusing to overwrite an input" in one_error_line(err)
    assert model.read_bytes() == resolve_model("mosaic").read_bytes()


# ------------------------------------------------------------------------- the atomic writer


def test_a_full_disk_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from impasto.core.files import atomic_write

    target = tmp_path / "result.png"
    target.write_bytes(b"the earlier result")

    def write(handle):
        handle.write(b"half of the new")
        raise OSError(28, "No space left on device")

    with pytest.raises(ImpastoError, match="No space left on device"):
        atomic_write(target, write)
    assert target.read_bytes() == b"the earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]


def test_sigkill_mid_write_leaves_no_partial_file_and_the_next_run_cleans_up(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from impasto.core.files import STALE_SECONDS

    target = tmp_path / "frame.png"
    script = ("import sys, time\nfrom impasto.core.files import atomic_write\n"
              "def write(handle):\n    handle.write(b'x' * 1000)\n    handle.flush()\n"
              "    print('writing', flush=True)\n    time.sleep(60)\n"
              f"atomic_write({str(target)!r}, write)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not target.exists()  # never a truncated result under the real name
    parts = list(tmp_path.glob(".frame.png.*.part"))
    assert len(parts) == 1
    old = time.time() - STALE_SECONDS - 5
    os.utime(parts[0], (old, old))
    subprocess.run([sys.executable, "-c", f"from impasto.core.files import atomic_write\n"
                    f"atomic_write({str(target)!r}, lambda h: h.write(b'done'))"], check=True)
    assert target.read_bytes() == b"done"
    assert list(tmp_path.glob("*.part")) == [] and list(tmp_path.glob(".*.part")) == []


def test_concurrent_writers_leave_one_whole_version(tmp_path):
    import threading

    from impasto.core.files import atomic_write

    target = tmp_path / "shared.bin"
    versions = [bytes([i]) * 200_000 for i in range(6)]

    def writer(data):
        for _ in range(5):
            atomic_write(target, lambda handle: handle.write(data))

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_bytes() in versions
    assert [p.name for p in tmp_path.iterdir()] == ["shared.bin"]


def test_an_unwritable_folder_fails_before_the_work(capsys, tmp_path, inputs, monkeypatch):
    """Read-only folders (root ignores permission bits, so the refusal is simulated where the writer asks)."""
    import tempfile

    from impasto.core import files

    content, style = inputs
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and str(tmp_path / "ro") in str(dir):
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    started = []
    monkeypatch.setattr("impasto.engines.optimize.run", lambda *a, **k: started.append(1))
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "ro" / "out.png", *QUICK)
    assert code == 2 and "not writable" in one_error_line(err)
    assert not started


def test_tiles_too_small_for_the_network_are_refused(capsys, tmp_path, inputs):
    content, style = inputs
    code, _, err = run_cli(capsys, "stylize", content, style, "-o", tmp_path / "o.png", "--size", "64", "-n", "1",
                           "--tile-size", "8", "--tile-overlap", "4", *QUICK)
    assert code == 2 and "tile size must be at least 64" in one_error_line(err)


def test_adain_with_a_tiny_size(capsys, tmp_path, inputs):
    content, style = inputs
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", content, style, "-o", tmp_path / "o.png",
                           "--size", "2", "-q", *QUICK)
    assert code == 0, err
    assert max(Image.open(tmp_path / "o.png").size) == 2


def test_a_missing_optional_dependency_names_the_extra(capsys, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gradio", None)  # what an install without the studio extra sees
    code, _, err = run_cli(capsys, "serve", "--port", "7999")
    assert code == 2 and "pip install 'impasto[studio]'" in one_error_line(err)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    code, _, err = run_cli(capsys, "export", "mosaic", "-o", tmp_path / "m.onnx")
    assert code == 2 and "pip install 'impasto[export]'" in one_error_line(err)
    assert not (tmp_path / "m.onnx").exists()
    monkeypatch.setitem(sys.modules, "ray", None)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        gradient_photo(32, 24).save(photos / name)
    code, _, err = run_cli(capsys, "stylize", "--model", "mosaic", photos, "-o", tmp_path / "out", "--cluster")
    assert code == 2 and "pip install 'impasto[cluster]'" in one_error_line(err)


@pytest.mark.parametrize("option", ["--start", "--long-term"])
def test_negative_frame_counts_are_usage_errors(capsys, tmp_path, option):
    frames = tmp_path / "frames"
    frames.mkdir()
    gradient_photo(32, 32).save(frames / "0001.png")
    code, _, err = run_cli(capsys, "video", frames, "-o", tmp_path / "out", "--model", "mosaic", option, "-1")
    assert code == 2 and "must be 0 or more" in one_error_line(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model", ["mosaic", None])  # a fast model; AdaIN (with a style)
def test_a_folder_painted_in_batches_matches_one_at_a_time_with_a_bad_photo_among_them(capsys, tmp_path, model):
    folder = image_folder(tmp_path / "in", 7)  # three sizes among them
    (folder / "photo_03.png").write_bytes(b"not a png at all")
    inputs = [folder, "--model", model] if model else [
        folder, image_folder(tmp_path / "s", 1, "painting") / "painting_00.png", "--method", "adain"]
    outputs = {}
    for batch in ("1", "3"):
        out = tmp_path / f"out{batch}"
        code, _, err = run_cli(capsys, "stylize", *inputs, "-o", out, "--size", "40", "--batch", batch, *QUICK)
        assert code == 1 and "photo_03.png" in err and "1 of 7 image(s) failed" in err and "Traceback" not in err
        outputs[batch] = {p.name: np.asarray(Image.open(p), np.int16) for p in sorted(out.iterdir())}
    assert list(outputs["1"]) == list(outputs["3"]) and len(outputs["1"]) == 6
    for name, image in outputs["1"].items():
        assert np.abs(image - outputs["3"][name]).max() <= 2, name  # batched convolutions round a little differently


ENTRIES = {"module": ["-m", "impasto"],  # python -m impasto, and the console script's impasto.cli:main
           "script": ["-c", "import sys; from impasto.cli import main; sys.exit(main())"]}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("after", [0.3, 0.8])
@pytest.mark.parametrize("stop, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_while_the_command_starts_is_quiet_with_its_status(tmp_path, entry, after, stop, status):
    """A signal while the libraries were loading printed a KeyboardInterrupt traceback (or was lost
    inside PyTorch's import of NumPy), and SIGTERM ended with 130."""
    gradient_photo(48, 36).save(tmp_path / "photo.png")
    process = subprocess.Popen([sys.executable, *ENTRIES[entry], "stylize", "photo.png", "the_scream", "-o", "out.png",
                                "-s", "32", "-n", "100000", "--tolerance", "0", *QUICK],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert len(err.splitlines()) <= 1, err
