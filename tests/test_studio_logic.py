"""The studio's jobs without a browser: the same functions the page calls."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from helpers import gradient_photo, stripes

pytest.importorskip("gradio")
from impasto.studio import Studio, command_line, create  # noqa: E402


def _editor(mask: bool = False, flat: bool = False) -> dict:
    photo = np.asarray(gradient_photo(64, 48).convert("RGBA"))
    if flat:
        photo = np.full_like(photo, 128)
    layer = np.zeros_like(photo)
    if mask:
        layer[:, :32, 3] = 255
    return {"background": photo, "layers": [layer], "composite": photo}


def _run(studio, editor, styles, method="optimize", **options):
    args = dict(blend_text="", model=None, size=48, strength=0.5, iterations=6, preserve="none", mask_inside="first")
    args.update(options)
    return list(create(studio, editor, styles, args["blend_text"], method, args["model"], args["size"],
                       args["strength"], args["iterations"], args["preserve"],
                       args["mask_inside"], [], "session"))


def test_optimise_job_streams_previews_and_ends_with_a_file(tmp_path):
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", preview_every=1)
    updates = _run(studio, _editor(), [str(style)])
    previews = [u[0] for u in updates if u[0] is not None]
    assert len(previews) >= 3
    final = updates[-1]
    assert final[2] is not None and "done" in final[1]
    assert final[3][0]["command"].startswith("impasto stylize --method optimize content.png style1.png --size 48")


def test_stop_flag_ends_the_job_with_the_current_result(tmp_path):
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", preview_every=1)
    jobs = create(studio, _editor(), [str(style)], "", "optimize", None, 48, 0.5, 200, "none", "first", [], "s")
    for count, update in enumerate(jobs):
        if count == 3:
            threading.Timer(0, studio.stop_flag("s").set).start()
        last = update
    assert "stopped" in last[1] and last[2] is not None


@pytest.mark.parametrize("options, fragment", [
    (dict(blend_text="1,x"), "blend weights must be numbers"),
    (dict(blend_text="1,2,3"), "give 1 non-negative blend weight"),
])
def test_mistakes_become_messages(tmp_path, options, fragment):
    import gradio as gr

    style = tmp_path / "style.png"
    stripes(48).save(style)
    with pytest.raises(gr.Error, match=fragment):
        _run(Studio(tmp_path / "work"), _editor(), [str(style)], **options)


@pytest.mark.slow
def test_painted_mask_splits_two_styles(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    stripes(48, ((250, 0, 0), (250, 0, 0))).save(a)
    stripes(48, ((0, 0, 250), (0, 0, 250))).save(b)
    updates = _run(Studio(tmp_path / "work"), _editor(mask=True, flat=True), [str(a), str(b)], iterations=15)
    from PIL import Image

    result = np.asarray(Image.open(updates[-1][2])).astype(float)
    left, right = result[:, :16], result[:, 32:]
    assert left[..., 0].mean() - left[..., 2].mean() > right[..., 0].mean() - right[..., 2].mean()
    assert "--mask mask1.png --mask mask2.png -o again.png" in updates[-1][3][0]["command"]
    swapped = _run(Studio(tmp_path / "work2"), _editor(mask=True, flat=True), [str(a), str(b)], iterations=15,
                   mask_inside="second")
    other = np.asarray(Image.open(swapped[-1][2])).astype(float)
    left, right = other[:, :16], other[:, 32:]
    assert left[..., 2].mean() - left[..., 0].mean() > right[..., 2].mean() - right[..., 0].mean()


def test_command_line_for_each_method():
    assert command_line("fast", 0, {"size": 512, "model": "mosaic", "blend": [0.7, 0.3]}) == \
        ["stylize", "--model", "mosaic", "{content}", "--size", "512", "--style-blend", "0.7,0.3"]
    adain = command_line("adain", 2, {"size": 256, "strength": 0.5, "preserve_color": "luminance"}, masks=2)
    assert " ".join(adain) == ("stylize --method adain {content} {style1} {style2} --size 256 --strength 0.5 "
                               "--preserve-color luminance --mask {mask1} --mask {mask2}")
    neighbours = command_line("neighbours", 1, {"size": 256, "iterations": 10, "strength": 1.0})
    assert " ".join(neighbours) == "stylize --method neighbours {content} {style1} --size 256 --iterations 10 --strength 1"


def test_a_job_whose_page_goes_away_stops_and_frees_the_device(tmp_path):
    """Gradio closes the handler's generator when the browser tab goes: the work stops with it."""
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", preview_every=1)
    before = threading.active_count()
    jobs = create(studio, _editor(), [str(style)], "", "optimize", None, 48, 0.5, 10_000, "none", "first",
                  [], "gone")
    for count, _ in enumerate(jobs):
        if count == 2:
            break
    assert studio.device.locked()  # the optimisation runs on its thread
    jobs.close()  # what Gradio does on disconnect
    assert not studio.device.locked()
    assert threading.active_count() == before


def test_one_job_at_a_time_even_when_the_queue_lets_two_through(tmp_path):
    import time

    from impasto.studio import Background

    studio = Studio(tmp_path / "work")
    order: list[str] = []
    first_started = threading.Event()

    def first(report):
        order.append("first starts")
        first_started.set()
        for step in range(2_000):
            report(step)  # raises once the first job is closed
            time.sleep(0.01)
        order.append("first ran to the end")

    def second(report):
        order.append("second starts")

    one = Background(first, studio.device)
    first_started.wait()
    two = Background(second, studio.device)
    next(iter(one.updates()))
    assert order == ["first starts"]  # the second waits for the device
    one.close()
    for _ in two.updates():  # runs once the first has stopped
        pass
    assert order == ["first starts", "second starts"]


@pytest.mark.parametrize("text", ["inf,1", "nan,1", "-1,2", "0,0", "1"])
def test_blend_weights_must_be_finite_non_negative_and_one_per_style(text):
    from impasto.studio.create_tab import blend_weights

    with pytest.raises(Exception, match="non-negative blend weight"):
        blend_weights(text, 2)


def test_a_huge_camera_frame_is_refused_and_a_normal_one_is_shrunk_first(tmp_path):
    from impasto.studio import CAMERA_MAX_PIXELS, camera_frame

    studio = Studio(tmp_path / "work")
    with pytest.raises(Exception, match="camera frames are limited"):
        camera_frame(studio, np.zeros((2001, 2001, 3), np.uint8), "fast", "mosaic", None, "s")
    assert 2001 * 2001 > CAMERA_MAX_PIXELS
    out, rate = camera_frame(studio, np.zeros((480, 640, 3), np.uint8), "fast", "mosaic", None, "s")
    assert out.shape == (240, 320, 3)


def test_old_frame_folders_are_swept_too(tmp_path):
    import os
    import time

    studio = Studio(tmp_path / "work")
    frames = studio.folder / "impasto-fast-0123456789.mp4.frames"
    frames.mkdir()
    (frames / "000001.png").write_bytes(b"x")
    old = time.time() - 7200
    os.utime(frames, (old, old))
    studio.new_path(".png")
    assert not frames.exists()


def test_the_studio_folder_and_uploads_are_private(tmp_path):
    studio = Studio(tmp_path / "work")
    assert studio.folder.stat().st_mode & 0o777 == 0o700
    assert studio.uploads.stat().st_mode & 0o777 == 0o700


def test_allowed_hosts_are_local_names_the_bound_address_and_the_configured_ones():
    from impasto.studio import allowed_hosts

    assert "evil.example" not in allowed_hosts("127.0.0.1")
    assert {"localhost", "127.0.0.1"} <= set(allowed_hosts("127.0.0.1"))
    assert "192.168.1.5" in allowed_hosts("192.168.1.5")
    assert "0.0.0.0" not in allowed_hosts("0.0.0.0")
    assert "studio.lan" in allowed_hosts("0.0.0.0", ["studio.lan"])


@pytest.mark.slow
def test_sigterm_stops_the_server_and_removes_its_folder(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()  # printed once the server listens
        assert "impasto studio: http://" in line, line
        assert len(list(tmp_path.glob("impasto-studio-*"))) == 1
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    finally:
        server.kill()
    assert "Traceback" not in out
    assert list(tmp_path.glob("impasto-studio-*")) == []


def test_a_stop_takes_effect_within_one_evaluation_not_one_iteration():
    """The Stop button's flag is checked before every loss evaluation (a line search can run many)."""
    from impasto.optimize import StyleSettings, run
    from impasto.runtime import cancellable

    stop_now = threading.Event()
    stop_now.set()
    with cancellable(stop_now):
        result = run(gradient_photo(48, 40), [stripes(48)], StyleSettings(size=48, iterations=50, precision="fp32"))
    assert result.stop_reason == "interrupted" and result.evaluations == 0
    assert result.image.shape[-2:] == (40, 48)
    never = threading.Event()
    with cancellable(never):
        assert run(gradient_photo(48, 40), [stripes(48)], StyleSettings(size=48, iterations=2)).iterations == 2


def test_progress_says_steps_elapsed_and_time_left():
    from impasto.studio.common import step_note

    note = step_note(40, 120, time.perf_counter() - 20, one_pass=False)
    assert note.startswith("step 40 of 120 (all levels)") and "20 s" in note and "about 40 s left" in note


def test_a_user_mistake_is_one_line_in_the_log_and_a_lasting_message(tmp_path, capsys):
    studio = Studio(tmp_path / "work")
    with pytest.raises(Exception) as error:
        _run(studio, None, [])
    assert "add a content photo first" in str(error.value)
    assert getattr(error.value, "duration", 0) is None and getattr(error.value, "print_exception", True) is False
    log = capsys.readouterr().err.strip().splitlines()
    assert log == ["impasto studio: add a content photo first (drop it on the canvas)"]


def test_a_trained_style_is_named_with_its_paintings():
    from impasto.modelfile import shipped_models
    from impasto.studio.common import model_label

    labels = {m.path.stem: model_label(m) for m in shipped_models() if m.kind == "fast"}
    assert labels["two-styles"] == "two-styles (starry night + wave kanagawa)"
    assert labels["mosaic"] == "mosaic"


def test_the_time_estimate_comes_from_this_machines_own_runs(tmp_path):
    import torch
    from impasto.history import History
    from impasto.studio.create_tab import estimate

    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    assert "after the first run" in estimate(studio, "optimize", 512, 50)
    image = torch.zeros(1, 3, 100, 100)
    for seconds in (2.0, 2.0, 40.0):  # the median ignores an odd one
        studio.history.record("optimize", image, [("content", image)], {"iterations": 10}, "done", seconds, ["stylize"])
    assert estimate(studio, "optimize", 200, 20) == "time: about 12 s on this machine"  # 2 s x 3 x 2
    assert "after the first run" in estimate(studio, "adain", 512, 50)


def test_before_after_pairs_the_photo_with_the_result_at_its_size(tmp_path):
    from PIL import Image

    from impasto.studio.create_tab import before_after

    editor = _editor()
    result = tmp_path / "r.png"
    Image.new("RGB", (24, 18), (200, 10, 10)).save(result)
    before, after = before_after(editor, str(result))
    assert before.size == after.size == (24, 18)
    assert before_after(editor, None) is None and before_after(None, str(result)) is None


def test_a_run_reopens_with_its_settings(tmp_path):
    from impasto.history import History
    from impasto.studio.gallery_tab import reopen

    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    _run(studio, _editor(), [str(style)], method="adain", size=40, strength=0.6, blend_text="2")
    (run,) = studio.history.runs()
    found = reopen(studio, run.id)
    assert found["method"] == "adain" and found["size"] == 40 and found["strength"] == 0.6
    assert found["blend"] == "2" and found["result"] == str(run.result)
    assert reopen(studio, "no-such-run") is None and reopen(studio, None) is None


def test_a_one_pass_result_can_keep_the_photos_own_size(tmp_path):
    from PIL import Image

    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work")
    updates = list(create(studio, _editor(), [str(style)], "", "adain", None, 32, 1.0, 10, "none", "first", [], "s",
                          True))
    photo = _editor()["background"]
    assert Image.open(updates[-1][2]).size == (photo.shape[1], photo.shape[0])


def test_the_painted_area_saves_as_the_mask_file_the_cli_takes(tmp_path):
    from PIL import Image

    from impasto.errors import ImpastoError
    from impasto.studio.create_tab import save_mask

    studio = Studio(tmp_path / "studio")
    path = save_mask(studio, _editor(mask=True))
    mask = np.asarray(Image.open(path).convert("L"))
    assert mask.shape == (48, 64)
    assert (mask[:, :32] == 255).all() and (mask[:, 32:] == 0).all()
    with pytest.raises(ImpastoError, match="paint on the photo first"):
        save_mask(studio, _editor(mask=False))


def test_a_dream_streams_previews_and_a_stop_keeps_the_dream_so_far(tmp_path):
    from PIL import Image

    from impasto.studio import create_dream
    from impasto.studio.common import stop

    studio = Studio(tmp_path / "studio", preview_every=1)
    photo = tmp_path / "photo.png"
    gradient_photo(64, 48).save(photo)
    steps = list(create_dream(studio, str(photo), "ripples and swirls (relu3_1)", 1.0, 2, 2, 64, None, "s1"))
    assert len(steps) >= 4 and "done" in steps[-1][1]
    assert Image.open(steps[-1][2]).size == (64, 48)

    job = create_dream(studio, str(photo), "relu3_1", 1.0, 2, 30, 64, None, "s2")
    next(job), next(job)  # started, first preview
    stop(studio, "s2")
    last = list(job)[-1]
    assert "stopped" in last[1] and Image.open(last[2]).size == (64, 48)


def test_the_video_tab_paints_keyframes_and_carries_them(tmp_path):
    from PIL import Image

    from impasto import video
    from impasto.studio import create_video
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(9, 64, 48))
    style = tmp_path / "style.png"
    stripes(48).save(style)
    updates = list(create_video(Studio(tmp_path / "work"), str(source), "adain", None, str(style), 64, True, 4))
    progress, output = updates[-1]
    assert "done: 9 frames (3 keyframes)" in progress and video.open_clip(output).count == 9
    assert Image.open(style).size == (48, 48)  # inputs stay as they were


@pytest.mark.slow
def test_the_video_tab_paints_to_the_clips_sound_and_refuses_mixed_choices(tmp_path):
    from impasto import video
    from impasto.studio import create_video
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(6, 64, 48))  # with a tone
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work")
    progress, output = list(create_video(studio, str(source), "adain", None, str(style), 64, True, 0, True))[-1]
    assert "done: 6 frames" in progress and "audio copied" in progress and video.open_clip(output).count == 6
    with pytest.raises(Exception, match="paints every frame"):
        list(create_video(studio, str(source), "adain", None, str(style), 64, True, 4, True))
    with pytest.raises(Exception, match="follow the sound"):
        list(create_video(studio, str(source), "adain", None, str(style), 64, True, 0, False, str(source)))
