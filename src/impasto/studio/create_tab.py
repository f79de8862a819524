"""The Create tab: a photo (with an area painted on it for a mask), styles with their style blend, a
method and its settings, a live preview with progress and Stop, the full-resolution download,
before/after and this session's results side by side."""

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import PIL.Image
import torch

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.jobs import estimate as cost
from impasto.studio.canvas import (BRUSH_BAR, CANVAS, NEW_PHOTO, SHOW_MASK, SHOW_PREVIEW, before_after, box_mask,
                                   editor_parts, mask_url, photo_size, read_photo, save_mask, sent_canvas, small_canvas)
from impasto.studio.common import (COLOR_CHOICES, MAX_PIXELS, MORE, OFFERED, PAGE_CLOCK, Background, Pace, Studio,
                                   chosen_method, default_iterations, default_strength, fail, gradio,
                                   load_upload, method_choices, model_file, model_previews, preview_image,
                                   progress_html, readable_uploads, step_reports, stop)

def style_blend(text: str, count: int | None) -> list[float] | None:
    if not text or not text.strip():
        return None
    try:
        weights = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise fail(ImpastoError(f"style blend weights must be numbers like 1,1 (got {text!r})")) from None
    if (count is not None and len(weights) != count) or any(not (0 <= w < math.inf) for w in weights) \
            or sum(weights) <= 0:
        raise fail(ImpastoError(f"give {count or 'the model'}'s non-negative style blend weight(s), one per style "
                                 f"(got {text!r})" if count is None else
                                 f"give {count} non-negative style blend weight(s), one per style (got {text!r})"))
    return weights


def style_thumbnails(files: list | None) -> list[str]:
    """The chosen style files that Pillow can open, for the thumbnails beside the file list."""
    shown = []
    for item in files or []:
        path = str(getattr(item, "name", item))
        try:
            with PIL.Image.open(path) as image:
                image.verify()
        except (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError):
            continue  # the upload check names it
        shown.append(path)
    return shown


def estimate(studio: Studio, method: str, size: int, iterations: int, own_size: bool = False,
             photo_size: tuple[int, int] | None = None, stroke_scale: float | None = None,
             guess: bool = True) -> str:
    """How long a run will take on this machine (:mod:`impasto.jobs.estimate`): fitted on this
    machine's own runs of the method, a short calibration as the first guess; for the size that
    will be painted (the photo's own with ``own_size``; a 4:3 photo while there is none)."""
    height, width = photo_size or (3, 4)
    if own_size and photo_size:
        output = (height, width)
    else:
        output = images.scaled_size(height, width, int(size))
    work = cost.paintings_work(method, [output], int(iterations), stroke_scale or None, studio.device_name)
    found = studio.estimator.seconds(work, guess)
    if found is None:
        return "time: measured after the first run of this method on this machine"
    seconds = found[0] + studio.showing_seconds(output[0] * output[1])  # and what the page does around it
    return f"time: {cost.words(seconds, found[1])} for {output[1]}x{output[0]} on this machine"


#: The instant preview's long side: a picture at screen size, painted as the controls change.
PREVIEW_SIDE = 384


def preview_canvas(editor: Any) -> tuple | None:
    """The canvas as the instant preview paints it (:func:`small_canvas`), kept when the canvas changes."""
    return small_canvas(editor, PREVIEW_SIDE)


def instant_preview(studio: Studio, canvas: tuple | None, style_files: list | None, blend_text: str, method: str,
                    model: str | None, strength: float, preserve: str, mask_inside: str) -> tuple:
    """(picture, words): the photo painted at screen size by the instant style network (a fast
    model's own network for a trained style) with the controls as they are, to judge them before
    Render paints the chosen method at full size.  ``canvas``: :func:`preview_canvas`'s (photo,
    painted area).  Nothing (``gr.update()``) while there is nothing to paint, a render holds the
    device, or Render was pressed while the preview painted."""
    gr = gradio()
    from impasto import methods

    chosen = methods.get(method)
    instant = method if chosen.one_pass else "arbitrary"
    if canvas is None or (methods.get(instant).uses_styles and not style_files):
        return gr.update(), gr.update()
    renders = studio.renders
    if not studio.device.acquire(blocking=False):  # a render paints: the preview would slow it, then hide it
        return gr.update(), "preview: after the painting that runs now"
    started = time.perf_counter()
    try:
        job = canvas_job(*canvas, style_files, blend_text, instant, model, PREVIEW_SIDE, strength, 1, preserve,
                         mask_inside)
        report = job.run()
    except gr.Error:
        return gr.update(), gr.update()
    except ImpastoError as exc:
        return gr.update(), f"preview: {exc}"
    finally:
        studio.device.release()
    if studio.renders != renders:  # Render was pressed meanwhile: its picture, not this one, is the answer
        return gr.update(), gr.update()
    image = report.result.image
    seconds = time.perf_counter() - started
    said = "" if instant == method else f" (instant style network; Render paints {chosen.label} at full size)"
    return preview_image(image), f"preview: {image.shape[-1]}x{image.shape[-2]} in {seconds:.2f} s{said}"


def create_job(editor: Any, style_files: list | None, blend_text: str, method: str, model: str | None,
               size: int, strength: float, iterations: int, preserve: str, mask_inside: str,
               own_size: bool = False, stroke_scale: float | None = None):
    """The Create tab's choices as the :class:`impasto.jobs.image_job.ImageJob` the CLI would build:
    the photo, styles and painted masks in memory, the result returned (not written)."""
    photo, painted = editor_parts(editor)
    return canvas_job(photo, painted, style_files, blend_text, method, model, size, strength, iterations, preserve,
                      mask_inside, own_size, stroke_scale)


def canvas_job(photo: Any, painted: Any, style_files: list | None, blend_text: str, method: str,
               model: str | None, size: int, strength: float, iterations: int, preserve: str, mask_inside: str,
               own_size: bool = False, stroke_scale: float | None = None):
    """:func:`create_job` from the canvas's parts: the photo (the canvas's RGB uint8 array, or a
    ``(1, 3, H, W)`` float tensor) and the painted area (``(H, W)`` weights, or None)."""
    from impasto.jobs.image_job import ImageJob
    from impasto.methods import Request

    if photo is None:
        raise fail(ImpastoError("add a content photo first (drop it on the canvas)"))
    content = images.as_tensor(photo)
    height, width = content.shape[-2:]
    if height * width > MAX_PIXELS:
        raise fail(ImpastoError(f"the photo has more than {MAX_PIXELS:,} pixels"))
    style_paths = [str(getattr(f, "name", f)) for f in (style_files or [])]
    try:
        chosen, model_path = chosen_method(method, model)
    except ImpastoError as exc:
        raise fail(exc) from None
    if not chosen.uses_styles:
        style_paths = []  # a model with its styles built in: the style files are not used
    styles = [load_upload(path, "style image") for path in style_paths]
    masks = None
    if painted is not None:  # whatever is painted is the mask: no switch to forget
        region = torch.as_tensor(painted)[None, None]
        if len(styles) == 1 or not chosen.uses_styles:  # one painting (or a model's) inside, the photo outside
            masks = [region]
        elif len(styles) == 2:
            masks = [region, 1.0 - region] if mask_inside != "second" else [1.0 - region, region]
        elif styles:
            raise fail(ImpastoError("a painted area splits the photo between one or two styles; "
                                     "clear the painting to blend more"))
    count = len(styles) if chosen.uses_styles else model_styles(model_path)
    # the box is hidden where there is nothing to blend: a value left in it is not used
    blend = style_blend(blend_text, count) if (masks is None or not chosen.uses_styles) and count >= 2 else None
    options = None
    if chosen.options is not None and "iterations" in chosen.options.__dataclass_fields__:
        options = chosen.options(iterations=int(iterations))
    if own_size:
        size = max(height, width)
    request = Request(size=int(size), style_blend=blend, masks=masks, preserve_color=preserve,
                      strength=float(strength), model=model_path, max_pixels=MAX_PIXELS, options=options,
                      stroke_scale=stroke_scale if chosen.one_pass else None)
    return ImageJob(photos=[content], styles=styles, output=None, method=method, request=request)


def model_styles(model: Any) -> int:
    """How many styles a trained model holds (its style blend has one weight each)."""
    if model is None:
        return 0
    from impasto.core.modelfile import available_models

    found = next((m for m in available_models() if m.path.stem == Path(model).stem), None)
    return len(found.config.get("style_names", [])) if found is not None else 1


def blend_applies(method: str, styles: int, model: str | None) -> bool:
    """Whether the style blend means anything: two styles or more (uploaded, or in the model)."""
    from impasto import methods

    chosen = methods.get(method)
    if chosen.uses_styles:
        return styles >= 2
    try:
        return model_styles(model_file(model)) >= 2 if chosen.model_required and model else False
    except ImpastoError:
        return False


def create(studio: Studio, editor: Any, style_files: list | None, blend_text: str, method: str, model: str | None,
           size: int, strength: float, iterations: int, preserve: str, mask_inside: str, gallery: list,
           session: str, own_size: bool = False, stroke_scale: float | None = None,
           clicked: float | None = None) -> Iterator[tuple]:
    """The Create tab's job: yields (preview, progress, download, gallery, gallery state) as it goes;
    a preview or download that is not new yet is ``gr.update()`` (the last result stays).

    ``own_size``: the output at the photo's own resolution (``size`` is then ignored); ``clicked``:
    when Render was pressed, on the page's clock (a Stop after it ends the job, queued or not)."""
    began = time.perf_counter()
    job = create_job(editor, style_files, blend_text, method, model, size, strength, iterations, preserve,
                     mask_inside, own_size, stroke_scale)
    try:
        chosen = job.chosen()
        expected = studio.estimator.seconds(cost.work_of(job), guess=False)
    except ImpastoError as exc:
        raise fail(exc) from None
    flag, on_step = step_reports(studio, session, clicked)
    studio.renders += 1
    keep = gradio().update()  # the last result stays until the new one is there
    pace = Pace("iteration", job.work()[2] if not chosen.one_pass else 1, expected[0] if expected else None)
    waiting = "painting" + (f" (about {expected[0]:.0f} s)" if expected and expected[0] >= 1 else "") + "..."

    yield keep, progress_html(0, 1, waiting), keep, gallery, gallery  # at once: no stale status
    try:
        work = Background(lambda report: job.run(on_step=lambda p: on_step(p, report), stop=flag), studio.device,
                          flag)
        try:
            for done, total, image in work.updates():
                note = waiting if chosen.one_pass else pace.note(done, total)
                yield preview_image(image), progress_html(done, total, note), keep, gallery, gallery
        finally:  # also when the tab closed (the generator is closed at a yield): stop the work
            work.close()
        report = work.result()
    except ImpastoError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:  # Stop pressed while the job waited in the queue: it never started
        yield keep, progress_html(0, 1, "stopped before it started"), keep, gallery, gallery
        return
    painted_result = report.result
    result = painted_result.image
    stop_note = "stopped: this is the result so far" if painted_result.stop_reason == "interrupted" else "done"
    seconds = report.seconds
    names = [Path(str(getattr(f, "name", f))).stem for f in (style_files or [])] if chosen.uses_styles else \
        [Path(str(job.request.model)).stem]
    run = job.record(report, studio.history, paintings=names)
    h, w = result.shape[-2:]
    gallery = [{"image": str(run.result), "caption": run.caption(), "command": run.command, "id": run.id},
               *gallery]
    gradio().Info(f"{stop_note}: {w}x{h} in {seconds:.1f} s (kept in the gallery)")
    yield (preview_image(result), progress_html(1, 1, f"{stop_note} ({w}x{h}, {seconds:.1f} s)"), str(run.result),
           gallery, gallery)
    studio.shown_after(time.perf_counter() - began - seconds, h * w)  # the page has taken the pictures


def layout(studio: Studio, fast_models: list[tuple[str, str]]) -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    from impasto.core.samples import painting_credits, paintings

    credits = painting_credits()
    tab = SimpleNamespace()
    with gr.Tab("Create", id="create"):
        with gr.Row():
            with gr.Column():
                # the photo, with the page's own brush over it (impasto.studio.canvas.BRUSH_SCRIPT)
                tab.photo = gr.Image(None, type="filepath", label="Content photo (paint on it to choose where the "
                                     "style goes)", elem_id="content", sources=["upload", "clipboard"], height=420)
                gr.HTML(BRUSH_BAR, elem_id="brush-bar")
                tab.mask_sync = gr.Button("Hand the painted area over", elem_id="mask-sync",
                                          elem_classes="impasto-hidden")  # clicked by the brush at a stroke's end
                tab.mask_shown = gr.JSON(None, visible=False)  # an area the server made, for the brush
                tab.photo_path = gr.State(None)  # the photo's file on the server
                gr.HTML("", elem_id="photo-message")
                with gr.Accordion("Select an object with a box (then refine it with the brush)", open=False,
                                  elem_id="box-select"):
                    tab.box_photo = gr.Image(None, type="numpy", interactive=False, elem_id="box-photo",
                                             show_label=False, height=300)
                    tab.box_note = gr.Markdown("Click one corner of a box around the object, then the opposite "
                                               "corner.", elem_id="box-note")
                    tab.box_corner = gr.State(None)
                tab.builtin = gr.Gallery([(str(path), credits.get(name, name)) for name, path in paintings().items()],
                                         label="Built-in paintings (public domain): click one to add it",
                                         elem_id="paintings", columns=4, height=200, allow_preview=False)
                tab.styles = gr.File(label="Style image(s)", file_count="multiple", file_types=["image"],
                                     elem_id="styles")
                tab.style_shown = gr.Gallery(label="Your styles", elem_id="style-thumbnails", height=130,
                                             allow_preview=False, object_fit="contain")
                tab.blend = gr.Textbox(label="Style blend (how much of each style, one number per style, or "
                                             "per style of a multi-style model, e.g. 3,1)", elem_id="blend",
                                       visible=False)  # shown where there are two styles or more
                tab.mask_inside = gr.Radio([("the first style (the second goes outside)", "first"),
                                            ("the second style (the first goes outside)", "second")], value="first",
                                           label="Paint on the photo to choose where a style goes; the painted area "
                                                 "gets", elem_id="mask-inside")
                with gr.Row():
                    tab.mask_button = gr.Button("Download the painted area as a mask", elem_id="mask-download",
                                                size="sm")
                    tab.mask_file = gr.File(label="Mask (white = painted)", elem_id="mask-file",
                                            interactive=False, visible=False)
            with gr.Column():
                tab.method = gr.Radio(method_choices(OFFERED), value="optimize", label="Method", elem_id="method")
                with gr.Accordion("More methods", open=False, elem_id="more-methods"):
                    tab.more = gr.Radio(method_choices(MORE), value=None, elem_id="more-method", show_label=False,
                                        info="Older or special-purpose: the methods above do better for most "
                                             "photos")
                tab.model = gr.Dropdown(fast_models, value=fast_models[0][1] if fast_models else None,
                                        label="Trained style", elem_id="model", visible=False)
                tab.trained = gr.Gallery(model_previews(studio), label="Trained styles, each on the same photo: "
                                         "click one", elem_id="model-previews", height=150, visible=False,
                                         allow_preview=False, object_fit="contain")
                tab.size = gr.Slider(64, 2048, value=512, step=32, label="Size (long side, px)", elem_id="size")
                tab.own_size = gr.Checkbox(False, label="The photo's own size (full resolution; the default "
                                                        "for the instant methods)", elem_id="own-size")
                tab.strength = gr.Slider(0, 1, value=default_strength("optimize"), step=0.05,
                                         label="Strength (0 = the photo; set to the method's default when you "
                                               "choose a method)", elem_id="strength")
                tab.iterations = gr.Slider(5, 300, value=default_iterations("optimize") or 50, step=5,
                                           label="Iterations (iterative methods)", elem_id="iterations")
                tab.stroke = gr.Slider(0, 4, value=0, step=0.25, elem_id="stroke-scale", visible=False,
                                       label="Brushwork size (instant methods; 0: a 512 px painting's at any size, "
                                             "2: strokes twice as large)")
                tab.preserve = gr.Radio(list(COLOR_CHOICES), value="none", label="Keep the photo's colours",
                                        elem_id="preserve")
                tab.expected = gr.Markdown(estimate(studio, "optimize", 512, default_iterations("optimize") or 50,
                                                    guess=False), elem_id="estimate")
                tab.photo_size = gr.State(None)
                tab.canvas = gr.State(None)  # the instant preview's small copy of the canvas
                tab.canvas_files = gr.JSON(None, visible=False, elem_id="canvas-files")  # the photo's upload, the area
                with gr.Row():
                    tab.go = gr.Button("Render (Ctrl+Enter)", variant="primary", elem_id="run")
                    tab.halt = gr.Button("Stop", elem_id="stop")
                tab.clock = gr.Number(None, visible=False, elem_id="clock")  # set by the page's script
        tab.progress = gr.HTML(progress_html(0, 1, "ready"), elem_id="progress")
        tab.preview_note = gr.Markdown("", elem_id="preview-note")
        with gr.Row():
            tab.preview = gr.Image(label="Preview", type="pil", elem_id="preview", interactive=False, format="png",
                                   alt_text="the stylized photo, as the work goes", min_width=320, height=420)
            tab.download = gr.File(label="Download (full resolution)", elem_id="download", interactive=False,
                                   min_width=320)
        tab.compare = gr.ImageSlider(label="Before / after (drag the line)", elem_id="compare", type="pil",
                                     interactive=False, height=420)
        tab.session_results = gr.Gallery(label="This session's results, side by side (oldest first)",
                                         elem_id="session-results", height=260, allow_preview=False,
                                         object_fit="contain")
        tab.session_state = gr.State([])
    return tab


def panel(tab: SimpleNamespace) -> list:
    """The controls that follow the chosen method, in :func:`method_panel`'s order."""
    return [tab.strength, tab.iterations, tab.model, tab.styles, tab.mask_inside, tab.own_size, tab.trained,
            tab.style_shown, tab.mask_button, tab.stroke]


def method_update(name: str):
    """The method radio set to ``name``; a method from "more methods" joins its choices once chosen."""
    choices = OFFERED + ((name,) if name not in OFFERED else ())
    return gradio().update(choices=method_choices(choices), value=name)


def method_panel(studio: Studio, name: str, strength: float | None = None, iterations: int | None = None,
                 own_size: bool | None = None, model: str | None = None,
                 stroke_scale: float | None = None) -> tuple:
    """Only what applies to the chosen method, at its defaults or the values given (a run from the gallery)."""
    gr = gradio()
    from impasto import methods

    chosen = methods.get(name)
    iterative = default_iterations(name) is not None
    return (gr.update(value=default_strength(name) if strength is None else strength),
            gr.update(value=iterations or default_iterations(name) or 50, visible=iterative),
            gr.update(visible=chosen.model_required, **({"value": model} if model else {})),
            gr.update(visible=chosen.uses_styles),
            gr.update(visible=chosen.uses_styles), gr.update(value=chosen.one_pass if own_size is None else own_size),
            gr.update(visible=chosen.model_required and bool(studio.model_previews)),
            gr.update(visible=chosen.uses_styles), gr.update(visible=chosen.uses_styles),
            gr.update(visible=chosen.one_pass, value=stroke_scale or 0))


def wire(studio: Studio, tab: SimpleNamespace, fast_models: list[tuple[str, str]], gallery: Any,
         gallery_state: Any) -> None:
    """The tab's events; a finished run also joins the Gallery tab (``gallery``, ``gallery_state``)."""
    gr = gradio()
    from impasto.core.samples import paintings

    # The canvas goes to a server function by a step on the page (the photo's upload and the brush's
    # painted area, in canvas_files, :data:`CANVAS`): no server function takes the photo component,
    # whose every input would decode the whole photo again.
    def read_canvas(sent):
        try:
            return sent_canvas(studio, sent)
        except ImpastoError as exc:
            raise fail(exc) from None

    def run_create(sent_v, styles_v, blend_v, method_v, model_v, size_v, strength_v, iterations_v,
                   preserve_v, mask_v, state, own_v, session_v, stroke_v, clicked_v, request: gr.Request):
        editor_v = read_canvas(sent_v)
        for preview_v, progress_v, download_v, state_v, _ in create(
                studio, editor_v, styles_v, blend_v, method_v, model_v, size_v, strength_v, iterations_v,
                preserve_v, mask_v, state, request.session_hash, bool(own_v), stroke_v or None, clicked_v):
            shown = [(item["image"], item["caption"]) for item in state_v]
            finished = isinstance(download_v, str)
            if finished and len(state_v) > len(state):  # the run is in the history: it joins the row
                session_v = [*session_v, (state_v[0]["image"], state_v[0]["caption"])]
            yield (preview_v, progress_v, download_v, shown, state_v,
                   before_after(editor_v, download_v) if finished else gr.update(), session_v, session_v)

    def mask_download(editor_v):
        try:
            return gr.update(value=str(save_mask(studio, editor_v)), visible=True)
        except ImpastoError as exc:
            raise fail(exc) from None

    def check_styles(files):
        kept = readable_uploads(files, "style image")
        return gr.update() if len(kept) == len(files or []) else kept

    def add_painting(current, event: gr.SelectData):
        chosen = list(paintings().values())[event.index]
        files = [str(getattr(item, "name", item)) for item in (current or [])]
        return [*files, str(chosen)]

    def pick_model(event: gr.SelectData):
        return fast_models[event.index][1]

    def run_stop(clicked_v, request: gr.Request) -> None:
        stop(studio, request.session_hash, clicked_v)

    def show_estimate(method_v, size_v, iterations_v, own_v, photo_v, stroke_v) -> str:
        return estimate(studio, method_v, int(size_v), int(iterations_v), bool(own_v), photo_v, stroke_v or None)

    tab.mask_button.click(None, tab.photo, tab.canvas_files, js=CANVAS).then(
        lambda sent: mask_download(read_canvas(sent)), tab.canvas_files, tab.mask_file, queue=False)
    tab.styles.upload(check_styles, tab.styles, tab.styles, show_progress="hidden")
    tab.builtin.select(add_painting, tab.styles, tab.styles, queue=False)
    estimated = [tab.method, tab.size, tab.iterations, tab.own_size, tab.photo_size, tab.stroke]
    for control in (tab.method, tab.size, tab.iterations, tab.own_size, tab.photo_size, tab.stroke):
        control.change(show_estimate, estimated, tab.expected, queue=False)
    # the canvas goes to the server only when it changes (a new photo, a stroke's end, an area shown
    # by the server), and the preview keeps a small copy of it
    def new_photo(sent):
        editor_v = read_canvas(sent)
        path = sent["background"]["path"] if editor_v is not None else None
        kept = gr.update() if editor_v is not None else None  # a removed photo takes its preview with it, and
        return (photo_size(editor_v), editor_parts(editor_v)[0], None, preview_canvas(editor_v), path, kept,
                None, None)  # any photo change the last render's download and before/after (the gallery keeps it)

    # one at a time, in the order the page sent them: the small copy is the last canvas sent
    in_order = dict(concurrency_id="canvas", concurrency_limit=1, show_progress="hidden")
    photo_changed = tab.photo.change(None, tab.photo, tab.canvas_files, js=NEW_PHOTO, trigger_mode="always_last").then(
        new_photo, tab.canvas_files,
        [tab.photo_size, tab.box_photo, tab.box_corner, tab.canvas, tab.photo_path, tab.preview, tab.download,
         tab.compare], **in_order)
    repainted = tab.mask_sync.click(None, tab.photo, tab.canvas_files, js=CANVAS, trigger_mode="always_last").then(
        lambda sent: preview_canvas(read_canvas(sent)), tab.canvas_files, tab.canvas, **in_order)
    tab.mask_shown.change(None, tab.mask_shown, None, js=SHOW_MASK)

    def pick_corner(path, corner, event: gr.SelectData):
        x, y = (int(v) for v in event.index)
        if corner is None:
            return gr.update(), (x, y), f"First corner at {x},{y}: now click the opposite corner."
        box = (min(corner[0], x), min(corner[1], y), max(corner[0], x), max(corner[1], y))
        try:
            if path is None:
                raise ImpastoError("add a content photo first (drop it on the canvas)")
            painted = box_mask({"background": read_photo(path), "layers": []}, box)
        except ImpastoError as exc:
            raise fail(exc) from None
        return {"url": mask_url(editor_parts(painted)[1]), "at": time.time()}, None, (
            f"Selected the object in the box {box[0]},{box[1]} to {box[2]},{box[3]}: refine it with the brush, or "
            "click two new corners.")

    def show_preview(canvas_v, styles_v, blend_v, method_v, model_v, strength_v, preserve_v, mask_v):
        return instant_preview(studio, canvas_v, styles_v, blend_v, method_v, model_v, strength_v, preserve_v, mask_v)

    tab.previewed = [tab.canvas, tab.styles, tab.blend, tab.method, tab.model, tab.strength, tab.preserve,
                     tab.mask_inside]  # the canvas's small copy, never the photo: a slider sends next to nothing
    preview = dict(fn=show_preview, inputs=tab.previewed, outputs=[tab.preview, tab.preview_note],
                   trigger_mode="always_last", concurrency_id="preview", show_progress="hidden")
    gr.on([tab.strength.change, tab.blend.submit, tab.blend.blur, tab.preserve.change, tab.mask_inside.change,
           tab.styles.change, tab.model.change, tab.method.input], **preview)
    photo_changed.then(**preview)
    repainted.then(**preview)
    tab.box_photo.select(pick_corner, [tab.photo_path, tab.box_corner], [tab.mask_shown, tab.box_corner, tab.box_note])
    tab.method.input(lambda name: method_panel(studio, name), tab.method, panel(tab), queue=False)
    tab.method.input(lambda name: None, tab.method, tab.more, queue=False)  # one method chosen, not two
    tab.more.input(lambda name: (method_update(name), *method_panel(studio, name)), tab.more,
                   [tab.method, *panel(tab)], queue=False)
    tab.styles.change(style_thumbnails, tab.styles, tab.style_shown, queue=False)

    def show_blend(method_v, styles_v, model_v):
        return gr.update(visible=blend_applies(method_v, len(styles_v or []), model_v))

    for control in (tab.method, tab.styles, tab.model):
        control.change(show_blend, [tab.method, tab.styles, tab.model], tab.blend, queue=False)
    tab.trained.select(pick_model, None, tab.model, queue=False)
    tab.go.click(None, [tab.photo, tab.clock], [tab.canvas_files, tab.clock], js=SHOW_PREVIEW).then(
        run_create, [tab.canvas_files, tab.styles, tab.blend, tab.method, tab.model, tab.size, tab.strength,
                     tab.iterations, tab.preserve, tab.mask_inside, gallery_state, tab.own_size, tab.session_state,
                     tab.stroke, tab.clock],
        [tab.preview, tab.progress, tab.download, gallery, gallery_state, tab.compare, tab.session_results,
         tab.session_state], concurrency_id="device", trigger_mode="once", api_name="run_create").then(
        show_estimate, estimated, tab.expected, queue=False)
    tab.halt.click(run_stop, tab.clock, None, queue=False, js=PAGE_CLOCK)
