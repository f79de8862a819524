"""The studio's jobs without a browser: the same functions the page calls."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from helpers import gradient_photo, stripes

pytest.importorskip("gradio")
from impasto.studio import Studio, create  # noqa: E402


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


def test_the_estimate_adds_what_the_page_does_around_a_painting(tmp_path):
    """The wait a user sees is the painting and the page's work around it (keeping the run, the
    pictures sent): a render measures the latter, and the estimates add it, per output pixel."""
    from impasto.jobs.estimate import Cost
    from impasto.jobs.history import History
    from impasto.studio import create_tab

    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    studio.estimator.calibrate = lambda method, device: Cost(0.0, 1e-6)
    assert "under a second" in create_tab.estimate(studio, "adain", 400, 1, photo_size=(300, 400))
    studio.shown_after(3.0, 300 * 400)
    assert "about 3 s" in create_tab.estimate(studio, "adain", 400, 1, photo_size=(300, 400))
    assert studio.showing_seconds(600 * 800) == pytest.approx(12.0)  # four times the pixels
    studio.showing.clear()
    _run(studio, _editor(), [str(style)], method="adain")  # a 48x36 render: its page work measured
    assert len(studio.showing) == 1 and studio.showing[0] >= 0


def test_a_large_result_is_shown_at_screen_size():
    """The page shows a picture at most SHOWN_SIDE on a side (the download link is the result file)."""
    import torch

    from impasto.studio.common import SHOWN_SIDE, preview_image

    assert preview_image(torch.rand(1, 3, 1500, 2000)).size == (SHOWN_SIDE, SHOWN_SIDE * 3 // 4)
    assert preview_image(torch.rand(1, 3, 300, 400)).size == (400, 300)


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
    (dict(blend_text="1,x"), "style blend weights must be numbers"),
    (dict(blend_text="1,2,3"), "give 2 non-negative style blend weight"),
])
def test_mistakes_become_messages(tmp_path, options, fragment):
    import gradio as gr

    styles = [tmp_path / "a.png", tmp_path / "b.png"]
    for style in styles:
        stripes(48).save(style)
    with pytest.raises(gr.Error, match=fragment):
        _run(Studio(tmp_path / "work"), _editor(), [str(s) for s in styles], **options)


def test_a_stale_style_blend_in_the_hidden_box_never_reaches_the_job(tmp_path):
    from impasto.studio.create_tab import blend_applies, create_job

    style = tmp_path / "s.png"
    stripes(48).save(style)
    one_style = create_job(_editor(), [str(style)], "3,1", "fast", "mosaic", 64, 1.0, 50, "none", "first")
    assert one_style.request.style_blend is None and not blend_applies("fast", 0, "mosaic")
    assert create_job(_editor(), [str(style)], "3,1", "adain", None, 64, 1.0, 50, "none", "first") \
        .request.style_blend is None and not blend_applies("adain", 1, None)
    two = create_job(_editor(), [], "3,1", "fast", "two-styles", 64, 1.0, 50, "none", "first")
    assert list(two.request.style_blend) == [3.0, 1.0] and blend_applies("fast", 0, "two-styles")
    assert blend_applies("optimize", 2, None)


@pytest.mark.parametrize("method, model", [("adain", None), ("arbitrary", None), ("fast", "mosaic"),
                                           ("optimize", None)])
def test_with_one_painting_and_a_painted_area_the_photo_stays_outside_it(tmp_path, method, model):
    from PIL import Image

    style = tmp_path / "style.png"
    stripes(48).save(style)
    editor = _editor(mask=True)  # the left half painted
    updates = _run(Studio(tmp_path / "work"), editor, [str(style)], method=method, model=model, size=64,
                   strength=1.0, iterations=6)
    result = np.asarray(Image.open(updates[-1][2]).convert("RGB")).astype(float)
    photo = editor["background"][..., :3].astype(float)
    assert np.abs(result[:, 40:] - photo[:, 40:]).max() <= 2  # outside: the photo, 8-bit rounding aside
    assert np.abs(result[:, :24] - photo[:, :24]).mean() > 10  # inside: painted


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
    assert "--mask mask1.png --mask mask2.png" in updates[-1][3][0]["command"]
    swapped = _run(Studio(tmp_path / "work2"), _editor(mask=True, flat=True), [str(a), str(b)], iterations=15,
                   mask_inside="second")
    other = np.asarray(Image.open(swapped[-1][2])).astype(float)
    left, right = other[:, :16], other[:, 32:]
    assert left[..., 2].mean() - left[..., 0].mean() > right[..., 2].mean() - right[..., 0].mean()


def _cli_job(argv: list[str]):
    from impasto.cli.paint import image_job
    from impasto.cli.parser import build_parser

    return image_job(build_parser().parse_args(argv))


@pytest.mark.parametrize("method, studio_choices, argv", [
    ("optimize", dict(blend_text="3,1", strength=0.7, iterations=20, preserve="luminance", size=96),
     ["--method", "optimize", "--size", "96", "--style-blend", "3,1", "--strength", "0.7", "--iterations", "20",
      "--preserve-color", "luminance"]),
    ("adain", dict(blend_text="", strength=1.0, size=64),
     ["--method", "adain", "--size", "64", "--strength", "1"]),
    ("arbitrary", dict(blend_text="1,1", strength=0.5, size=128, stroke_scale=2.0),
     ["--method", "arbitrary", "--size", "128", "--style-blend", "1,1", "--strength", "0.5", "--stroke-scale", "2"]),
    ("neighbours", dict(strength=1.0, iterations=10, size=64),
     ["--method", "neighbours", "--size", "64", "--strength", "1", "--iterations", "10"]),
])
def test_the_studio_and_the_cli_build_equal_jobs(tmp_path, method, studio_choices, argv):
    """The same choices on the page and on the command line make the same job: its command and
    its settings (what the history keeps) agree."""
    from impasto.studio.create_tab import create_job

    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    stripes(48).save(paths[0])
    stripes(48, ((0, 0, 250), (250, 250, 0))).save(paths[1])
    styles = paths if studio_choices.get("blend_text", "").count(",") else paths[:1]
    choices = dict(blend_text="", model=None, size=512, strength=None, iterations=50, preserve="none",
                   mask_inside="first")
    choices.update(studio_choices)
    studio_job = create_job(_editor(), [str(p) for p in styles], choices["blend_text"], method, choices["model"],
                            choices["size"], choices["strength"], choices["iterations"], choices["preserve"],
                            choices["mask_inside"], stroke_scale=choices.get("stroke_scale"))
    from impasto.studio.common import MAX_PIXELS

    cli_job = _cli_job(["stylize", "photo.png", *map(str, styles), "-o", "out.png", *argv,
                        "--max-pixels", str(MAX_PIXELS)])  # the page's own pixel limit
    studio_job.styles = list(cli_job.styles)  # images in memory on the page, files on the command line
    studio_job.photos = list(cli_job.photos)
    assert studio_job.command(output=False) == cli_job.command(output=False)
    assert studio_job.settings() == cli_job.settings()


def test_a_fast_model_job_matches_the_cli_and_ignores_style_files(tmp_path):
    from impasto.studio.create_tab import create_job

    style = tmp_path / "s.png"
    stripes(48).save(style)
    studio_job = create_job(_editor(), [str(style)], "0.7,0.3", "fast", "two-styles", 256, 0.8, 50, "none", "first")
    cli_job = _cli_job(["stylize", "photo.png", "-o", "out.png", "--model", "two-styles", "--method", "fast",
                        "--size", "256", "--style-blend", "0.7,0.3", "--strength", "0.8", "--max-pixels", "36000000"])
    studio_job.photos = list(cli_job.photos)
    assert studio_job.styles == [] and studio_job.command(output=False) == cli_job.command(output=False)


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
    from impasto.studio.create_tab import style_blend

    with pytest.raises(Exception, match="non-negative style blend weight"):
        style_blend(text, 2)


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
    from impasto.engines.optimize import StyleSettings, run
    from impasto.core.runtime import cancellable

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
    from impasto.core.modelfile import shipped_models
    from impasto.studio.common import model_label

    labels = {m.path.stem: model_label(m) for m in shipped_models() if m.kind == "fast"}
    assert labels["two-styles"] == "two-styles (starry night + wave kanagawa)"
    assert labels["mosaic"] == "mosaic"


def test_the_time_estimate_comes_from_this_machines_own_runs(tmp_path):
    import torch
    from impasto.jobs.estimate import Cost
    from impasto.jobs.history import History
    from impasto.studio.create_tab import estimate

    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    assert "after the first run" in estimate(studio, "optimize", 512, 50, guess=False)
    studio.estimator.calibrate = lambda method, device: Cost(1.0, 1e-6)  # a first guess, said as one
    assert "first guess" in estimate(studio, "adain", 512, 50)
    image = torch.zeros(1, 3, 100, 100)
    for seconds in (2.0, 2.0, 40.0):  # the median ignores an odd one
        studio.history.record("optimize", image, [("content", image)], {"iterations": 10}, "done", seconds, ["stylize"])
    assert estimate(studio, "optimize", 200, 20) == "time: about 12 s for 200x150 on this machine"  # 2 s x 3 x 2
    # the photo's own size is the size painted: 400x300 is 4 times the pixels
    assert estimate(studio, "optimize", 200, 20, own_size=True, photo_size=(300, 400)) == \
        "time: about 48 s for 400x300 on this machine"


def test_before_after_pairs_the_photo_with_the_result_at_its_size(tmp_path):
    from PIL import Image

    from impasto.studio.canvas import before_after

    editor = _editor()
    result = tmp_path / "r.png"
    Image.new("RGB", (24, 18), (200, 10, 10)).save(result)
    before, after = before_after(editor, str(result))
    assert before.size == after.size == (24, 18)
    assert before_after(editor, None) is None and before_after(None, str(result)) is None


def test_a_run_reopens_with_its_settings(tmp_path):
    from impasto.jobs.history import History
    from impasto.studio.gallery_tab import reopen

    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    _run(studio, _editor(), [str(style), str(style)], method="adain", size=40, strength=0.6, blend_text="2,1")
    (run,) = studio.history.runs()
    found = reopen(studio, run.id)
    assert found["method"] == "adain" and found["size"] == 40 and found["strength"] == 0.6
    assert found["blend"] == "2,1" and found["result"] == str(run.result) and not found["own_size"]
    assert found["photo"].endswith("content.png") and len(found["styles"]) == 2 and found["mask"] is None
    assert run.caption().startswith("style + style · adain, 40x30")  # the paintings' names first
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

    from impasto.core.errors import ImpastoError
    from impasto.studio.canvas import save_mask

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

    from impasto.core import clips
    from impasto.studio import create_video
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(9, 64, 48))
    style = tmp_path / "style.png"
    stripes(48).save(style)
    updates = list(create_video(Studio(tmp_path / "work"), str(source), "adain", None, str(style), 64, True, 4))
    progress, output = updates[-1]
    assert "done: 9 frames (3 keyframes)" in progress and clips.open_clip(output).count == 9
    assert Image.open(style).size == (48, 48)  # inputs stay as they were


def test_the_video_estimate_prices_each_frame_at_the_clips_size(tmp_path):
    from impasto.jobs.estimate import Cost
    from impasto.studio.video_tab import estimate_video
    from test_video import make_clip, moving_frames

    from impasto.jobs.history import History

    source = make_clip(tmp_path / "in.mp4", moving_frames(9, 64, 48))
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    studio.estimator.calibrate = lambda method, device: Cost(1.0, 1e-3)
    text = estimate_video(studio, str(source), "adain", 32)
    assert "9 frames of 32x24" in text and "about 8 s" in text and "first guess" in text  # 1 + 9 x 768 ms


def test_a_clips_estimate_pays_a_first_paintings_set_up_once(tmp_path):
    """A clip of a size this process has not painted is priced from first paintings: their set-up
    (the model, the paintings' codes) once, then each frame."""
    import torch

    from impasto.jobs.image_job import ImageJob, ImageReport
    from impasto.methods import Request, Result
    from impasto.studio.video_tab import estimate_video
    from test_video import make_clip, moving_frames

    from impasto.jobs.history import History

    source = make_clip(tmp_path / "in.mp4", moving_frames(9, 64, 48))
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    studio.estimator.calibrate = lambda method, device: pytest.fail("priced from the recorded run")
    job = ImageJob([torch.zeros(1, 3, 24, 32)], [torch.zeros(1, 3, 16, 16)], method="adain", request=Request(size=32))
    result = Result(torch.zeros(1, 3, 24, 32), 1, 1, {}, "done", 0.7)
    job.record(ImageReport("adain", 1, result=result, seconds=10.0, prepare_seconds=9.0, cold=True), studio.history)
    text = estimate_video(studio, str(source), "adain", 32)
    assert "about 18 s" in text and "first guess" not in text  # 9 s once, then 9 frames x 1 s


@pytest.mark.slow
def test_the_video_tab_paints_to_the_clips_sound_and_refuses_mixed_choices(tmp_path):
    from impasto.core import clips
    from impasto.studio import create_video
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(6, 64, 48))  # with a tone
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work")
    progress, output = list(create_video(studio, str(source), "adain", None, str(style), 64, True, 0, True))[-1]
    assert "done: 6 frames" in progress and "audio copied" in progress and clips.open_clip(output).count == 6
    with pytest.raises(Exception, match="paints every frame"):
        list(create_video(studio, str(source), "adain", None, str(style), 64, True, 4, True))
    with pytest.raises(Exception, match="follow the sound"):
        list(create_video(studio, str(source), "adain", None, str(style), 64, True, 0, False, str(source)))


def test_a_stop_pressed_while_the_job_waited_in_the_queue_is_not_lost(tmp_path):
    """Stop after Stylize but before the job's turn: it ends as it comes out of the queue, keeps
    the last result on the page and records nothing; a Stop before the click does not count."""
    from impasto.jobs.history import History
    from impasto.studio.common import stop

    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    stop(studio, "s", when=2_000.0)  # pressed after the click at 1000 (page clock, ms)
    updates = list(create(studio, _editor(), [str(style)], "", "optimize", None, 48, 0.5, 10_000, "none", "first",
                          [], "s", clicked=1_000.0))
    assert "stopped before it started" in updates[-1][1] and not isinstance(updates[-1][2], str)
    assert studio.history.runs() == []
    updates = list(create(studio, _editor(), [str(style)], "", "adain", None, 48, 0.5, 10, "none", "first",
                          [], "s", clicked=3_000.0))  # the old Stop is before this click
    assert "done" in updates[-1][1] and isinstance(updates[-1][2], str)


def test_stop_keeps_the_frames_of_a_clip_painted_so_far(tmp_path):
    from impasto.core import clips
    from impasto.studio import create_video
    from impasto.studio.common import stop
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(12, 64, 48))
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work")
    job = create_video(studio, str(source), "adain", None, str(style), 64, True, session="v", clicked=1.0)
    for progress, _ in job:
        if 'data-done="3"' in progress:
            stop(studio, "v", when=2.0)
    assert "stopped: the 3 frames painted so far" in progress or "stopped: the 4 frames" in progress
    assert clips.open_clip(_).count in (3, 4) and not list((tmp_path / "work").glob("*.frames"))


def test_a_box_around_an_object_paints_the_object_on_the_canvas():
    from impasto.studio.canvas import box_mask, editor_parts

    scene = np.full((60, 80, 4), (90, 140, 90, 255), np.uint8)
    yy, xx = np.mgrid[:60, :80]
    disc = (yy - 30) ** 2 + (xx - 40) ** 2 < 15 ** 2
    scene[disc] = (220, 30, 30, 255)
    value = box_mask({"background": scene, "layers": [], "composite": scene}, (18, 8, 62, 52))
    _, painted = editor_parts(value)
    assert (painted.astype(bool) == disc).mean() > 0.97


def test_messages_name_only_what_the_studio_has(tmp_path):
    import gradio as gr
    from PIL import Image

    from impasto.studio.common import load_upload

    huge = tmp_path / "huge.png"
    Image.new("RGB", (7000, 6000)).save(huge)  # 42 MP, over the studio's limit
    with pytest.raises(gr.Error) as error:
        load_upload(str(huge), "style image")
    assert error.value.message.startswith("huge.png: ") and "--" not in error.value.message
    assert "make it smaller first" in error.value.message
    from impasto.studio.create_tab import create

    with pytest.raises(gr.Error) as error:  # Render with a photo and no painting
        list(create(Studio(tmp_path / "work"), _editor(), [], "", "arbitrary", None, 48, 1.0, 1, "none", "first", [],
                    "session"))
    assert error.value.message == "add at least one painting"


def test_a_dream_is_kept_in_the_history_and_comes_back_with_its_settings(tmp_path):
    from impasto.jobs.history import History
    from impasto.studio import create_dream
    from impasto.studio.dream_tab import reopen_values

    studio = Studio(tmp_path / "studio", history=History(tmp_path / "history"))
    photo, guide = tmp_path / "photo.png", tmp_path / "waves.png"
    gradient_photo(64, 48).save(photo)
    stripes(48).save(guide)
    list(create_dream(studio, str(photo), "ripples and swirls (relu3_1)", 0.7, 2, 3, 64, str(guide), "s"))
    (run,) = studio.history.runs()
    assert run.method == "dream" and run.caption().startswith("waves · dream, 64x48")
    assert run.command.startswith("impasto dream content.png --layers relu3_1 --step-size 0.7 --octaves 2 "
                                  "--iterations 3 --size 64") and "--guide style1.png" in run.command
    values = reopen_values(run)
    assert values["layer"] == "ripples and swirls (relu3_1)" and values["step_size"] == 0.7
    assert (values["octaves"], values["iterations"], values["size"]) == (2, 3, 64)
    assert values["photo"].endswith("content.png") and values["guide"].endswith("style1.png")


def test_an_instant_preview_gives_way_to_a_render(tmp_path, monkeypatch):
    """A preview never replaces a render's picture: none while a render holds the device, and one
    that was painting when Render was pressed is dropped; otherwise it paints, holding the device."""
    from impasto.jobs.image_job import ImageJob
    from impasto.studio import create_tab

    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work")
    args = (create_tab.preview_canvas(_editor()), [str(style)], "", "arbitrary", None, 0.5, "none", "first")

    picture, note = create_tab.instant_preview(studio, *args)
    assert not isinstance(picture, dict) and note.startswith("preview: ") and "in " in note  # painted

    with studio.device:  # a render paints
        picture, note = create_tab.instant_preview(studio, *args)
    assert picture == {"__type__": "update"} and "after the painting" in note

    real_run = ImageJob.run
    seen: list[bool] = []

    def render_pressed_meanwhile(self, *a, **k):
        seen.append(studio.device.locked())  # the preview holds the device while it paints
        studio.renders += 1
        return real_run(self, *a, **k)

    monkeypatch.setattr(ImageJob, "run", render_pressed_meanwhile)
    picture, note = create_tab.instant_preview(studio, *args)
    assert seen == [True] and picture == {"__type__": "update"} and note == {"__type__": "update"}
    assert not studio.device.locked()


def test_a_controls_change_sends_the_preview_a_small_copy_of_the_canvas_not_the_photo(tmp_path):
    """The page hands the canvas over (the photo's upload and the brush's area) only when it changes
    (a new photo, a stroke's end): a slider's, a style's or a method's change previews from the copy
    kept on the server, and no server function takes the photo component itself."""
    import gradio as gr

    from impasto.studio import build

    app = build(Studio(tmp_path / "work"))
    by_id = {block.elem_id: block for block in app.blocks.values() if getattr(block, "elem_id", None)}
    photo = by_id["content"]
    controls = {by_id[name]._id: name for name in ("strength", "preserve", "mask-inside", "styles", "model",
                                                     "blend", "method")}
    previews = []
    for dependency in app.fns.values():
        triggers = [(block, event) for block, event in dependency.targets if block in controls]
        if not triggers:
            continue
        assert photo not in dependency.inputs, (triggers, dependency.name)  # never the full canvas
        if by_id["preview"] in dependency.outputs:
            previews.append(dependency)
    assert previews, "a control's change repaints the preview"
    for dependency in previews:
        assert isinstance(dependency.inputs[0], gr.State)  # the small canvas
        assert {controls[block] for block, _ in dependency.targets} >= {"strength", "preserve", "styles", "method"}
    canvas = previews[0].inputs[0]
    sync = by_id["mask-sync"]
    sent = [d for d in app.fns.values() if any((block, event) in ((photo._id, "change"), (sync._id, "click"))
                                               for block, event in d.targets)]
    assert {event for d in sent for _, event in d.targets} == {"change", "click"}
    for dependency in sent:  # handed on by the page's script
        assert dependency.fn is None and dependency.js and photo in dependency.inputs
        files = dependency.outputs[0]
        assert any(files in d.inputs and canvas in d.outputs for d in app.fns.values())  # the copy follows it
    assert not [d.name for d in app.fns.values() if d.fn is not None and photo in d.inputs]


def test_the_painted_area_travels_as_a_small_png_and_comes_back_at_the_photos_size():
    from impasto.studio.canvas import MASK_SIDE, mask_from_url, mask_url

    painted = np.zeros((1500, 2000), bool)
    painted[300:900, 400:1200] = True
    url = mask_url(painted)
    from PIL import Image
    import base64
    import io

    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
        assert image.size == (MASK_SIDE, 768) and image.mode == "RGBA"
    back = mask_from_url(url, (1500, 2000))
    assert back.shape == (1500, 2000) and (back == painted).mean() > 0.995
    assert mask_url(np.zeros((10, 10), bool)) == "" and mask_from_url("", (10, 10)) is None
    for bad in ("data:image/png;base64,!!!", "data:text/html;base64,PGI+", 42):
        with pytest.raises(Exception, match="painted area could not be read"):
            mask_from_url(bad, (10, 10))


def test_the_canvas_is_read_from_the_pages_own_uploads_only(tmp_path, monkeypatch):
    from impasto.studio.canvas import mask_url, sent_canvas

    studio = Studio(tmp_path / "work")
    photo = studio.uploads / "abc" / "photo.png"
    photo.parent.mkdir()
    gradient_photo(64, 48).save(photo)
    painted = np.zeros((48, 64), bool)
    painted[:, :20] = True
    value = sent_canvas(studio, {"background": {"path": str(photo)}, "mask": mask_url(painted)})
    assert value["background"].shape == (48, 64, 3) and (value["layers"][0][..., 3] > 0).sum() == 48 * 20
    assert sent_canvas(studio, {"background": {"path": str(photo)}, "mask": ""})["layers"] == []
    assert sent_canvas(studio, None) is None and sent_canvas(studio, {"background": None, "mask": ""}) is None
    from impasto.studio import canvas

    with pytest.raises(Exception, match="pixels, more than the limit"):  # dropped past the page's own check
        monkeypatch.setattr(canvas, "MAX_PIXELS", 64 * 47)
        sent_canvas(studio, {"background": {"path": str(photo)}, "mask": ""})
    outside = tmp_path / "elsewhere.png"
    gradient_photo(8, 8).save(outside)
    for path in (outside, studio.uploads / ".." / ".." / "elsewhere.png"):
        with pytest.raises(Exception, match="uploads"):
            sent_canvas(studio, {"background": {"path": str(path)}, "mask": ""})


@pytest.mark.parametrize("styles, method, model, mask, inside", [
    (1, "arbitrary", None, False, "first"), (1, "arbitrary", None, True, "first"),
    (2, "arbitrary", None, True, "second"), (0, "fast", "mosaic", True, "first"), (1, "adain", None, True, "first")])
def test_the_preview_from_the_small_canvas_is_the_one_from_the_full_editor(tmp_path, styles, method, model, mask,
                                                                           inside):
    """The small copy paints the picture the full canvas painted at the preview's size: the same
    photo, the painting inside the painted area, the photo (or the other style) outside."""
    import torch

    from impasto.studio import create_tab

    photo = np.asarray(gradient_photo(640, 480).convert("RGBA")).copy()
    layer = np.zeros_like(photo)
    if mask:
        layer[100:300, 50:333, 3] = 255  # edges that fall between the small copy's pixels
    editor = {"background": photo, "layers": [layer], "composite": photo}
    paths = [tmp_path / "a.png", tmp_path / "b.png"][:styles]
    for path, colours in zip(paths, (((220, 40, 30), (250, 220, 60)), ((0, 0, 250), (30, 200, 90)))):
        stripes(48, colours).save(path)
    choices = ([str(p) for p in paths], "", method, model, create_tab.PREVIEW_SIDE, 0.8, 1, "none", inside)
    full = create_tab.create_job(editor, *choices).run().result.image
    canvas = create_tab.preview_canvas(editor)
    assert max(canvas[0].shape[-2:]) == create_tab.PREVIEW_SIDE and (canvas[1] is None) == (not mask)
    small = create_tab.canvas_job(*canvas, *choices).run().result.image
    assert small.shape == full.shape == (1, 3, 288, 384)
    assert torch.allclose(small, full, atol=1e-5), float((small - full).abs().max())
    picture, note = create_tab.instant_preview(Studio(tmp_path / "work"), canvas, [str(p) for p in paths], "",
                                               method, model, 0.8, "none", inside)
    assert "384x288" in note and np.abs(np.asarray(picture, float) - np.asarray(
        create_tab.preview_image(full), float)).max() <= 1  # the page's picture: the same, 8-bit rounding aside


def test_a_clip_is_kept_in_the_history_and_comes_back_to_the_video_tab_exactly(tmp_path):
    """A Video tab run joins the history with its video, the clip and painting it was made from and
    the command that paints it again; reopened, every control of the tab gets its value back."""
    import hashlib

    from impasto.cli import build_parser
    from impasto.cli.paint import clip_job
    from impasto.core import clips
    from impasto.jobs.history import History
    from impasto.studio import create_video
    from impasto.studio.video_tab import REOPENED, reopen_values
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(5, 64, 48))
    style = tmp_path / "waves.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", history=History(tmp_path / "history"))
    chosen = dict(clip=str(source), method="adain", model=None, style=str(style), size=48, coherent=False,
                  keyframes=2, react=False, sound=None, stroke=1.5)
    list(create_video(studio, chosen["clip"], "adain", None, chosen["style"], 48, False, 2, False, None, 1.5))
    (run,) = studio.history.runs()
    assert run.method == "adain" and run.caption().startswith("waves · adain, 48x36")
    assert run.made is not None and clips.open_clip(run.made).count == 5
    clip_file = run.folder / next(item["file"] for item in run.inputs if item["role"] == "clip")
    assert hashlib.sha256(clip_file.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert run.command.startswith("impasto video clip.mp4 --method adain --style style1.png --size 48 ")
    assert "--independent" in run.command and "--keyframes 2" in run.command and run.command.endswith("-o again.mp4")
    again = clip_job(build_parser().parse_args(run.command.split()[1:]))
    assert (again.request.size, again.request.stroke_scale, again.clip.coherent, again.keyframes) == (48, 1.5, False, "2")
    values = reopen_values(run)
    assert set(values) == set(REOPENED) - {"model"}  # no model used: the tab's choice stays
    assert {key: values[key] for key in REOPENED if key not in ("clip", "style", "model")} == \
        {key: chosen[key] for key in REOPENED if key not in ("clip", "style", "model")}
    assert values["clip"] == str(clip_file) and values["style"].endswith("style1.png")


def test_a_clip_the_video_tab_cannot_hold_whole_comes_back_as_far_as_it_can(tmp_path):
    """Keyframes placed by `auto`, a mask, a soundtrack without following the sound: the command
    keeps them all (the mask as the run's file); the tab gets what it can show, the rest left alone."""
    import torch

    from impasto.core.clips import VideoReport
    from impasto.jobs.clip_job import ClipJob
    from impasto.jobs.history import History
    from impasto.methods import Request
    from impasto.studio.video_tab import reopen_values
    from test_video import make_clip, moving_frames

    source = make_clip(tmp_path / "in.mp4", moving_frames(3, 32, 24))
    stripes(24).save(tmp_path / "a.png")
    stripes(24).save(tmp_path / "b.png")
    mask = torch.zeros(1, 1, 24, 32)
    job = ClipJob(source, tmp_path / "in.mp4", styles=[tmp_path / "a.png", tmp_path / "b.png"], method="adain",
                  request=Request(size=32, masks=[mask, mask]), keyframes="auto", audio=source)
    run = job.record(VideoReport(source, 3, 0, 25, 1.0, "none"), History(tmp_path / "history"))
    assert "--mask mask1.png --mask mask2.png" in run.command and "--keyframes auto" in run.command
    assert "--audio sound.mp4" in run.command and (run.folder / "mask2.png").is_file()
    values = reopen_values(run)
    assert "keyframes" not in values and values["sound"] is None and values["style"].endswith("style1.png")
