"""The Video tab: a clip painted by any method, steadied along the motion, with keyframes carried
between (:mod:`impasto.jobs.keyframes`) or the strength following the sound (:mod:`impasto.jobs.sound`)."""

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

from impasto.core.errors import ImpastoError
from impasto.studio.common import (MAX_PIXELS, MORE, OFFERED, PAGE_CLOCK, Background, Pace, Studio, chosen_method, fail,
                                   gradio, load_upload, method_choices, progress_html, stop)


def clip_job(studio: Studio, clip: str | None, method: str, model: str | None, style_file: Any, size: int,
             coherent: bool, every: int = 0, react: bool = False, sound_file: Any = None,
             stroke_scale: float | None = None):
    """The Video tab's choices as the :class:`impasto.jobs.clip_job.ClipJob` the CLI would build
    (its defaults are the clip's: frame iterations, keyframes' holes), writing into the studio's folder."""
    from impasto.core.clips import VideoSettings
    from impasto.jobs.clip_job import ClipJob
    from impasto.methods import Request

    if not clip:
        raise fail(ImpastoError("add a video clip first"))
    sound = str(getattr(sound_file, "name", sound_file)) if sound_file else None
    if react and int(every) > 0:
        raise fail(ImpastoError("a clip painted to its sound paints every frame: set keyframes to 0"))
    if sound is not None and not react:
        raise fail(ImpastoError("a sound file drives the painting: tick “follow the sound”, or remove the file"))
    try:
        chosen, model_path = chosen_method(method, model)
    except ImpastoError as exc:
        raise fail(exc) from None
    style_path = str(getattr(style_file, "name", style_file)) if style_file else None
    styles = [load_upload(style_path, "style image")] if chosen.uses_styles else []
    request = Request(size=int(size), model=model_path, max_pixels=MAX_PIXELS,
                      stroke_scale=stroke_scale if chosen.one_pass else None)
    output = studio.new_path(".mp4", f"impasto-{method}")
    return ClipJob(source=clip, output=output, styles=styles, method=method, request=request,
                   clip=replace(VideoSettings(), size=int(size), coherent=bool(coherent)),
                   keyframes=int(every) if int(every) > 0 else None, audio=sound, audio_react=bool(react))


def create_video(studio: Studio, clip: str | None, method: str, model: str | None, style_file: Any, size: int,
                 coherent: bool, every: int = 0, react: bool = False, sound_file: Any = None,
                 stroke_scale: float | None = None, session: str = "video",
                 clicked: float | None = None) -> Iterator[tuple]:
    """The Video tab's job: yields (progress, output video).  ``every`` > 0: keyframes every that
    many frames, carried along the motion; ``react``: each frame's strength follows the loudness of
    ``sound_file`` (which then becomes the clip's soundtrack) or of the clip's own sound.  Stop
    (the session's, after ``clicked``) ends it after the frame in hand: the frames so far are the video."""
    job = clip_job(studio, clip, method, model, style_file, size, coherent, every, react, sound_file, stroke_scale)
    paintings = [Path(str(getattr(style_file, "name", style_file))).stem] if job.styles else None
    began = time.monotonic()
    frames = Path(job.output).with_name(Path(job.output).name + ".frames")
    flag = studio.job_flag(session, clicked)
    keep = gradio().update()  # the last clip stays until the new one is there
    try:
        job.validate()
        work = Background(lambda report: job.run(lambda done, total, resumed: report((done, total)), flag),
                          studio.device, flag)
        pace = Pace("frame")
        try:
            yield progress_html(0, 1, "reading the clip..."), keep
            for done, total in work.updates():
                note = pace.note(done, total) if total else f"frame {done}"
                yield progress_html(done, total or done + 1, note), keep
        finally:  # the tab closed: stop, and drop the unfinished clip's frames
            if work.running:
                work.close()
                shutil.rmtree(frames, ignore_errors=True)
        report = work.result()
    except ImpastoError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:  # Stop: the frames painted so far become the clip
        yield from stopped_clip(studio, job, frames, paintings, time.monotonic() - began)
        return
    keep_in_history(studio, job, report, paintings)
    keyed = f" ({len(report.keyframes)} keyframes)" if report.keyframes else ""
    yield (progress_html(1, 1, f"done: {report.frames} frames{keyed}, {report.seconds:.1f} s, audio {report.audio}"),
           str(report.output))


def stopped_clip(studio: Studio, job: Any, frames: Path, paintings: list[str] | None,
                 seconds: float) -> Iterator[tuple]:
    """After Stop: the frames painted so far as a (shorter) video, kept in the history as a stopped
    run, or word that none were."""
    from impasto.core import clips

    done = sorted(frames.glob("frame_*.png")) if frames.is_dir() else []
    if not done:
        shutil.rmtree(frames, ignore_errors=True)
        yield progress_html(0, 1, "stopped before the first frame"), gradio().update()
        return
    try:
        source = clips.open_clip(job.source)
        audio = clips.encode_video(done, Path(job.output), source, job.video_settings())
        report = clips.VideoReport(Path(job.output), len(done), 0, source.fps, seconds, audio)
    except ImpastoError as exc:
        raise fail(exc) from None
    finally:
        shutil.rmtree(frames, ignore_errors=True)
    painted = replace(job, clip=replace(job.clip, end=job.clip.start + len(done)))  # its command: these frames
    keep_in_history(studio, painted, report, paintings, status="interrupted")
    yield progress_html(len(done), len(done), f"stopped: the {len(done)} frames painted so far"), str(job.output)


def keep_in_history(studio: Studio, job: Any, report: Any, paintings: list[str] | None, status: str = "done") -> None:
    """The clip joins the history; a failure there (a full disk) is logged, never hides the clip."""
    try:
        job.record(report, studio.history, paintings, status=status)
    except Exception:  # noqa: BLE001 - the video is made; keeping a copy of it is secondary
        logging.getLogger("impasto.studio").exception("the clip %s could not be kept in the history", job.output)


def reopen_values(run: Any) -> dict[str, Any]:
    """A recorded clip's inputs and settings as this tab's values: only those the tab can hold (a
    folder of frames, keyframes placed by ``auto``, a model the run did not use are left as they are)."""
    settings = run.settings
    first: dict[str, str] = {}
    for item in run.inputs:
        first.setdefault(item["role"], str(run.folder / item["file"]))
    request, clip = settings.get("request") or {}, settings.get("clip") or {}
    react = bool(settings.get("audio_react"))
    values = {"method": run.method, "style": first.get("style"), "size": request.get("size"),
              "coherent": clip.get("coherent", True), "react": react,
              "sound": first.get("sound") if react else None, "stroke": request.get("stroke_scale") or 0}
    if first.get("clip") and Path(first["clip"]).is_file():
        values["clip"] = first["clip"]
    if request.get("model"):
        values["model"] = request["model"]
    keys = settings.get("keyframes")
    if keys is None or str(keys).isdigit():
        values["keyframes"] = int(keys or 0)
    return values


#: The tab's controls a recorded clip fills, in :func:`reopen_values`' keys.
REOPENED = ("clip", "method", "model", "style", "size", "coherent", "keyframes", "react", "sound", "stroke")


def estimate_video(studio: Studio, clip: str | None, method: str, size: int, stroke_scale: float | None = None,
                   guess: bool = True) -> str:
    """How long the clip will take on this machine: its frames, each priced like a photo of the
    frame's size (:mod:`impasto.jobs.estimate`, the method's runs on this machine)."""
    from impasto.core import clips, images
    from impasto.jobs import estimate as cost
    from impasto.methods import Temporal, get

    if not clip:
        return "time: said when a clip is added"
    try:
        opened = clips.open_clip(clip)
    except ImpastoError:
        return ""
    frames = opened.count or 1
    height, width = images.scaled_size(opened.height, opened.width, int(size))
    chosen = get(method)
    iterations = 1
    if not chosen.one_pass:
        iterations = int(Temporal().iterations or getattr(chosen.options(), "iterations", 1))
    work = cost.paintings_work(method, [(height, width)], iterations, stroke_scale or None, studio.device_name)
    work = replace(work, frames=frames)  # cold where no photo of the size was painted: its set-up once
    found = studio.estimator.seconds(work, guess)
    if found is None:
        return "time: measured after the first run of this method on this machine"
    seconds, guessed = found
    return f"time: {cost.words(seconds, guessed)} for {frames} frames of {width}x{height} on this machine"


def layout(fast_models: list[tuple[str, str]]) -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    tab = SimpleNamespace()
    with gr.Tab("Video", id="video"):
        tab.clip = gr.Video(label="Clip", sources=["upload"], elem_id="clip")
        with gr.Row():
            tab.method = gr.Radio(method_choices(OFFERED + MORE), value="fast", label="Method", elem_id="video-method")
            tab.model = gr.Dropdown(fast_models, value=fast_models[0][1] if fast_models else None,
                                    label="Fast model", elem_id="video-model")
            tab.style = gr.File(label="Style image (methods that take one)", file_types=["image"],
                                elem_id="video-style")
            tab.size = gr.Slider(64, 1080, value=320, step=16, label="Size", elem_id="video-size")
            tab.coherent = gr.Checkbox(value=True, label="Temporal coherence", elem_id="coherent")
            tab.keyframes = gr.Slider(0, 24, value=0, step=1, elem_id="video-keyframes",
                                      label="Keyframes every N frames, carried along the motion (0: paint every frame)")
        with gr.Row():
            tab.react = gr.Checkbox(value=False, elem_id="video-react",
                                    label="Follow the sound: the style is strong where the sound is loud")
            tab.sound = gr.File(label="Sound to follow (optional; it becomes the clip's soundtrack)",
                                file_types=["audio"], elem_id="video-sound")
        tab.stroke = gr.Slider(0, 4, value=0, step=0.25, elem_id="video-stroke-scale",
                               label="Brushwork size (instant methods; 0: a 512 px painting's at any size, "
                                     "2: strokes twice as large)")
        tab.expected = gr.Markdown("", elem_id="video-estimate")
        with gr.Row():
            tab.go = gr.Button("Stylize clip", variant="primary", elem_id="video-run")
            tab.halt = gr.Button("Stop", elem_id="video-stop")
        tab.clock = gr.Number(None, visible=False, elem_id="video-clock")  # set by the page's script
        tab.progress = gr.HTML(progress_html(0, 1, "ready"), elem_id="video-progress")
        tab.result = gr.Video(label="Result", elem_id="video-result", interactive=False)
    return tab


def wire(studio: Studio, tab: SimpleNamespace) -> None:
    gr = gradio()
    from impasto.methods import get

    def run_video(clip_v, method_v, model_v, style_v, size_v, coherent_v, keys_v, react_v, sound_v, stroke_v,
                  clicked_v, request: gr.Request):
        yield from create_video(studio, clip_v, method_v, model_v, style_v, size_v, coherent_v, keys_v, react_v,
                                sound_v, stroke_v or None, request.session_hash, clicked_v)

    def run_stop(clicked_v, request: gr.Request) -> None:
        stop(studio, request.session_hash, clicked_v)

    def show_estimate(clip_v, method_v, size_v, stroke_v) -> str:
        return estimate_video(studio, clip_v, method_v, int(size_v), stroke_v or None)

    tab.go.click(run_video, [tab.clip, tab.method, tab.model, tab.style, tab.size, tab.coherent, tab.keyframes,
                             tab.react, tab.sound, tab.stroke, tab.clock], [tab.progress, tab.result],
                 concurrency_id="device", js=PAGE_CLOCK)
    tab.halt.click(run_stop, tab.clock, None, queue=False, js=PAGE_CLOCK)
    tab.method.change(lambda name: gr.update(visible=get(name).one_pass), tab.method, tab.stroke, queue=False)
    for control in (tab.clip, tab.method, tab.size, tab.stroke):
        control.change(show_estimate, [tab.clip, tab.method, tab.size, tab.stroke], tab.expected, queue=False)
