"""What every tab of the studio shares: the app's state, jobs on their own thread that a page can
stream and stop, uploads read within the pixel limit, a method chosen by name, progress in words,
and a user's mistake as a message on the page."""

from __future__ import annotations

import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

import PIL.Image
import torch

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.jobs.history import History
from impasto.methods import REGISTRY


MAX_PIXELS = 36_000_000  # per image: a 6000 x 6000 photo
MODEL_PREVIEW_SIDE = 192  # px, the trained styles' pictures of the sample photo
#: The longest side a result is shown at on the page: a larger picture would only cost its encoding
#: and transfer while the page waits (the download is the full result).
SHOWN_SIDE = 1280
METHODS = tuple(REGISTRY)
#: The methods offered first, by what they are good for: the instant style network (any painting),
#: trained styles, then the slow ones for quality and for a painting's own textures.  The others
#: (AdaIN: the style network does better on every measured axis) are under "more methods".
OFFERED = tuple(name for name in ("arbitrary", "fast", "optimize", "neighbours") if name in REGISTRY)
MORE = tuple(name for name in METHODS if name not in OFFERED)
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
        self.renders = 0  # Create renders asked for: an instant preview begun before one gives way to it
        self.stops: dict[str, threading.Event] = {}  # each session's current job's stop flag
        self.stopped: dict[str, float] = {}  # each session's last Stop, on the page's clock (ms)
        self.camera_times: dict[str, deque] = {}
        self.camera_painters: dict[tuple, Any] = {}  # (method, model, style) -> its prepared painter
        self.model_previews: list[tuple[str, str]] | None = None  # see model_previews()
        from impasto.core.runtime import resolve_device
        from impasto.jobs.estimate import Estimator

        self.device_name = str(resolve_device("auto"))
        self.estimator = Estimator(self.history)  # first guesses calibrated once per studio
        self.showing: deque[float] = deque(maxlen=5)  # the latest renders' page work, seconds per output pixel

    def shown_after(self, seconds: float, pixels: int) -> None:
        """A render's time beyond its painting (reading the canvas, keeping the run, the pictures the
        page is sent), measured by the handler: the estimates add it."""
        self.showing.append(max(seconds, 0.0) / max(pixels, 1))

    def showing_seconds(self, pixels: int) -> float:
        """What the page's work around a painting of ``pixels`` will take (0 before any render)."""
        return sorted(self.showing)[len(self.showing) // 2] * pixels if self.showing else 0.0

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
        """The stop flag of the session's current (or last) job."""
        return self.stops.setdefault(session, threading.Event())

    def job_flag(self, session: str, clicked: float | None = None) -> threading.Event:
        """A fresh stop flag for a job the page asked for at ``clicked`` (ms, the page's clock), which
        becomes the session's current one: already set when Stop was pressed after that, while the
        job waited in the queue, so that the job ends before it starts."""
        flag = threading.Event()
        if clicked is not None and self.stopped.get(session, float("-inf")) >= clicked:
            flag.set()
        self.stops[session] = flag
        return flag


def model_file(name: str | None) -> Path:
    from impasto.core.modelfile import resolve_model

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
        from impasto.core.runtime import cancellable

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
    message = studio_words(message)
    print(f"impasto studio: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, duration=None, print_exception=False)


#: The command line's advice in a message, as the studio's controls say it (the page has no flags).
STUDIO_WORDS = (
    ("; raise the limit with --max-pixels", f"; the studio takes up to {MAX_PIXELS:,} pixels: make it smaller first"),
    ("raise the limit with --max-pixels", f"the studio takes up to {MAX_PIXELS:,} pixels: make it smaller first"),
    ("lower --size or raise --max-pixels", "lower the size"),
    ("(raise the stroke scale or the pixel limit)", "(choose a larger brushwork size)"),
    ("give the content photo (or folder) and at least one style image", "add at least one painting"),
)


def studio_words(message: str) -> str:
    for said, meant in STUDIO_WORDS:
        message = message.replace(said, meant)
    return re.sub(r" \(impasto [^)]*\)", "", message)  # a command's usage: the page has none


def load_upload(path: str | None, what: str) -> torch.Tensor:
    if not path:
        raise fail(ImpastoError(f"add a {what} first"))
    try:
        return images.as_tensor(path, MAX_PIXELS)
    except ImpastoError as exc:
        raise fail(ImpastoError(exc.problem, Path(path).name)) from None


def check_uploads(files: list | None, what: str) -> None:
    """Read each uploaded image now, so that a bad file is a message at upload, not at Render."""
    for item in files or []:
        load_upload(str(getattr(item, "name", item)), what)


def readable_uploads(files: list | None, what: str) -> list[str]:
    """The uploaded images that can be read; each refused one leaves the list with a message on the
    page that stays until dismissed (and one line in the log)."""
    gr = gradio()
    kept = []
    for item in files or []:
        path = str(getattr(item, "name", item))
        try:
            load_upload(path, what)
        except gr.Error as exc:
            gr.Warning(exc.message, duration=None)
            continue
        kept.append(path)
    return kept


def default_strength(method: str) -> float:
    """The strength a method uses when none is given (optimize: 0.5 = its default style weight)."""
    from impasto import methods

    return methods.get(method).default_strength


def default_iterations(method: str) -> int | None:
    """The method's own iterations at the output size, or None for a one-pass method."""
    from impasto import methods

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
        from impasto.methods import Request, get
        from impasto.core.modelfile import available_models
        from impasto.core.samples import sample_photo_path

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
    from impasto import methods

    return [(methods.get(name).label, name) for name in names]


def chosen_method(method: str, model: str | None):
    """The method and its model file: the dropdown's model for a method that needs one."""
    from impasto import methods

    chosen = methods.get(method)
    return chosen, (model_file(model) if chosen.model_required else None)


def progress_html(done: int, total: int, note: str) -> str:
    total = max(total, 1)
    return (f'<div id="job-progress" data-done="{done}" data-total="{total}">'
            f'<progress value="{done}" max="{total}" style="width:100%"></progress>'
            f'<span>{note}</span></div>')


class Pace:
    """A job's progress in words, counted in the units the user set ("iteration 12 of 50", "frame 3
    of 40"), with the time left from the rate measured since the first step (the preparation before
    it, loading models and styles, left out) -- or from ``expected`` (the estimate) until then."""

    def __init__(self, unit: str = "step", count: int | None = None, expected: float | None = None) -> None:
        self.unit, self.count, self.expected = unit, count, expected
        self.started = time.perf_counter()
        self.first: tuple[float, int] | None = None

    def note(self, done: int, total: int) -> str:
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
        elapsed = now - self.started
        since, done_then = self.first
        if done > done_then:
            left = (now - since) / (done - done_then) * max(total - done, 0)
        elif self.expected is not None:
            left = max(self.expected - elapsed, 0.0)
        else:
            left = None
        count = self.count or total
        shown = min(count, round(done / max(total, 1) * count))
        said = f"{self.unit} {shown} of {count} · {elapsed:.0f} s"
        return said + (f", about {left:.0f} s left" if left is not None else "")


def step_note(done: int, total: int, started: float, one_pass: bool) -> str:
    """'step 40 of 237 · 12 s, about 58 s left' from the start of the job (the Dream tab's steps)."""
    if one_pass:
        return "stylizing..."
    elapsed = time.perf_counter() - started
    left = elapsed / max(done, 1) * (total - done)
    return f"step {done} of {total} (all levels) · {elapsed:.0f} s, about {left:.0f} s left"


def step_reports(studio: Studio, session: str, clicked: float | None = None) -> tuple[threading.Event, Callable]:
    """A fresh stop flag for the session's job (:meth:`Studio.job_flag`: set already when Stop came
    after the click) and the job's step callback: it stops the work when the flag is set and reports
    (step, steps, image) every ``preview_every`` steps and at the last."""
    flag = studio.job_flag(session, clicked)

    def on_step(progress, report) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        if progress.iteration % studio.preview_every == 0 or progress.iteration == progress.iterations:
            report((progress.iteration, progress.iterations, progress.image.detach().float().cpu()))

    return flag, on_step


def stop(studio: Studio, session: str, when: float | None = None) -> None:
    """Stop this session's job: it ends within one loss evaluation and shows the result so far; a
    job still waiting in the queue ends as it comes out (``when``: the press, on the page's clock).

    Nothing is written to the page here, so no late "stopping..." can cover the job's own last word."""
    studio.stopped[session] = when if when is not None else time.time() * 1000
    studio.stop_flag(session).set()


#: The page's clock (ms) as a handler's last input: when a Render (Dream, Stylize clip) or a Stop was pressed.
PAGE_CLOCK = "(...args) => [...args.slice(0, -1), Date.now()]"


def preview_image(image: torch.Tensor):
    """A picture as the page shows it (:func:`shown`)."""
    return shown(images.tensor_to_pil(image.clamp(0, 1)))


def shown(picture: PIL.Image.Image) -> PIL.Image.Image:
    """``picture`` as the page shows it: brought down to at most :data:`SHOWN_SIDE` on its longest
    side (antialiased); the download is the full result."""
    if max(picture.size) <= SHOWN_SIDE:
        return picture
    height, width = images.scaled_size(picture.height, picture.width, SHOWN_SIDE)
    return picture.resize((width, height), PIL.Image.LANCZOS)

