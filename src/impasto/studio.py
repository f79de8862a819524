"""impasto studio: a local web app that puts every method behind a few clicks (Gradio).

One page, five tabs: **Create** (content, styles with blend weights, method and settings, a mask
painted on the photo, a live preview with progress and Stop, full-resolution download, before/after
and the session's results side by side), **Video**, **Camera** (a one-pass method on the webcam
stream, Start/Stop, its frame rate), **Dream** (DeepDream, with Stop) and **Gallery** (every run in the history, each with the
equivalent `impasto` command, its settings, bundle and result for reuse).

Safety for many users: one job at a time holds the device (Gradio's queue shows the others their
place, and a lock keeps the limit even while an abandoned job winds down); a job stops when its
browser tab goes; uploads are limited in size by the server and in pixels from the file's header,
before any decoding; bad files become a message on the page; the app only reads the files Gradio
stored for the upload and only writes in its own private (0700) folder, uploads included, which is
removed when the server stops (Ctrl-C or SIGTERM); results older than an hour are swept. Requests
must name this machine as Host (no DNS rebinding) and the page cannot be framed by other sites.
"""

import atexit
import math
import os
import queue
import shlex
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import PIL.Image
import torch

from . import images
from .errors import ImpastoError
from .history import History
from .methods import REGISTRY

MAX_UPLOAD = "25mb"
MAX_PIXELS = 36_000_000  # per image: a 6000 x 6000 photo
MODEL_PREVIEW_SIDE = 192  # px, the trained styles' pictures of the sample photo
CAMERA_MAX_PIXELS = 4_000_000  # per camera frame (a 4K webcam has 8.3 M; frames are shown at 320 px)
CAMERA_SIDE = 320
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
METHODS = tuple(REGISTRY)
COLOR_CHOICES = ("none", "luminance", "histogram")


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as exc:
        raise ImpastoError(f"the studio needs Gradio ({exc.name or exc} is missing); "
                           "pip install 'impasto[studio]'") from None
    return gr


# ------------------------------------------------------------------------------------ the work


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


def _model_path(name: str | None) -> Path:
    from .modelfile import resolve_model

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
        from .runtime import cancellable

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


def _fail(exc: Exception):
    """A user's mistake as a message that stays on the page until dismissed, and one line in the
    server's log (no traceback: nothing is wrong with the server)."""
    gr = _gradio()
    message = str(exc)
    if isinstance(exc, ImpastoError):
        name = Path(exc.path).name if exc.path else None
        message = f"{name}: {exc.problem}" if name else exc.problem
    print(f"impasto studio: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, duration=None, print_exception=False)


def _load(path: str | None, what: str) -> torch.Tensor:
    if not path:
        raise _fail(ImpastoError(f"add a {what} first"))
    try:
        return images.as_tensor(path, MAX_PIXELS)
    except ImpastoError as exc:
        raise _fail(ImpastoError(exc.problem, Path(path).name)) from None


def check_uploads(files: list | None, what: str) -> None:
    """Read each uploaded image now, so that a bad file is a message at upload, not at Stylize."""
    for item in files or []:
        _load(str(getattr(item, "name", item)), what)


def save_mask(studio: "Studio", editor: Any) -> Path:
    """The painted area as a black-and-white PNG (white = painted), the file ``--mask`` takes."""
    _, painted = _editor_parts(editor)
    if painted is None:
        raise ImpastoError("paint on the photo first: the mask is the painted area")
    path = studio.new_path(".png", "impasto-mask")
    images.save_image(torch.from_numpy(painted)[None, None].expand(1, 3, -1, -1), path)
    return path


def _editor_parts(value: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
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


def _weights(text: str, count: int) -> list[float] | None:
    if not text or not text.strip():
        return None
    try:
        weights = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise _fail(ImpastoError(f"blend weights must be numbers like 1,1 (got {text!r})")) from None
    if (count is not None and len(weights) != count) or any(not (0 <= w < math.inf) for w in weights) \
            or sum(weights) <= 0:
        raise _fail(ImpastoError(f"give {count or 'the model'}'s non-negative blend weight(s), one per style "
                                 f"(got {text!r})" if count is None else
                                 f"give {count} non-negative blend weight(s), one per style (got {text!r})"))
    return weights


def _default_strength(method: str) -> float:
    """The strength a method uses when none is given (optimize: 0.5 = its default style weight)."""
    from . import methods

    return methods.get(method).default_strength


def _default_iterations(method: str) -> int | None:
    """The method's own iterations at the output size, or None for a one-pass method."""
    from . import methods

    options = methods.get(method).options
    return int(options().iterations) if options is not None and "iterations" in options.__dataclass_fields__ else None


def _model_label(model) -> str:
    """A shipped model in words: its name and the painting(s) it learnt."""
    paintings = [name.replace("_", " ") for name in model.config.get("style_names", [])]
    if paintings and paintings != [model.path.stem.replace("_", " ")]:
        return f"{model.path.stem} ({' + '.join(paintings)})"
    return model.path.stem


def model_previews(studio: "Studio") -> list[tuple[str, str]]:
    """(picture, label) per shipped fast model: its result on the sample photo, so a trained style is
    chosen by what it does.  Painted once per studio; none without the sample photo (scikit-image)."""
    if studio.model_previews is None:
        from .methods import Request, get
        from .modelfile import available_models
        from .samples import sample_photo_path

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
            studio.model_previews.append((str(path), _model_label(model)))
    return studio.model_previews


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


def _method_choices(names) -> list[tuple[str, str]]:
    """(plain words, name) for a Radio: the words shown, the name passed to the job."""
    from . import methods

    return [(methods.get(name).label, name) for name in names]


def _chosen(method: str, model: str | None):
    """The method and its model file: the dropdown's model for a method that needs one."""
    from . import methods

    chosen = methods.get(method)
    return chosen, (_model_path(model) if chosen.model_required else None)


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


def gallery_items(studio: "Studio") -> list[dict[str, str]]:
    """The gallery from the history: the latest runs first."""
    return [{"image": str(run.result), "caption": run.caption(), "command": run.command, "id": run.id}
            for run in studio.history.runs()]


def _progress_html(done: int, total: int, note: str) -> str:
    total = max(total, 1)
    return (f'<div id="job-progress" data-done="{done}" data-total="{total}">'
            f'<progress value="{done}" max="{total}" style="width:100%"></progress>'
            f'<span>{note}</span></div>')


def estimate(studio: "Studio", method: str, size: int, iterations: int) -> str:
    """How long a run will take, from this machine's own recent runs of the method (the history):
    seconds per pixel (per iteration for an iterative method), times what is asked."""
    import statistics

    iterative = _default_iterations(method) is not None
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


def _step_note(done: int, total: int, started: float, one_pass: bool) -> str:
    """'step 40 of 237 (all levels) · 12 s, about 58 s left': the CLI's progress in words."""
    if one_pass:
        return "stylizing..."
    elapsed = time.perf_counter() - started
    left = elapsed / max(done, 1) * (total - done)
    return f"step {done} of {total} (all levels) · {elapsed:.0f} s, about {left:.0f} s left"


def reopen(studio: "Studio", run_id: str | None) -> dict[str, Any] | None:
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


def before_after(editor: Any, result_path: str | None):
    """(the photo at the result's size, the result) for the before/after slider; None while working."""
    photo, _ = _editor_parts(editor)
    if photo is None or not result_path:
        return None
    after = PIL.Image.open(result_path).convert("RGB")
    return PIL.Image.fromarray(photo).resize(after.size, PIL.Image.LANCZOS), after


def _preview(image: torch.Tensor):
    return images.tensor_to_pil(image.clamp(0, 1))


def create(studio: Studio, editor: Any, style_files: list | None, blend_text: str, method: str, model: str | None,
           size: int, strength: float, iterations: int, preserve: str, mask_inside: str, gallery: list,
           session: str, own_size: bool = False) -> Iterator[tuple]:
    """The Create tab's job: yields (preview, progress, download, gallery, gallery state) as it goes.

    ``own_size``: the output at the photo's own resolution (``size`` is then ignored)."""
    import dataclasses

    from .methods import Request

    photo, painted = _editor_parts(editor)
    if photo is None:
        raise _fail(ImpastoError("add a content photo first (drop it on the canvas)"))
    if photo.shape[0] * photo.shape[1] > MAX_PIXELS:
        raise _fail(ImpastoError(f"the photo has more than {MAX_PIXELS:,} pixels"))
    content = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float() / 255.0
    style_paths = [str(getattr(f, "name", f)) for f in (style_files or [])]
    try:
        chosen, model_path = _chosen(method, model)
    except ImpastoError as exc:
        raise _fail(exc) from None
    if not chosen.uses_styles:
        style_paths = []  # a model with its styles built in: the style files are not used
    styles = [_load(path, "style image") for path in style_paths]
    masks = None
    if painted is not None and chosen.uses_styles:  # whatever is painted is the mask: no switch to forget
        region = torch.from_numpy(painted)[None, None]
        if len(styles) == 1:
            masks = [region]
        elif len(styles) == 2:
            masks = [region, 1.0 - region] if mask_inside != "second" else [1.0 - region, region]
        elif styles:
            raise _fail(ImpastoError("a painted area splits the photo between one or two styles; "
                                     "clear the painting to blend more"))
    count = len(styles) if chosen.uses_styles else None
    blend = None if masks is not None else _weights(blend_text, count)
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
    flag, on_step = _step_reports(studio, session)
    started = time.perf_counter()

    yield None, _progress_html(0, 1, "starting..."), None, gallery, gallery  # at once: no stale status
    try:
        painter = chosen.prepare(styles, request)
        job = Background(lambda report: painter.paint(content, lambda p: on_step(p, report)), studio.device, flag)
        try:
            for done, total, image in job.updates():
                yield (_preview(image), _progress_html(done, total, _step_note(done, total, started, chosen.one_pass)),
                       None, gallery, gallery)
        finally:  # also when the tab closed (the generator is closed at a yield): stop the work
            job.close()
        painted_result = job.result()
    except ImpastoError as exc:
        raise _fail(exc) from None
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
    _gradio().Info(f"{stop_note}: {w}x{h} in {seconds:.1f} s (kept in the gallery)")
    yield (_preview(result), _progress_html(1, 1, f"{stop_note} ({w}x{h}, {seconds:.1f} s)"), str(run.result),
           gallery, gallery)


def _step_reports(studio: Studio, session: str) -> tuple[threading.Event, Callable]:
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


def create_video(studio: Studio, clip: str | None, method: str, model: str | None, style_file: Any, size: int,
                 coherent: bool, every: int = 0) -> Iterator[tuple]:
    """The Video tab's job: yields (progress, output video).  ``every`` > 0: keyframes every that
    many frames, carried along the motion (:mod:`impasto.keyframes`)."""
    from . import keyframes, video
    from .methods import Request, Temporal

    if not clip:
        raise _fail(ImpastoError("add a video clip first"))
    try:
        chosen, model_path = _chosen(method, model)
        style_path = str(getattr(style_file, "name", style_file)) if style_file else None
        styles = [_load(style_path, "style image")] if chosen.uses_styles else []
        options = None
        if chosen.options is not None and "iterations" in chosen.options.__dataclass_fields__:
            options = chosen.options(iterations=max(5, chosen.options().iterations // 2))  # a clip: a lighter first frame
        painter = chosen.prepare(styles, Request(size=int(size), model=model_path, max_pixels=MAX_PIXELS,
                                                 options=options))
        stylizer = painter.frames(Temporal(iterations=10))
        output = studio.new_path(".mp4", f"impasto-{method}")
        settings = video.VideoSettings(size=int(size), coherent=bool(coherent))

        def paint(report: Callable[[Any], None]) -> video.VideoReport:
            def on_frame(done: int, total: int | None, skipped: bool) -> None:
                report((done, total))

            if int(every) > 0:  # keyframes get a frame's iterations; holes a few
                return keyframes.stylize_keyframed(clip, output, stylizer, painter.frames(Temporal(iterations=5)),
                                                   settings, keyframes.KeyframeSettings(every=int(every)), on_frame)
            return video.stylize_video(clip, output, stylizer, settings, on_frame)

        job = Background(paint, studio.device)
        try:
            yield _progress_html(0, 1, "reading the clip..."), None
            for done, total in job.updates():
                yield _progress_html(done, total or done + 1, f"frame {done}" + (f" of {total}" if total else "")), None
        finally:  # the tab closed: stop, and drop the unfinished clip's frames
            if job.running:
                job.close()
                shutil.rmtree(output.with_name(output.name + ".frames"), ignore_errors=True)
        report = job.result()
    except ImpastoError as exc:
        raise _fail(exc) from None
    keyed = f" ({len(report.keyframes)} keyframes)" if report.keyframes else ""
    yield (_progress_html(1, 1, f"done: {report.frames} frames{keyed}, {report.seconds:.1f} s, audio {report.audio}"),
           str(report.output))


#: The Dream tab's layer choices: what each depth of VGG-19 grows, in words -> layer.
DREAM_LAYERS = {"strokes and grain (relu2_1)": "relu2_1", "ripples and swirls (relu3_1)": "relu3_1",
                "eyes and arches (relu4_2)": "relu4_2", "creatures (relu5_1)": "relu5_1"}


def create_dream(studio: Studio, photo: str | None, layer: str, strength: float, octaves: int, iterations: int,
                 size: int, guide_file: Any, session: str) -> Iterator[tuple]:
    """The Dream tab's job: yields (preview, progress, download) as it goes; Stop keeps the dream so far."""
    from .dream import DreamSettings, Dreamer

    content = _load(photo, "photo")
    guide = _load(str(getattr(guide_file, "name", guide_file)), "guide image") if guide_file else None
    try:
        settings = DreamSettings(layers={DREAM_LAYERS.get(layer, layer): 1.0}, strength=float(strength),
                                 octaves=int(octaves), iterations=int(iterations))
        dreamer = Dreamer(settings, guide, max_pixels=MAX_PIXELS)
    except ImpastoError as exc:
        raise _fail(exc) from None
    flag, on_step = _step_reports(studio, session)
    started = time.perf_counter()

    yield None, _progress_html(0, 1, "starting..."), None
    try:
        job = Background(lambda report: dreamer.dream(content, int(size), (), lambda p: on_step(p, report),
                                                      MAX_PIXELS), studio.device, flag)
        try:
            for done, total, image in job.updates():
                yield _preview(image), _progress_html(done, total, _step_note(done, total, started, False)), None
        finally:
            job.close()
        result = job.result()
    except ImpastoError as exc:
        raise _fail(exc) from None
    output = images.save_image(result.image, studio.new_path(".png", "impasto-dream"))
    note = "stopped: this is the dream so far" if result.stop_reason == "interrupted" else "done"
    h, w = result.image.shape[-2:]
    yield _preview(result.image), _progress_html(1, 1, f"{note} ({w}x{h}, {result.seconds:.1f} s)"), str(output)


def camera_frame(studio: Studio, frame: np.ndarray | None, method: str, model: str | None, style_file: Any,
                 session: str) -> tuple:
    """One webcam frame through a one-pass method; returns (image, frame-rate text)."""
    from .methods import Request

    if frame is None:
        return None, "waiting for the camera"
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[0] * frame.shape[1] > CAMERA_MAX_PIXELS:
        raise _fail(ImpastoError(f"camera frames are limited to {CAMERA_MAX_PIXELS:,} pixels"))
    shown = PIL.Image.fromarray(frame[..., :3].astype(np.uint8))
    shown.thumbnail((CAMERA_SIDE, CAMERA_SIDE))  # shrink as 8-bit, before any float copy
    content = torch.from_numpy(np.asarray(shown).copy()).permute(2, 0, 1)[None].float() / 255.0
    try:
        chosen, model_path = _chosen(method, model)
        if not chosen.one_pass:
            raise ImpastoError(f"the camera needs a one-pass method; {method} optimises for seconds per frame")
        style_path = str(getattr(style_file, "name", style_file)) if style_file and chosen.uses_styles else None
        key = (method, str(model_path), style_path)
        painter = studio.camera_painters.get(key)
        if painter is None:  # the model and the style's statistics: once per choice, not once per frame
            styles = [_load(style_path, "style image")] if chosen.uses_styles else []
            painter = chosen.prepare(styles, Request(size=None, model=model_path, max_pixels=MAX_PIXELS))
            studio.camera_painters.clear()
            studio.camera_painters[key] = painter
        out = painter.paint(content).image
    except ImpastoError as exc:
        raise _fail(exc) from None
    times = studio.camera_times.setdefault(session, deque(maxlen=20))
    times.append(time.perf_counter())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
    return (out[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), f"{rate:.1f} frames/s"


# ------------------------------------------------------------------------------------- the page


#: The page's own script, in the head:
#: - Ctrl+Enter (Cmd+Enter) runs Stylize from anywhere on the page;
#: - each radio group is one Tab stop (arrow keys choose inside it) and the sliders' reset buttons
#:   are left out of the Tab order, so Stylize is reached in a few presses;
#: - a photo the browser cannot decode is named in a message at upload that stays until dismissed
#:   (the editor draws the photo in the browser, so the server never sees a broken one);
#: - the camera's Start/Stop buttons drive the webcam component's own capture button.
PAGE_SCRIPT = """<script>
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    const run = document.querySelector("#run");
    if (run && run.offsetParent !== null) { event.preventDefault(); run.click(); }
  }
});
function impastoTidyTabOrder() {
  document.querySelectorAll("fieldset, [role=radiogroup]").forEach((group, index) => {
    const radios = group.querySelectorAll("input[type=radio]");
    const name = "impasto-group-" + (group.closest("[id]")?.id || index);
    radios.forEach((radio) => { if (radio.name !== name) radio.name = name; });
  });
  document.querySelectorAll("button[aria-label='Reset to default value'], #paintings button[aria-label='Download All']")
    .forEach((button) => { if (button.tabIndex !== -1) button.tabIndex = -1; });
}
new MutationObserver(impastoTidyTabOrder).observe(document.documentElement, {childList: true, subtree: true});
function impastoPhotoMessage(text) {
  const box = document.querySelector("#photo-message");
  if (!box) return;
  box.replaceChildren();
  if (!text) return;
  const note = document.createElement("div");
  note.setAttribute("role", "alert");
  note.className = "impasto-alert";
  note.textContent = text + " ";
  const dismiss = document.createElement("button");
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => impastoPhotoMessage(""));
  note.append(dismiss);
  box.append(note);
}
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.closest("#content")) return;
  impastoPhotoMessage("");
  for (const file of input.files || []) {
    createImageBitmap(file).then((bitmap) => bitmap.close()).catch(() => impastoPhotoMessage(
      file.name + ": not an image this page can read (a PNG, JPEG or WebP photo works); choose another file"));
  }
}, true);
async function impastoCamera(start) {
  const root = document.querySelector("#camera");
  if (!root) return;
  const find = (text) => [...root.querySelectorAll("button")].find((b) => b.innerText.includes(text));
  if (start) {
    find("Access Webcam")?.click();
    for (let i = 0; i < 100 && !root.querySelector(".capture-button"); i++) {
      await new Promise((done) => setTimeout(done, 100));
    }
  }
  const capture = root.querySelector(".capture-button");
  if (capture && (capture.innerText.trim() === "Stop") !== start) capture.click();
}
</script>
<style>
#camera .capture-button { display: none; }
#session-results .grid-container { grid-template-columns: repeat(auto-fill, minmax(140px, 220px)) !important; }
#model-previews .grid-container, #style-thumbnails .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(90px, 120px)) !important; }
.impasto-alert { padding: 0.5em 0.75em; border: 2px solid #c0392b; border-radius: 6px; color: #c0392b; }
.impasto-alert button { margin-left: 0.5em; text-decoration: underline; }
</style>"""
#: Before a job starts: bring the preview into view (it is below the fold on a laptop).
SHOW_PREVIEW = "(...args) => { document.querySelector('#progress')?.scrollIntoView({behavior: 'smooth'}); return args; }"


def build(studio: "Studio"):
    """The Gradio Blocks app.

    Its process keeps Gradio's uploads in the studio's private folder, and Pillow refuses (from
    the header, before decoding) any image over ``MAX_PIXELS``, Gradio's own decoding included.
    """
    os.environ["GRADIO_TEMP_DIR"] = str(studio.uploads)
    PIL.Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow raises above twice this, warns above it
    gr = _gradio()
    from . import methods
    from .modelfile import available_models
    from .samples import painting_credits, paintings

    credits = painting_credits()

    fast_models = [(_model_label(m), m.path.stem) for m in available_models() if m.kind == "fast"]
    with gr.Blocks(title="impasto studio", delete_cache=(3600, 3600)) as app:
        gallery_state = gr.State([])
        gr.Markdown("# impasto studio\nRepaint a photo in the style of artworks.")
        with gr.Tabs() as tabs:
            with gr.Tab("Create", id="create"):
                with gr.Row():
                    with gr.Column():
                        editor = gr.ImageEditor(label="Content photo (paint on it to choose where the style goes)",
                                                type="numpy", elem_id="content", sources=["upload", "clipboard"],
                                                brush=gr.Brush(colors=[("#ff40a0", 0.45)], default_size=24,
                                                               color_mode="fixed"),
                                                transforms=(), layers=False, height=420)
                        gr.HTML("", elem_id="photo-message")
                        builtin = gr.Gallery([(str(path), credits.get(name, name)) for name, path in paintings().items()],
                                             label="Built-in paintings (public domain): click one to add it",
                                             elem_id="paintings", columns=4, height=200, allow_preview=False)
                        styles = gr.File(label="Style image(s)", file_count="multiple", file_types=["image"],
                                         elem_id="styles")
                        style_shown = gr.Gallery(label="Your styles", elem_id="style-thumbnails", height=130,
                                                 allow_preview=False, object_fit="contain")
                        blend = gr.Textbox(label="Blend weights (one per style, or per style of a multi-style model, "
                                                 "e.g. 3,1)", elem_id="blend")
                        mask_inside = gr.Radio([("the first style (the second goes outside)", "first"),
                                             ("the second style (the first goes outside)", "second")], value="first",
                                            label="Paint on the photo to choose where a style goes; the painted area "
                                                  "gets", elem_id="mask-inside")
                        with gr.Row():
                            mask_button = gr.Button("Download the painted area as a mask", elem_id="mask-download",
                                                    size="sm")
                            mask_file = gr.File(label="Mask (white = painted)", elem_id="mask-file",
                                                interactive=False, visible=False)
                    with gr.Column():
                        method = gr.Radio(_method_choices(METHODS), value="optimize", label="Method", elem_id="method")
                        model = gr.Dropdown(fast_models, value=fast_models[0][1] if fast_models else None,
                                            label="Trained style", elem_id="model", visible=False)
                        trained = gr.Gallery(model_previews(studio), label="Trained styles, each on the same photo: "
                                             "click one", elem_id="model-previews", height=150, visible=False,
                                             allow_preview=False, object_fit="contain")
                        size = gr.Slider(64, 2048, value=512, step=32, label="Size (long side, px)", elem_id="size")
                        own_size = gr.Checkbox(False, label="The photo's own size (full resolution; the default "
                                                            "for the instant methods)", elem_id="own-size")
                        strength = gr.Slider(0, 1, value=_default_strength("optimize"), step=0.05,
                                             label="Strength (0 = the photo; set to the method's default when you "
                                                   "choose a method)", elem_id="strength")
                        iterations = gr.Slider(5, 300, value=_default_iterations("optimize") or 50, step=5,
                                               label="Iterations (iterative methods)", elem_id="iterations")
                        preserve = gr.Radio(list(COLOR_CHOICES), value="none", label="Keep the photo's colours",
                                            elem_id="preserve")
                        expected = gr.Markdown(estimate(studio, "optimize", 512, _default_iterations("optimize") or 50),
                                               elem_id="estimate")
                        with gr.Row():
                            go = gr.Button("Stylize (Ctrl+Enter)", variant="primary", elem_id="run")
                            halt = gr.Button("Stop", elem_id="stop")
                progress = gr.HTML(_progress_html(0, 1, "ready"), elem_id="progress")
                with gr.Row():
                    preview = gr.Image(label="Preview", type="pil", elem_id="preview", interactive=False, format="png",
                                       alt_text="the stylized photo, as the work goes", min_width=320,
                                       height=420)
                    download = gr.File(label="Download (full resolution)", elem_id="download", interactive=False,
                                       min_width=320)
                compare = gr.ImageSlider(label="Before / after (drag the line)", elem_id="compare", type="pil",
                                         interactive=False, height=420)
                session_results = gr.Gallery(label="This session's results, side by side (oldest first)",
                                             elem_id="session-results", height=260, allow_preview=False,
                                             object_fit="contain")
                session_state = gr.State([])
            with gr.Tab("Video"):
                clip = gr.Video(label="Clip", sources=["upload"], elem_id="clip")
                with gr.Row():
                    video_method = gr.Radio(_method_choices(METHODS), value="fast", label="Method",
                                            elem_id="video-method")
                    video_model = gr.Dropdown(fast_models, value=fast_models[0][1] if fast_models else None,
                                              label="Fast model", elem_id="video-model")
                    video_style = gr.File(label="Style image (methods that take one)", file_types=["image"],
                                          elem_id="video-style")
                    video_size = gr.Slider(64, 1080, value=320, step=16, label="Size", elem_id="video-size")
                    coherent = gr.Checkbox(value=True, label="Temporal coherence", elem_id="coherent")
                    video_keys = gr.Slider(0, 24, value=0, step=1, elem_id="video-keyframes",
                                           label="Keyframes every N frames, carried along the motion (0: paint every frame)")
                video_go = gr.Button("Stylize clip", variant="primary", elem_id="video-run")
                video_progress = gr.HTML(_progress_html(0, 1, "ready"), elem_id="video-progress")
                video_out = gr.Video(label="Result", elem_id="video-result", interactive=False)
            with gr.Tab("Camera"):
                with gr.Row():
                    camera_method = gr.Radio(_method_choices([n for n in METHODS if methods.get(n).one_pass]),
                                             value="fast", label="Method", elem_id="camera-method")
                    camera_model = gr.Dropdown(fast_models, value=fast_models[0][1] if fast_models else None,
                                               label="Fast model", elem_id="camera-model")
                    camera_style = gr.File(label="Style image (any-painting methods)", file_types=["image"], elem_id="camera-style")
                with gr.Row():
                    camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera", elem_id="camera",
                                      webcam_options=gr.WebcamOptions(constraints={"video": {
                                          "width": {"ideal": 2 * CAMERA_SIDE}, "height": {"ideal": CAMERA_SIDE * 3 // 2}}}))
                    camera_out = gr.Image(label="Stylized", elem_id="camera-result", interactive=False,
                                          alt_text="the camera's picture, stylized")
                with gr.Row():
                    camera_start = gr.Button("Start camera", variant="primary", elem_id="camera-start")
                    camera_stop = gr.Button("Stop camera", elem_id="camera-stop")
                    rate = gr.Textbox(label="Frame rate", elem_id="camera-rate", interactive=False)
            with gr.Tab("Dream"):
                gr.Markdown("DeepDream: the network grows the patterns it sees in the photo. Shallow layers paint "
                            "strokes, deep ones eyes and creatures; a guide image grows its own motifs instead.")
                with gr.Row():
                    with gr.Column():
                        dream_photo = gr.Image(label="Photo", type="filepath", sources=["upload", "clipboard"],
                                               elem_id="dream-photo", height=320)
                        dream_guide = gr.File(label="Guide image (optional)", file_types=["image"],
                                              elem_id="dream-guide")
                    with gr.Column():
                        dream_layer = gr.Radio(list(DREAM_LAYERS), value="eyes and arches (relu4_2)",
                                               label="What grows (the layer)", elem_id="dream-layer")
                        dream_strength = gr.Slider(0.1, 3, value=1.0, step=0.1, label="Strength",
                                                   elem_id="dream-strength")
                        dream_octaves = gr.Slider(1, 6, value=4, step=1, label="Octaves (scales, coarse to fine)",
                                                  elem_id="dream-octaves")
                        dream_iterations = gr.Slider(1, 40, value=10, step=1, label="Iterations per octave",
                                                     elem_id="dream-iterations")
                        dream_size = gr.Slider(64, 2048, value=512, step=32, label="Size (long side, px)",
                                               elem_id="dream-size")
                        with gr.Row():
                            dream_go = gr.Button("Dream", variant="primary", elem_id="dream-run")
                            dream_halt = gr.Button("Stop", elem_id="dream-stop")
                dream_progress = gr.HTML(_progress_html(0, 1, "ready"), elem_id="dream-progress")
                with gr.Row():
                    dream_preview = gr.Image(label="Dream", type="pil", elem_id="dream-result", interactive=False,
                                             format="png", alt_text="the photo, dreamt on", height=420)
                    dream_download = gr.File(label="Download", elem_id="dream-download", interactive=False)
            with gr.Tab("Gallery"):
                gallery = gr.Gallery(label="This session's results", elem_id="gallery", columns=4)
                command = gr.Code(label="The same result from a terminal (in the run's folder, or its bundle)",
                                  language="shell", elem_id="command")
                chosen_run = gr.State(None)
                with gr.Row():
                    reopen_button = gr.Button("Use this run's settings", elem_id="reopen")
                    again_button = gr.Button("Use the result as the photo", elem_id="result-as-photo")
                    bundle_button = gr.Button("Download this run (result, inputs, settings, command)", elem_id="bundle")
                    delete_button = gr.Button("Delete this run", elem_id="delete-run", variant="stop")
                bundle_file = gr.File(label="Run bundle", elem_id="bundle-file", interactive=False)

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
                raise _fail(exc) from None

        mask_button.click(mask_download, editor, mask_file, queue=False)

        def method_panel(name: str) -> tuple:
            """Only what applies to the chosen method, set to its defaults."""
            chosen = methods.get(name)
            iterative = _default_iterations(name) is not None
            return (gr.update(value=_default_strength(name)),
                    gr.update(value=_default_iterations(name) or 50, visible=iterative),
                    gr.update(visible=chosen.model_required), gr.update(visible=chosen.uses_styles),
                    gr.update(visible=chosen.uses_styles), gr.update(value=chosen.one_pass),
                    gr.update(visible=chosen.model_required and bool(studio.model_previews)),
                    gr.update(visible=chosen.uses_styles), gr.update(visible=chosen.uses_styles))

        def check_styles(files) -> None:
            check_uploads(files, "style image")

        styles.upload(check_styles, styles, None, show_progress="hidden")

        def add_painting(current, event: gr.SelectData):
            chosen = list(paintings().values())[event.index]
            files = [str(getattr(item, "name", item)) for item in (current or [])]
            return [*files, str(chosen)]

        builtin.select(add_painting, styles, styles, queue=False)
        for control in (method, size, iterations):
            control.change(lambda m, s, n: estimate(studio, m, int(s), int(n)), [method, size, iterations], expected,
                           queue=False)
        method.change(method_panel, method, [strength, iterations, model, styles, mask_inside, own_size, trained,
                                             style_shown, mask_button], queue=False)
        styles.change(style_thumbnails, styles, style_shown, queue=False)

        def pick_model(event: gr.SelectData):
            return fast_models[event.index][1]

        trained.select(pick_model, None, model, queue=False)
        go.click(run_create, [editor, styles, blend, method, model, size, strength, iterations,
                                    preserve, mask_inside, gallery_state, own_size, session_state],
                       [preview, progress, download, gallery, gallery_state, compare, session_results, session_state],
                       concurrency_id="device",
                       js=SHOW_PREVIEW).then(lambda m, s, n: estimate(studio, m, int(s), int(n)),
                                             [method, size, iterations], expected, queue=False)
        def run_stop(request: gr.Request) -> None:
            stop(studio, request.session_hash)

        halt.click(run_stop, None, None, queue=False)

        def show_run(state, event: gr.SelectData):
            if not 0 <= event.index < len(state):
                return "", None
            return state[event.index]["command"], state[event.index]["id"]

        def bundle_run(run_id: str | None):
            if not run_id:
                raise _fail(ImpastoError("choose a result in the gallery first"))
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
                raise _fail(ImpastoError("choose a result in the gallery first"))
            keep = gr.update()
            return (found["method"], found["size"], keep if found["strength"] is None else found["strength"],
                    keep if found["iterations"] is None else found["iterations"], found["preserve"], found["blend"],
                    found["model"] or keep, gr.Tabs(selected="create"))

        def result_as_photo(run_id: str | None):
            found = reopen(studio, run_id)
            if found is None:
                raise _fail(ImpastoError("choose a result in the gallery first"))
            return ({"background": found["result"], "layers": [], "composite": found["result"]},
                    gr.Tabs(selected="create"))

        gallery.select(show_run, gallery_state, [command, chosen_run], queue=False)
        reopen_button.click(reopen_run, chosen_run, [method, size, strength, iterations, preserve, blend, model, tabs])
        again_button.click(result_as_photo, chosen_run, [editor, tabs])
        bundle_button.click(bundle_run, chosen_run, bundle_file)
        delete_button.click(delete_run, chosen_run, [gallery, gallery_state, command, chosen_run])
        app.load(load_gallery, None, [gallery, gallery_state])
        def run_dream(photo_v, layer_v, strength_v, octaves_v, iterations_v, size_v, guide_v, request: gr.Request):
            yield from create_dream(studio, photo_v, layer_v, strength_v, octaves_v, iterations_v, size_v, guide_v,
                                    request.session_hash)

        dream_go.click(run_dream, [dream_photo, dream_layer, dream_strength, dream_octaves, dream_iterations,
                                   dream_size, dream_guide], [dream_preview, dream_progress, dream_download],
                       concurrency_id="device")
        dream_halt.click(run_stop, None, None, queue=False)
        dream_guide.upload(lambda files: check_uploads([files] if files else [], "guide image"), dream_guide, None,
                           show_progress="hidden")

        def run_video(clip_v, method_v, model_v, style_v, size_v, coherent_v, keys_v):
            yield from create_video(studio, clip_v, method_v, model_v, style_v, size_v, coherent_v, keys_v)

        video_go.click(run_video,
                       [clip, video_method, video_model, video_style, video_size, coherent, video_keys],
                       [video_progress, video_out], concurrency_id="device")
        def run_camera(frame, method_v, model_v, style_v, request: gr.Request):
            return camera_frame(studio, frame, method_v, model_v, style_v, request.session_hash)

        camera.stream(run_camera, [camera, camera_method, camera_model, camera_style], [camera_out, rate],
                      stream_every=0.1, concurrency_id="camera", concurrency_limit=2, show_progress="hidden")
        camera_start.click(None, js="() => impastoCamera(true)")
        camera_stop.click(None, js="() => impastoCamera(false)")
    app.queue(default_concurrency_limit=1, max_size=64)
    return app


class SecurityHeaders:
    """ASGI middleware: every response forbids framing by other sites and content sniffing."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """Host headers the studio answers: this machine's loopback names, the bound address, ``extra``.

    A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own
    name as Host and is refused.  ``*`` in ``extra`` accepts any.
    """
    names = [*LOCAL_HOSTS, *extra]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    return sorted(set(names))


def launch(app, studio: "Studio", host: str = "127.0.0.1", port: int = 7860, extra_hosts: Sequence[str] = ()) -> str:
    """Start the built app's server (not blocking) with the Host check and security headers; its URL.

    The history's folder (under the user's data folder, outside the temporary folder and the
    working directory Gradio serves from by default) is the one other folder the page may show."""
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host, extra_hosts)),
                  Middleware(SecurityHeaders)]
    _, url, _ = app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                           max_file_size=MAX_UPLOAD, footer_links=[], show_error=True, head=PAGE_SCRIPT,
                           allowed_paths=[str(studio.history.folder)], app_kwargs={"middleware": middleware})
    return url


def serve(host: str = "127.0.0.1", port: int = 7860, folder: str | None = None, block: bool = True,
          extra_hosts: Sequence[str] = ()):
    """Start the studio; returns (app, url, studio) when ``block`` is False (tests).

    Ctrl-C and SIGTERM (the CLI turns it into KeyboardInterrupt) close the server and remove the
    studio's folder.
    """
    studio = Studio(folder)
    atexit.register(studio.cleanup)
    app = build(studio)
    url = launch(app, studio, host, port, extra_hosts)
    if not block:
        return app, url, studio
    print(f"impasto studio: {url} (Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        app.close()
        studio.cleanup()
    return app, url, studio
