"""The Gallery tab: every run in the history, each with the equivalent `impasto` command, its
bundle (result, inputs, settings, command), and its settings or result taken back to Create."""

from types import SimpleNamespace
from typing import Any

from impasto.core.errors import ImpastoError
from impasto.studio.common import Studio, fail, gradio


def gallery_items(studio: Studio) -> list[dict[str, str]]:
    """The gallery from the history: the latest runs first."""
    return [{"image": str(run.result), "caption": run.caption(), "command": run.command, "id": run.id}
            for run in studio.history.runs()]


def reopen(studio: Studio, run_id: str | None) -> dict[str, Any] | None:
    """A run's method and settings as the Create tab's values (None: no such run): the settings
    the job recorded (:func:`impasto.jobs.image_job.nested_settings`), each control exactly."""
    from impasto.jobs.image_job import nested_settings

    run = studio.history.get(run_id) if run_id else None
    if run is None:
        return None
    settings = nested_settings(run.settings)
    request, options = settings["request"], settings.get("options") or {}
    blend = request.get("style_blend")
    size = request.get("size") or max(run.width, run.height)
    files = {role: [run.folder / item["file"] for item in run.inputs if item["role"] == role]
             for role in ("content", "style", "mask")}
    return {"method": run.method, "size": size, "own_size": _own_size(run, size),
            "photo": str(files["content"][0]) if files["content"] else None,
            "styles": [str(path) for path in files["style"]], "mask": str(files["mask"][0]) if files["mask"] else None,
            "strength": request.get("strength"), "iterations": options.get("iterations"),
            "preserve": request.get("preserve_color") or "none",
            "blend": ",".join(f"{w:g}" for w in blend) if blend else "", "model": request.get("model"),
            "stroke_scale": request.get("stroke_scale"), "result": str(run.result)}


def shown_mask(mask: str | None) -> dict:
    """A run's first mask as the Create tab's brush shows it (in the brush's colour, so the brush
    refines it as if painted by hand); none clears the brush."""
    import time

    from impasto.studio.canvas import mask_url

    painted = None
    if mask is not None:
        import numpy as np
        import PIL.Image

        try:
            with PIL.Image.open(mask) as image:
                painted = np.asarray(image.convert("L")) > 127
        except (OSError, ValueError, PIL.Image.DecompressionBombError):
            painted = None  # a mask the history lost: the photo and settings come back without it
    return {"url": mask_url(painted), "at": time.time()}


def _own_size(run: Any, size: int) -> bool:
    """Whether the run painted at its photo's own size (the photo's long side is the size asked)."""
    import PIL.Image

    content = next((item["file"] for item in run.inputs if item["role"] == "content"), None)
    if content is None or not (run.folder / content).exists():
        return False
    with PIL.Image.open(run.folder / content) as photo:
        return max(photo.size) == size


def layout() -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    tab = SimpleNamespace()
    with gr.Tab("Gallery"):
        tab.gallery = gr.Gallery(label="Every run kept on this machine (latest first)", elem_id="gallery",
                                 columns=4)
        tab.command = gr.Code(label="The same result from a terminal (in the run's folder, or its bundle)",
                              language="shell", elem_id="command")
        tab.chosen_run = gr.State(None)
        with gr.Row():
            tab.reopen_button = gr.Button("Use this run's settings", elem_id="reopen")
            tab.again_button = gr.Button("Use the result as the photo", elem_id="result-as-photo")
            tab.bundle_button = gr.Button("Download this run (result, inputs, settings, command)", elem_id="bundle")
            tab.delete_button = gr.Button("Delete this run", elem_id="delete-run", variant="stop")
        tab.confirmed = gr.Checkbox(False, visible=False, elem_id="delete-confirmed")  # the page's confirm()
        tab.bundle_file = gr.File(label="Run bundle", elem_id="bundle-file", interactive=False)
    return tab


def wire(studio: Studio, app: Any, tab: SimpleNamespace, state: Any, create: SimpleNamespace, tabs: Any,
         dream: SimpleNamespace | None = None, video: SimpleNamespace | None = None) -> None:
    """The tab's events: ``state`` holds the gallery's items; a run's settings or result go back to
    the Create tab's controls (``create``), a dream's to the Dream tab's (``dream``), a clip's to
    the Video tab's (``video``), and the page switches to that tab (``tabs``)."""
    gr = gradio()

    def show_run(items, event: gr.SelectData):
        if not 0 <= event.index < len(items):
            return "", None
        return items[event.index]["command"], items[event.index]["id"]

    def bundle_run(run_id: str | None):
        if not run_id:
            raise fail(ImpastoError("choose a result in the gallery first"))
        return str(studio.history.bundle(run_id, studio.new_path(".zip", f"impasto-run-{run_id}")))

    def delete_run(run_id: str | None, confirmed: bool):
        if not confirmed:  # the page asked, and the answer was no
            return gr.update(), gr.update(), gr.update(), run_id
        if run_id:
            studio.history.delete(run_id)
        items = gallery_items(studio)
        return [(item["image"], item["caption"]) for item in items], items, "", None

    def load_gallery():
        items = gallery_items(studio)
        return [(item["image"], item["caption"]) for item in items], items

    from impasto.studio.create_tab import panel

    create_outputs = [create.method, create.size, create.preserve, create.blend, *panel(create), create.photo,
                      create.mask_shown, create.styles, create.mask_inside, create.photo_size]
    dream_outputs = [] if dream is None else [dream.photo, dream.guide, dream.layer, dream.step_size, dream.octaves,
                                              dream.iterations, dream.size]

    from impasto.studio.video_tab import REOPENED

    video_outputs = [] if video is None else [getattr(video, key) for key in REOPENED]

    def reopen_run(run_id: str | None):
        run = studio.history.get(run_id) if run_id else None
        kind = run.settings.get("kind") if run is not None else None
        keep_create, keep_dream = [gr.update()] * len(create_outputs), [gr.update()] * len(dream_outputs)
        keep_video = [gr.update()] * len(video_outputs)
        if kind == "dream" and dream is not None:
            from impasto.studio.dream_tab import reopen_values

            values = reopen_values(run)
            return (*keep_create, *[values[key] for key in ("photo", "guide", "layer", "step_size", "octaves",
                                                            "iterations", "size")], *keep_video,
                    gr.Tabs(selected="dream"))
        if kind == "clip" and video is not None:
            from impasto.studio.video_tab import reopen_values

            values = reopen_values(run)
            return (*keep_create, *keep_dream, *[values[key] if key in values else gr.update() for key in REOPENED],
                    gr.Tabs(selected="video"))
        return (*reopen_create(run_id), *keep_dream, *keep_video, gr.Tabs(selected="create"))

    def reopen_create(run_id: str | None):
        from impasto.studio.create_tab import method_panel, method_update

        found = reopen(studio, run_id)
        if found is None:
            raise fail(ImpastoError("choose a result in the gallery first"))
        photo = found["photo"]
        size = None
        if photo is not None:
            import PIL.Image

            with PIL.Image.open(photo) as image:
                size = (image.height, image.width)
        return (method_update(found["method"]), found["size"], found["preserve"], found["blend"],
                *method_panel(studio, found["method"], found["strength"], found["iterations"], found["own_size"],
                              found["model"], found["stroke_scale"]),
                photo or gr.update(), shown_mask(found["mask"]) if photo else gr.update(),
                found["styles"] or gr.update(),
                "first", size)

    def result_as_photo(run_id: str | None):
        found = reopen(studio, run_id)
        if found is None:
            raise fail(ImpastoError("choose a result in the gallery first"))
        return found["result"], shown_mask(None), gr.Tabs(selected="create")

    tab.gallery.select(show_run, state, [tab.command, tab.chosen_run], queue=False)
    tab.reopen_button.click(reopen_run, tab.chosen_run, [*create_outputs, *dream_outputs, *video_outputs, tabs])
    tab.again_button.click(result_as_photo, tab.chosen_run, [create.photo, create.mask_shown, tabs])
    tab.bundle_button.click(bundle_run, tab.chosen_run, tab.bundle_file)
    tab.delete_button.click(delete_run, [tab.chosen_run, tab.confirmed], [tab.gallery, state, tab.command,
                                                                          tab.chosen_run],
                            js="(run, ok) => [run, confirm('Delete this run, its result and its inputs?')]")
    app.load(load_gallery, None, [tab.gallery, state])
