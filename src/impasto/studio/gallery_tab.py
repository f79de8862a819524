"""The Gallery tab: every run in the history, each with the equivalent `impasto` command, its
bundle (result, inputs, settings, command), and its settings or result taken back to Create."""

from types import SimpleNamespace
from typing import Any

from ..errors import ImpastoError
from .common import Studio, fail, gradio


def gallery_items(studio: Studio) -> list[dict[str, str]]:
    """The gallery from the history: the latest runs first."""
    return [{"image": str(run.result), "caption": run.caption(), "command": run.command, "id": run.id}
            for run in studio.history.runs()]


def reopen(studio: Studio, run_id: str | None) -> dict[str, Any] | None:
    """A run's method and settings as the Create tab's values (None: no such run)."""
    run = studio.history.get(run_id) if run_id else None
    if run is None:
        return None
    settings = run.settings
    blend = settings.get("blend")
    return {"method": run.method, "size": settings.get("size", run.width), "strength": settings.get("strength"),
            "iterations": settings.get("iterations"), "preserve": settings.get("preserve_color", "none"),
            "blend": ",".join(f"{w:g}" for w in blend) if blend else "", "model": settings.get("model"),
            "result": str(run.result)}


def layout() -> SimpleNamespace:
    """The tab's controls (inside the page's Tabs)."""
    gr = gradio()
    tab = SimpleNamespace()
    with gr.Tab("Gallery"):
        tab.gallery = gr.Gallery(label="This session's results", elem_id="gallery", columns=4)
        tab.command = gr.Code(label="The same result from a terminal (in the run's folder, or its bundle)",
                              language="shell", elem_id="command")
        tab.chosen_run = gr.State(None)
        with gr.Row():
            tab.reopen_button = gr.Button("Use this run's settings", elem_id="reopen")
            tab.again_button = gr.Button("Use the result as the photo", elem_id="result-as-photo")
            tab.bundle_button = gr.Button("Download this run (result, inputs, settings, command)", elem_id="bundle")
            tab.delete_button = gr.Button("Delete this run", elem_id="delete-run", variant="stop")
        tab.bundle_file = gr.File(label="Run bundle", elem_id="bundle-file", interactive=False)
    return tab


def wire(studio: Studio, app: Any, tab: SimpleNamespace, state: Any, create: SimpleNamespace, tabs: Any) -> None:
    """The tab's events: ``state`` holds the gallery's items; a run's settings or result go back to
    the Create tab's controls (``create``) and the page switches to it (``tabs``)."""
    gr = gradio()

    def show_run(items, event: gr.SelectData):
        if not 0 <= event.index < len(items):
            return "", None
        return items[event.index]["command"], items[event.index]["id"]

    def bundle_run(run_id: str | None):
        if not run_id:
            raise fail(ImpastoError("choose a result in the gallery first"))
        return str(studio.history.bundle(run_id, studio.new_path(".zip", f"impasto-run-{run_id}")))

    def delete_run(run_id: str | None):
        if run_id:
            studio.history.delete(run_id)
        items = gallery_items(studio)
        return [(item["image"], item["caption"]) for item in items], items, "", None

    def load_gallery():
        items = gallery_items(studio)
        return [(item["image"], item["caption"]) for item in items], items

    def reopen_run(run_id: str | None):
        found = reopen(studio, run_id)
        if found is None:
            raise fail(ImpastoError("choose a result in the gallery first"))
        keep = gr.update()
        return (found["method"], found["size"], keep if found["strength"] is None else found["strength"],
                keep if found["iterations"] is None else found["iterations"], found["preserve"], found["blend"],
                found["model"] or keep, gr.Tabs(selected="create"))

    def result_as_photo(run_id: str | None):
        found = reopen(studio, run_id)
        if found is None:
            raise fail(ImpastoError("choose a result in the gallery first"))
        return ({"background": found["result"], "layers": [], "composite": found["result"]},
                gr.Tabs(selected="create"))

    tab.gallery.select(show_run, state, [tab.command, tab.chosen_run], queue=False)
    tab.reopen_button.click(reopen_run, tab.chosen_run, [create.method, create.size, create.strength,
                                                          create.iterations, create.preserve, create.blend,
                                                          create.model, tabs])
    tab.again_button.click(result_as_photo, tab.chosen_run, [create.editor, tabs])
    tab.bundle_button.click(bundle_run, tab.chosen_run, tab.bundle_file)
    tab.delete_button.click(delete_run, tab.chosen_run, [tab.gallery, state, tab.command, tab.chosen_run])
    app.load(load_gallery, None, [tab.gallery, state])
