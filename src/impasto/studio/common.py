"""What every tab of the studio shares: the app's state, jobs on their own thread that a page can
stream and stop, uploads read within the pixel limit, a method chosen by name, progress in words,
and a user's mistake as a message on the page."""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .. import images
from ..errors import ImpastoError
from ..history import History
from ..methods import REGISTRY


MAX_PIXELS = 36_000_000  # per image: a 6000 x 6000 photo
MODEL_PREVIEW_SIDE = 192  # px, the trained styles' pictures of the sample photo
METHODS = tuple(REGISTRY)
COLOR_CHOICES = ("none", "luminance", "histogram")


def gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as exc:
        raise ImpastoError(f"the studio needs Gradio ({exc.name or exc} is missing); "
                           "pip install 'impasto[studio]'") from None
    return gr


class Studio:
    """The app's state shared by all sessions: its folder, stop flags, camera frame times."""

    def __init__(self, folder: str | os.PathLike | None = None, preview_every: int = 5,
                 history: "History | None" = None) -> None:
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="impasto-studio-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)  # results and uploads are private to this user
        self.uploads = self.folder / "uploads"
        self.uploads.mkdir(mode=0o700, exist_ok=True)
        self.preview_every = preview_every
        self.history = history or History()  # outlasts this folder: the user's data folder
        self.device = threading.Lock()  # one Create or Video job at a time, abandoned ones included
        self.stops: dict[str, threading.Event] = {}
        self.camera_times: dict[str, deque] = {}
        self.camera_painters: dict[tuple, Any] = {}  # (method, model, style) -> its prepared painter
        self.model_previews: list[tuple[str, str]] | None = None  # see model_previews()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_path(self, suffix: str, stem: str = "impasto", keep_seconds: float = 3600) -> Path:
        """A fresh file name in the app's folder; results (files and frame folders) older than
        ``keep_seconds`` are swept away."""
        cutoff = time.time() - keep_seconds
        for old in self.folder.glob("*.*"):
            try:
                if old.stat().st_mtime >= cutoff:
                    continue
                if old.is_dir():
                    shutil.rmtree(old)
                else:
                    old.unlink()
            except OSError:
                pass
        return self.folder / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"

    def stop_flag(self, session: str) -> threading.Event:
        flag = self.stops.setdefault(session, threading.Event())
        return flag


def model_file(name: str | None) -> Path:
    from ..modelfile import resolve_model

    if not name:
        raise ImpastoError("choose a fast model (see the models that ship: `impasto models`)")
    return resolve_model(name)


class Background:
    """A job on its own thread whose progress reports a page handler can stream as they come.

    The job holds ``lock`` (the device) while it runs.  ``close()`` — called when the page's
    handler ends, also when its browser tab went away — sets ``stop``, so the job's next report
    raises KeyboardInterrupt inside it, and waits for the thread: nothing runs on after its client.
    """

    _DONE = object()

    def __init__(self, job: Callable[[Callable[[Any], None]], Any], lock: threading.Lock,
                 stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self._reports: queue.Queue = queue.Queue()
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._work, args=(job, lock), daemon=True)
        self._thread.start()

    def _report(self, item: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self._reports.put(item)

    def _work(self, job, lock: threading.Lock) -> None:
        from ..runtime import cancellable

        try:
            with lock, cancellable(self.stop):
                if self.stop.is_set():  # abandoned while waiting for the device
                    raise KeyboardInterrupt
                self._outcome["result"] = job(self._report)
        except BaseException as exc:  # noqa: BLE001 - raised again in result(), on the page's thread
            self._outcome["error"] = exc
        finally:
            self._reports.put(self._DONE)

    def updates(self) -> Iterator[Any]:
        """What the job reported, until it ends."""
        while (item := self._reports.get()) is not self._DONE:
            yield item

    def result(self) -> Any:
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["result"]

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop the job if it still runs, and wait until it has."""
        if self._thread.is_alive():
            self.stop.set()
            self._thread.join()


def fail(exc: Exception):
    """A user's mistake as a message that stays on the page until dismissed, and one line in the
    server's log (no traceback: nothing is wrong with the server)."""
    gr = gradio()
    message = str(exc)
    if isinstance(exc, ImpastoError):
        name = Path(exc.path).name if exc.path else None
        message = f"{name}: {exc.problem}" if name else exc.problem
    print(f"impasto studio: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, duration=None, print_exception=False)


def load_upload(path: str | None, what: str) -> torch.Tensor:
    if not path:
        raise fail(ImpastoError(f"add a {what} first"))
    try:
        return images.as_tensor(path, MAX_PIXELS)
    except ImpastoError as exc:
        raise fail(ImpastoError(exc.problem, Path(path).name)) from None


def check_uploads(files: list | None, what: str) -> None:
    """Read each uploaded image now, so that a bad file is a message at upload, not at Stylize."""
    for item in files or []:
        load_upload(str(getattr(item, "name", item)), what)


def default_strength(method: str) -> float:
    """The strength a method uses when none is given (optimize: 0.5 = its default style weight)."""
    from .. import methods

    return methods.get(method).default_strength


def default_iterations(method: str) -> int | None:
    """The method's own iterations at the output size, or None for a one-pass method."""
    from .. import methods

    options = methods.get(method).options
    return int(options().iterations) if options is not None and "iterations" in options.__dataclass_fields__ else None


def model_label(model) -> str:
    """A shipped model in words: its name and the painting(s) it learnt."""
    paintings = [name.replace("_", " ") for name in model.config.get("style_names", [])]
    if paintings and paintings != [model.path.stem.replace("_", " ")]:
        return f"{model.path.stem} ({' + '.join(paintings)})"
    return model.path.stem


def model_previews(studio: Studio) -> list[tuple[str, str]]:
    """(picture, label) per shipped fast model: its result on the sample photo, so a trained style is
    chosen by what it does.  Painted once per studio; none without the sample photo (scikit-image)."""
    if studio.model_previews is None:
        from ..methods import Request, get
        from ..modelfile import available_models
        from ..samples import sample_photo_path

        studio.model_previews = []
        try:
            photo = images.as_tensor(sample_photo_path(), MAX_PIXELS)
        except ImpastoError:
            return studio.model_previews
        folder = studio.folder / "model-previews"  # no dot in the name: never swept as an old result
        folder.mkdir(exist_ok=True)
        for model in (m for m in available_models() if m.kind == "fast"):
            painted = get("fast").prepare([], Request(size=MODEL_PREVIEW_SIDE, model=model.path)).paint(photo).image
            path = images.save_image(painted, folder / f"{model.path.stem}.jpg")
            studio.model_previews.append((str(path), model_label(model)))
    return studio.model_previews


def method_choices(names) -> list[tuple[str, str]]:
    """(plain words, name) for a Radio: the words shown, the name passed to the job."""
    from .. import methods

    return [(methods.get(name).label, name) for name in names]


def chosen_method(method: str, model: str | None):
    """The method and its model file: the dropdown's model for a method that needs one."""
    from .. import methods

    chosen = methods.get(method)
    return chosen, (model_file(model) if chosen.model_required else None)


def progress_html(done: int, total: int, note: str) -> str:
    total = max(total, 1)
    return (f'<div id="job-progress" data-done="{done}" data-total="{total}">'
            f'<progress value="{done}" max="{total}" style="width:100%"></progress>'
            f'<span>{note}</span></div>')


def step_note(done: int, total: int, started: float, one_pass: bool) -> str:
    """'step 40 of 237 (all levels) · 12 s, about 58 s left': the CLI's progress in words."""
    if one_pass:
        return "stylizing..."
    elapsed = time.perf_counter() - started
    left = elapsed / max(done, 1) * (total - done)
    return f"step {done} of {total} (all levels) · {elapsed:.0f} s, about {left:.0f} s left"


def step_reports(studio: Studio, session: str) -> tuple[threading.Event, Callable]:
    """This session's stop flag (cleared) and the step callback of a job: it stops the work when the
    flag is set and reports (step, steps, image) every ``preview_every`` steps and at the last."""
    flag = studio.stop_flag(session)
    flag.clear()

    def on_step(progress, report) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        if progress.iteration % studio.preview_every == 0 or progress.iteration == progress.iterations:
            report((progress.iteration, progress.iterations, progress.image.detach().float().cpu()))

    return flag, on_step


def stop(studio: Studio, session: str) -> None:
    """Stop this session's job: it ends within one loss evaluation and shows the result so far.

    Nothing is written to the page here, so no late "stopping..." can cover the job's own last word."""
    studio.stop_flag(session).set()


def preview_image(image: torch.Tensor):
    return images.tensor_to_pil(image.clamp(0, 1))
