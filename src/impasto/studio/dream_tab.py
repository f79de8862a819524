"""The Dream tab: DeepDream on a photo (a layer, step size, octaves, an optional guide image), with
a live preview and Stop."""

import time
from types import SimpleNamespace
from typing import Any, Iterator

from impasto.core.errors import ImpastoError
from impasto.studio.common import (MAX_PIXELS, PAGE_CLOCK, Background, Studio, check_uploads, fail, gradio, load_upload, preview_image,
                     progress_html, step_note, step_reports, stop)


#: The Dream tab's layer choices: what each depth of VGG-19 grows, in words -> layer.
DREAM_LAYERS = {"strokes and grain (relu2_1)": "relu2_1", "ripples and swirls (relu3_1)": "relu3_1",
                "eyes and arches (relu4_2)": "relu4_2", "creatures (relu5_1)": "relu5_1"}


def create_dream(studio: Studio, photo: str | None, layer: str, step_size: float, octaves: int, iterations: int,
                 size: int, guide_file: Any, session: str, clicked: float | None = None) -> Iterator[tuple]:
    """The Dream tab's job: yields (preview, progress, download) as it goes; Stop keeps the dream so far
    (``clicked``: when Dream was pressed, on the page's clock: a Stop after it, even while the job
    waits in the queue, stops it)."""
    from impasto.engines.dream import DreamSettings, Dreamer

    content = load_upload(photo, "photo")
    guide = load_upload(str(getattr(guide_file, "name", guide_file)), "guide image") if guide_file else None
    try:
        settings = DreamSettings(layers={DREAM_LAYERS.get(layer, layer): 1.0}, step_size=float(step_size),
                                 octaves=int(octaves), iterations=int(iterations))
        dreamer = Dreamer(settings, guide, max_pixels=MAX_PIXELS)
    except ImpastoError as exc:
        raise fail(exc) from None
    flag, on_step = step_reports(studio, session, clicked)
    started = time.perf_counter()
    keep = gradio().update()  # the last dream stays until the new one is there

    yield keep, progress_html(0, 1, "starting..."), keep
    try:
        job = Background(lambda report: dreamer.dream(content, int(size), (), lambda p: on_step(p, report),
                                                      MAX_PIXELS), studio.device, flag)
        try:
            for done, total, image in job.updates():
                yield preview_image(image), progress_html(done, total, step_note(done, total, started, False)), keep
        finally:
            job.close()
        result = job.result()
    except ImpastoError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:  # Stop pressed while the job waited in the queue: it never started
        yield keep, progress_html(0, 1, "stopped before it started"), keep
        return
    run = record_dream(studio, result, content, guide, guide_file, layer, step_size, octaves, iterations, size)
    note = "stopped: this is the dream so far" if result.stop_reason == "interrupted" else "done"
    h, w = result.image.shape[-2:]
    yield (preview_image(result.image), progress_html(1, 1, f"{note} ({w}x{h}, {result.seconds:.1f} s; kept in the "
                                                            "gallery)"), str(run.result))


def record_dream(studio: Studio, result: Any, content: Any, guide: Any, guide_file: Any, layer: str,
                 step_size: float, octaves: int, iterations: int, size: int) -> Any:
    """Keep a dream in the history: its photo and guide, its settings (brought back to this tab from
    the gallery) and the ``impasto dream`` command that makes it again."""
    from pathlib import Path

    layer = DREAM_LAYERS.get(layer, layer)
    settings = {"kind": "dream", "layer": layer, "step_size": float(step_size), "octaves": int(octaves),
                "iterations": int(iterations), "size": int(size),
                "paintings": [Path(str(getattr(guide_file, "name", guide_file))).stem] if guide is not None else []}
    command = ["dream", "{content}", "--layers", layer, "--step-size", f"{float(step_size):g}", "--octaves",
               str(int(octaves)), "--iterations", str(int(iterations)), "--size", str(int(size)),
               "--max-pixels", str(MAX_PIXELS)] + (["--guide", "{style1}"] if guide is not None else [])
    inputs = [("content", content)] + ([("style", guide)] if guide is not None else [])
    return studio.history.record("dream", result.image, inputs, settings, result.stop_reason, result.seconds, command)


def reopen_values(run: Any) -> dict[str, Any]:
    """A recorded dream's inputs and settings as this tab's values."""
    settings = run.settings
    words = next((said for said, name in DREAM_LAYERS.items() if name == settings.get("layer")), settings.get("layer"))
    files = {item["role"]: str(run.folder / item["file"]) for item in run.inputs}
    return {"photo": files.get("content"), "guide": files.get("style1") or files.get("style"), "layer": words,
            "step_size": settings.get("step_size"), "octaves": settings.get("octaves"),
            "iterations": settings.get("iterations"), "size": settings.get("size")}


def layout() -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    tab = SimpleNamespace()
    with gr.Tab("Dream", id="dream"):
        gr.Markdown("DeepDream: the network grows the patterns it sees in the photo. Shallow layers paint "
                    "strokes, deep ones eyes and creatures; a guide image grows its own motifs instead.")
        with gr.Row():
            with gr.Column():
                tab.photo = gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"],
                                     elem_id="dream-photo", height=320)
                tab.guide = gr.File(label="Guide image (optional)", file_types=["image"], elem_id="dream-guide")
            with gr.Column():
                tab.layer = gr.Radio(list(DREAM_LAYERS), value="eyes and arches (relu4_2)",
                                     label="What grows (the layer)", elem_id="dream-layer")
                tab.step_size = gr.Slider(0.1, 3, value=1.0, step=0.1, label="Step size (how far each step moves the pixels)",
                                          elem_id="dream-step-size")
                tab.octaves = gr.Slider(1, 6, value=4, step=1, label="Octaves (scales, coarse to fine)",
                                        elem_id="dream-octaves")
                tab.iterations = gr.Slider(1, 40, value=10, step=1, label="Iterations per octave",
                                           elem_id="dream-iterations")
                tab.size = gr.Slider(64, 2048, value=512, step=32, label="Size (long side, px)", elem_id="dream-size")
                with gr.Row():
                    tab.go = gr.Button("Dream", variant="primary", elem_id="dream-run")
                    tab.halt = gr.Button("Stop", elem_id="dream-stop")
                tab.clock = gr.Number(None, visible=False, elem_id="dream-clock")  # set by the page's script
        tab.progress = gr.HTML(progress_html(0, 1, "ready"), elem_id="dream-progress")
        with gr.Row():
            tab.preview = gr.Image(label="Dream", type="pil", elem_id="dream-result", interactive=False,
                                   format="png", alt_text="the photo, dreamt on", height=420)
            tab.download = gr.File(label="Download", elem_id="dream-download", interactive=False)
    return tab


def wire(studio: Studio, tab: SimpleNamespace) -> None:
    gr = gradio()

    def run_dream(photo_v, layer_v, step_size_v, octaves_v, iterations_v, size_v, guide_v, clicked_v,
                  request: gr.Request):
        yield from create_dream(studio, photo_v, layer_v, step_size_v, octaves_v, iterations_v, size_v, guide_v,
                                request.session_hash, clicked_v)

    def run_stop(clicked_v, request: gr.Request) -> None:
        stop(studio, request.session_hash, clicked_v)

    def check_guide(file) -> None:
        check_uploads([file] if file else [], "guide image")

    tab.go.click(run_dream, [tab.photo, tab.layer, tab.step_size, tab.octaves, tab.iterations, tab.size, tab.guide,
                             tab.clock], [tab.preview, tab.progress, tab.download], concurrency_id="device",
                 js=PAGE_CLOCK)
    tab.halt.click(run_stop, tab.clock, None, queue=False, js=PAGE_CLOCK)
    tab.guide.upload(check_guide, tab.guide, None, show_progress="hidden")
