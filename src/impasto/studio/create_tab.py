"""The Create tab: a photo (with an area painted on it for a mask), styles with blend weights, a
method and its settings, a live preview with progress and Stop, the full-resolution download,
before/after and this session's results side by side."""

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import PIL.Image
import torch

from .. import images
from ..errors import ImpastoError
from .common import (COLOR_CHOICES, MAX_PIXELS, METHODS, Background, Studio, check_uploads, chosen_method,
                     default_iterations, default_strength, fail, gradio, load_upload, method_choices, model_previews,
                     preview_image, progress_html, step_note, step_reports, stop)

#: Before a job starts: bring the preview into view (it is below the fold on a laptop).
SHOW_PREVIEW = "(...args) => { document.querySelector('#progress')?.scrollIntoView({behavior: 'smooth'}); return args; }"


def save_mask(studio: Studio, editor: Any) -> Path:
    """The painted area as a black-and-white PNG (white = painted), the file ``--mask`` takes."""
    _, painted = editor_parts(editor)
    if painted is None:
        raise ImpastoError("paint on the photo first: the mask is the painted area")
    path = studio.new_path(".png", "impasto-mask")
    images.save_image(torch.from_numpy(painted)[None, None].expand(1, 3, -1, -1), path)
    return path


def editor_parts(value: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(photo RGB uint8, painted mask float in [0, 1] or None) from an ImageEditor value."""
    if not value:
        return None, None
    background = value.get("background") if isinstance(value, dict) else value
    if background is None:
        return None, None
    background = np.asarray(background)
    if background.ndim == 2:
        background = np.stack([background] * 3, axis=-1)
    photo = background[..., :3].astype(np.uint8)
    mask = None
    for layer in (value.get("layers") or []) if isinstance(value, dict) else []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[-1] == 4:
            painted = (layer[..., 3] > 0).astype(np.float32)  # a see-through brush: painted is painted
            mask = painted if mask is None else np.maximum(mask, painted)
    if mask is not None and mask.max() <= 0:
        mask = None
    return photo, mask


def blend_weights(text: str, count: int) -> list[float] | None:
    if not text or not text.strip():
        return None
    try:
        weights = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise fail(ImpastoError(f"blend weights must be numbers like 1,1 (got {text!r})")) from None
    if (count is not None and len(weights) != count) or any(not (0 <= w < math.inf) for w in weights) \
            or sum(weights) <= 0:
        raise fail(ImpastoError(f"give {count or 'the model'}'s non-negative blend weight(s), one per style "
                                 f"(got {text!r})" if count is None else
                                 f"give {count} non-negative blend weight(s), one per style (got {text!r})"))
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


def command_line(method: str, styles: int, settings: dict[str, Any], masks: int = 0) -> list[str]:
    """The `impasto` command's arguments that reproduce a studio result, its inputs named
    ``{content}``, ``{style1}``..., ``{mask1}``... (the run's files in the history)."""
    parts = ["stylize"]
    if settings.get("model"):
        parts += ["--model", settings["model"]]
    else:
        parts += ["--method", method]
    parts += ["{content}", *[f"{{style{k}}}" for k in range(1, styles + 1)], "--size", str(settings["size"])]
    if settings.get("iterations"):
        parts += ["--iterations", str(settings["iterations"])]
    if settings.get("strength") is not None:
        parts += ["--strength", f"{settings['strength']:g}"]
    if settings.get("blend"):
        parts += ["--style-blend", ",".join(f"{w:g}" for w in settings["blend"])]
    if settings.get("preserve_color", "none") != "none":
        parts += ["--preserve-color", settings["preserve_color"]]
    for k in range(1, masks + 1):
        parts += ["--mask", f"{{mask{k}}}"]
    return parts


def estimate(studio: Studio, method: str, size: int, iterations: int) -> str:
    """How long a run will take, from this machine's own recent runs of the method (the history):
    seconds per pixel (per iteration for an iterative method), times what is asked."""
    import statistics

    iterative = default_iterations(method) is not None
    rates = []
    for run in studio.history.runs(limit=50):
        if run.method != method or run.status == "interrupted" or run.seconds <= 0:
            continue
        work = run.width * run.height * (run.settings.get("iterations") or 1 if iterative else 1)
        rates.append(run.seconds / max(work, 1))
    if not rates:
        return "time: measured after the first run of this method on this machine"
    work = size * size * 0.75 * (iterations if iterative else 1)  # a 4:3 photo
    seconds = statistics.median(rates[:10]) * work
    return f"time: about {seconds:.0f} s on this machine" if seconds >= 1 else "time: under a second"


def before_after(editor: Any, result_path: str | None):
    """(the photo at the result's size, the result) for the before/after slider; None while working."""
    photo, _ = editor_parts(editor)
    if photo is None or not result_path:
        return None
    after = PIL.Image.open(result_path).convert("RGB")
    return PIL.Image.fromarray(photo).resize(after.size, PIL.Image.LANCZOS), after


def create(studio: Studio, editor: Any, style_files: list | None, blend_text: str, method: str, model: str | None,
           size: int, strength: float, iterations: int, preserve: str, mask_inside: str, gallery: list,
           session: str, own_size: bool = False) -> Iterator[tuple]:
    """The Create tab's job: yields (preview, progress, download, gallery, gallery state) as it goes.

    ``own_size``: the output at the photo's own resolution (``size`` is then ignored)."""
    from ..methods import Request

    photo, painted = editor_parts(editor)
    if photo is None:
        raise fail(ImpastoError("add a content photo first (drop it on the canvas)"))
    if photo.shape[0] * photo.shape[1] > MAX_PIXELS:
        raise fail(ImpastoError(f"the photo has more than {MAX_PIXELS:,} pixels"))
    content = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float() / 255.0
    style_paths = [str(getattr(f, "name", f)) for f in (style_files or [])]
    try:
        chosen, model_path = chosen_method(method, model)
    except ImpastoError as exc:
        raise fail(exc) from None
    if not chosen.uses_styles:
        style_paths = []  # a model with its styles built in: the style files are not used
    styles = [load_upload(path, "style image") for path in style_paths]
    masks = None
    if painted is not None and chosen.uses_styles:  # whatever is painted is the mask: no switch to forget
        region = torch.from_numpy(painted)[None, None]
        if len(styles) == 1:
            masks = [region]
        elif len(styles) == 2:
            masks = [region, 1.0 - region] if mask_inside != "second" else [1.0 - region, region]
        elif styles:
            raise fail(ImpastoError("a painted area splits the photo between one or two styles; "
                                     "clear the painting to blend more"))
    count = len(styles) if chosen.uses_styles else None
    blend = None if masks is not None else blend_weights(blend_text, count)
    options = None
    if chosen.options is not None and "iterations" in chosen.options.__dataclass_fields__:
        options = chosen.options(iterations=int(iterations))
    if own_size:
        size = max(photo.shape[:2])
    request = Request(size=int(size), weights=blend, masks=masks, preserve_color=preserve, strength=float(strength),
                      model=model_path, max_pixels=MAX_PIXELS, options=options)
    settings_record: dict[str, Any] = {"size": int(size), "strength": float(strength), "blend": blend,
                                       "preserve_color": preserve,
                                       "model": model if model_path else None,
                                       "iterations": int(iterations) if options is not None else None}
    flag, on_step = step_reports(studio, session)
    started = time.perf_counter()

    yield None, progress_html(0, 1, "starting..."), None, gallery, gallery  # at once: no stale status
    try:
        painter = chosen.prepare(styles, request)
        job = Background(lambda report: painter.paint(content, lambda p: on_step(p, report)), studio.device, flag)
        try:
            for done, total, image in job.updates():
                yield (preview_image(image), progress_html(done, total, step_note(done, total, started, chosen.one_pass)),
                       None, gallery, gallery)
        finally:  # also when the tab closed (the generator is closed at a yield): stop the work
            job.close()
        painted_result = job.result()
    except ImpastoError as exc:
        raise fail(exc) from None
    result = painted_result.image
    stop_note = "stopped: this is the result so far" if painted_result.stop_reason == "interrupted" else "done"
    seconds = time.perf_counter() - started
    inputs = [("content", content), *[("style", style) for style in styles],
              *[("mask", mask.expand(1, 3, -1, -1)) for mask in (masks or [])]]
    run = studio.history.record(method, result, inputs, settings_record, painted_result.stop_reason, seconds,
                                command_line(method, len(styles), settings_record, len(masks or [])))
    h, w = result.shape[-2:]
    gallery = [{"image": str(run.result), "caption": run.caption(), "command": run.command, "id": run.id},
               *gallery]
    gradio().Info(f"{stop_note}: {w}x{h} in {seconds:.1f} s (kept in the gallery)")
    yield (preview_image(result), progress_html(1, 1, f"{stop_note} ({w}x{h}, {seconds:.1f} s)"), str(run.result),
           gallery, gallery)


def layout(studio: Studio, fast_models: list[tuple[str, str]]) -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    from ..samples import painting_credits, paintings

    credits = painting_credits()
    tab = SimpleNamespace()
    with gr.Tab("Create", id="create"):
        with gr.Row():
            with gr.Column():
                tab.editor = gr.ImageEditor(label="Content photo (paint on it to choose where the style goes)",
                                            type="numpy", elem_id="content", sources=["upload", "clipboard"],
                                            brush=gr.Brush(colors=[("#ff40a0", 0.45)], default_size=24,
                                                           color_mode="fixed"),
                                            transforms=(), layers=False, height=420)
                gr.HTML("", elem_id="photo-message")
                tab.builtin = gr.Gallery([(str(path), credits.get(name, name)) for name, path in paintings().items()],
                                         label="Built-in paintings (public domain): click one to add it",
                                         elem_id="paintings", columns=4, height=200, allow_preview=False)
                tab.styles = gr.File(label="Style image(s)", file_count="multiple", file_types=["image"],
                                     elem_id="styles")
                tab.style_shown = gr.Gallery(label="Your styles", elem_id="style-thumbnails", height=130,
                                             allow_preview=False, object_fit="contain")
                tab.blend = gr.Textbox(label="Blend weights (one per style, or per style of a multi-style model, "
                                             "e.g. 3,1)", elem_id="blend")
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
                tab.method = gr.Radio(method_choices(METHODS), value="optimize", label="Method", elem_id="method")
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
                tab.preserve = gr.Radio(list(COLOR_CHOICES), value="none", label="Keep the photo's colours",
                                        elem_id="preserve")
                tab.expected = gr.Markdown(estimate(studio, "optimize", 512, default_iterations("optimize") or 50),
                                           elem_id="estimate")
                with gr.Row():
                    tab.go = gr.Button("Stylize (Ctrl+Enter)", variant="primary", elem_id="run")
                    tab.halt = gr.Button("Stop", elem_id="stop")
        tab.progress = gr.HTML(progress_html(0, 1, "ready"), elem_id="progress")
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


def wire(studio: Studio, tab: SimpleNamespace, fast_models: list[tuple[str, str]], gallery: Any,
         gallery_state: Any) -> None:
    """The tab's events; a finished run also joins the Gallery tab (``gallery``, ``gallery_state``)."""
    gr = gradio()
    from .. import methods
    from ..samples import paintings

    def run_create(editor_v, styles_v, blend_v, method_v, model_v, size_v, strength_v, iterations_v,
                   preserve_v, mask_v, state, own_v, session_v, request: gr.Request):
        for preview_v, progress_v, download_v, state_v, _ in create(
                studio, editor_v, styles_v, blend_v, method_v, model_v, size_v, strength_v, iterations_v,
                preserve_v, mask_v, state, request.session_hash, bool(own_v)):
            shown = [(item["image"], item["caption"]) for item in state_v]
            if download_v and len(state_v) > len(state):  # the run is in the history: it joins the row
                session_v = [*session_v, (state_v[0]["image"], state_v[0]["caption"])]
            yield (preview_v, progress_v, download_v, shown, state_v, before_after(editor_v, download_v),
                   session_v, session_v)

    def mask_download(editor_v):
        try:
            return gr.update(value=str(save_mask(studio, editor_v)), visible=True)
        except ImpastoError as exc:
            raise fail(exc) from None

    def method_panel(name: str) -> tuple:
        """Only what applies to the chosen method, set to its defaults."""
        chosen = methods.get(name)
        iterative = default_iterations(name) is not None
        return (gr.update(value=default_strength(name)),
                gr.update(value=default_iterations(name) or 50, visible=iterative),
                gr.update(visible=chosen.model_required), gr.update(visible=chosen.uses_styles),
                gr.update(visible=chosen.uses_styles), gr.update(value=chosen.one_pass),
                gr.update(visible=chosen.model_required and bool(studio.model_previews)),
                gr.update(visible=chosen.uses_styles), gr.update(visible=chosen.uses_styles))

    def check_styles(files) -> None:
        check_uploads(files, "style image")

    def add_painting(current, event: gr.SelectData):
        chosen = list(paintings().values())[event.index]
        files = [str(getattr(item, "name", item)) for item in (current or [])]
        return [*files, str(chosen)]

    def pick_model(event: gr.SelectData):
        return fast_models[event.index][1]

    def run_stop(request: gr.Request) -> None:
        stop(studio, request.session_hash)

    def show_estimate(method_v, size_v, iterations_v) -> str:
        return estimate(studio, method_v, int(size_v), int(iterations_v))

    tab.mask_button.click(mask_download, tab.editor, tab.mask_file, queue=False)
    tab.styles.upload(check_styles, tab.styles, None, show_progress="hidden")
    tab.builtin.select(add_painting, tab.styles, tab.styles, queue=False)
    for control in (tab.method, tab.size, tab.iterations):
        control.change(show_estimate, [tab.method, tab.size, tab.iterations], tab.expected, queue=False)
    tab.method.change(method_panel, tab.method,
                      [tab.strength, tab.iterations, tab.model, tab.styles, tab.mask_inside, tab.own_size,
                       tab.trained, tab.style_shown, tab.mask_button], queue=False)
    tab.styles.change(style_thumbnails, tab.styles, tab.style_shown, queue=False)
    tab.trained.select(pick_model, None, tab.model, queue=False)
    tab.go.click(run_create, [tab.editor, tab.styles, tab.blend, tab.method, tab.model, tab.size, tab.strength,
                              tab.iterations, tab.preserve, tab.mask_inside, gallery_state, tab.own_size,
                              tab.session_state],
                 [tab.preview, tab.progress, tab.download, gallery, gallery_state, tab.compare,
                  tab.session_results, tab.session_state],
                 concurrency_id="device", js=SHOW_PREVIEW).then(
        show_estimate, [tab.method, tab.size, tab.iterations], tab.expected, queue=False)
    tab.halt.click(run_stop, None, None, queue=False)
