"""The Video tab: a clip painted by any method, steadied along the motion, with keyframes carried
between (:mod:`impasto.keyframes`) or the strength following the sound (:mod:`impasto.react`)."""

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

from ..errors import ImpastoError
from .common import (MAX_PIXELS, METHODS, Background, Studio, chosen_method, fail, gradio, load_upload,
                     method_choices, progress_html)


def create_video(studio: Studio, clip: str | None, method: str, model: str | None, style_file: Any, size: int,
                 coherent: bool, every: int = 0, react: bool = False, sound_file: Any = None) -> Iterator[tuple]:
    """The Video tab's job: yields (progress, output video).  ``every`` > 0: keyframes every that
    many frames, carried along the motion; ``react``: each frame's strength follows the loudness of
    ``sound_file`` (which then becomes the clip's soundtrack) or of the clip's own sound."""
    from .. import keyframes, video
    from ..methods import Request, Temporal

    if not clip:
        raise fail(ImpastoError("add a video clip first"))
    sound = str(getattr(sound_file, "name", sound_file)) if sound_file else None
    try:
        if react and int(every) > 0:
            raise ImpastoError("a clip painted to its sound paints every frame: set keyframes to 0")
        if sound is not None and not react:
            raise ImpastoError("a sound file drives the painting: tick “follow the sound”, or remove the file")
        chosen, model_path = chosen_method(method, model)
        style_path = str(getattr(style_file, "name", style_file)) if style_file else None
        styles = [load_upload(style_path, "style image")] if chosen.uses_styles else []
        options = None
        if chosen.options is not None and "iterations" in chosen.options.__dataclass_fields__:
            options = chosen.options(iterations=max(5, chosen.options().iterations // 2))  # a clip: a lighter first frame
        request = Request(size=int(size), model=model_path, max_pixels=MAX_PIXELS, options=options)
        output = studio.new_path(".mp4", f"impasto-{method}")
        settings = video.VideoSettings(size=int(size), coherent=bool(coherent))
        source: Any = clip
        if react:
            from .. import react as reacting

            if sound is not None:
                settings.audio = Path(sound)
            source, stylizer = reacting.reacting_clip(chosen, styles, request, Temporal(iterations=10), clip, sound,
                                                      None)
        else:
            painter = chosen.prepare(styles, request)
            stylizer = painter.frames(Temporal(iterations=10))

        def paint(report: Callable[[Any], None]) -> video.VideoReport:
            def on_frame(done: int, total: int | None, skipped: bool) -> None:
                report((done, total))

            if int(every) > 0:  # keyframes get a frame's iterations; holes a few
                return keyframes.stylize_keyframed(clip, output, stylizer, painter.frames(Temporal(iterations=5)),
                                                   settings, keyframes.KeyframeSettings(every=int(every)), on_frame)
            return video.stylize_video(source, output, stylizer, settings, on_frame)

        job = Background(paint, studio.device)
        try:
            yield progress_html(0, 1, "reading the clip..."), None
            for done, total in job.updates():
                yield progress_html(done, total or done + 1, f"frame {done}" + (f" of {total}" if total else "")), None
        finally:  # the tab closed: stop, and drop the unfinished clip's frames
            if job.running:
                job.close()
                shutil.rmtree(output.with_name(output.name + ".frames"), ignore_errors=True)
        report = job.result()
    except ImpastoError as exc:
        raise fail(exc) from None
    keyed = f" ({len(report.keyframes)} keyframes)" if report.keyframes else ""
    yield (progress_html(1, 1, f"done: {report.frames} frames{keyed}, {report.seconds:.1f} s, audio {report.audio}"),
           str(report.output))


def layout(fast_models: list[tuple[str, str]]) -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    tab = SimpleNamespace()
    with gr.Tab("Video"):
        tab.clip = gr.Video(label="Clip", sources=["upload"], elem_id="clip")
        with gr.Row():
            tab.method = gr.Radio(method_choices(METHODS), value="fast", label="Method", elem_id="video-method")
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
        tab.go = gr.Button("Stylize clip", variant="primary", elem_id="video-run")
        tab.progress = gr.HTML(progress_html(0, 1, "ready"), elem_id="video-progress")
        tab.result = gr.Video(label="Result", elem_id="video-result", interactive=False)
    return tab


def wire(studio: Studio, tab: SimpleNamespace) -> None:
    def run_video(clip_v, method_v, model_v, style_v, size_v, coherent_v, keys_v, react_v, sound_v):
        yield from create_video(studio, clip_v, method_v, model_v, style_v, size_v, coherent_v, keys_v, react_v,
                                sound_v)

    tab.go.click(run_video, [tab.clip, tab.method, tab.model, tab.style, tab.size, tab.coherent, tab.keyframes,
                             tab.react, tab.sound], [tab.progress, tab.result], concurrency_id="device")
