"""How long a job will take on this machine: a cost model per (method, device), fitted on the
history's own recorded runs, with a short calibration as the first guess where there is none.

The model: ``seconds = prepare + rate * pixels * iterations + upsample * output_pixels``.
``prepare`` is the work before the first step (models, styles; recorded with each run), ``rate``
the seconds per painted pixel and iteration, ``pixels`` those the method paints (a one-pass method
paints at a working size, :func:`impasto.core.guided.working_size`) and ``upsample`` the seconds
per output pixel of bringing a one-pass painting up to a larger output (zero when it is painted at
its own size).  Each is the median over the latest runs, so that one odd run does not move it.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

#: Runs of a method the fit reads (the latest first) and how many of them count.
LATEST = 50
RECENT = 10
#: The calibration's photo sizes (long side, px) and iterations: small, so it takes a few seconds.
CALIBRATION_SIDES = (64, 128)
CALIBRATION_ITERATIONS = 2


@dataclass(frozen=True)
class Work:
    """What a job asks of the machine, in the model's terms."""

    method: str
    pixels: int  # painted pixels, over all photos (a one-pass method's working size)
    iterations: int = 1
    output_pixels: int = 0  # pixels brought up from the working size (one-pass methods), else 0
    device: str = "cpu"
    frames: int = 1  # a clip's frames, each painted like one photo
    cold: bool = False  # this process's first painting of the method at this size (set-up on first use)


@dataclass(frozen=True)
class Cost:
    """A method's cost on a device; ``runs``: how many recorded runs it rests on (0: a first guess)."""

    prepare: float
    rate: float
    upsample: float = 0.0
    runs: int = 0
    lifted: bool = False  # ``rate`` learnt from runs that were brought up: it holds their upsampling

    def seconds(self, work: Work) -> float:
        each = self.rate * work.pixels * work.iterations + self.upsample * work.output_pixels
        return self.prepare + work.frames * each


def work_of(job: Any) -> Work:
    """The :class:`Work` of an :class:`impasto.jobs.image_job.ImageJob` (before it runs)."""
    from impasto.jobs.image_job import _device

    name, _, iterations = job.work()
    return paintings_work(name, job.output_sizes(), iterations, job.request.stroke_scale, _device(job.request))


def paintings_work(method: str, sizes: Iterable[tuple[int, int]], iterations: int = 1,
                   stroke_scale: float | None = None, device: str = "cpu") -> Work:
    """The :class:`Work` of painting pictures of these (height, width) output sizes (cold: the first
    of its size that this process paints)."""
    from impasto import methods
    from impasto.jobs.image_job import _PAINTED

    one_pass = methods.get(method).one_pass
    painted, upsampled, cold = 0, 0, False
    for height, width in sizes:
        working = _working(one_pass, height, width, stroke_scale)
        painted += working[0] * working[1]
        upsampled += height * width if working != (height, width) else 0
        cold = cold or (method, device, (height, width)) not in _PAINTED
    return Work(method, painted, 1 if one_pass else iterations, upsampled, device, cold=cold)


def clip_work(job: Any, frames: int, height: int, width: int) -> Work:
    """The :class:`Work` of an :class:`impasto.jobs.clip_job.ClipJob` of ``frames`` frames of
    ``height`` x ``width`` (the clip's, at the job's size): each frame a painting (cold where this
    process has painted no photo of the size: its set-up is the clip's)."""
    from impasto.core import images
    from impasto.jobs.image_job import _PAINTED, _device

    method = job.chosen()
    size = job.request.size
    if size is not None:
        height, width = images.scaled_size(height, width, size)
    working = _working(method.one_pass, height, width, job.request.stroke_scale)
    iterations = 1 if method.one_pass else int(job.temporal.iterations or getattr(method.options(), "iterations", 1))
    device = _device(job.request)
    return Work(method.name, working[0] * working[1], iterations, height * width if working != (height, width) else 0,
                device, frames, cold=(method.name, device, (height, width)) not in _PAINTED)


def _working(one_pass: bool, height: int, width: int, stroke_scale: float | None) -> tuple[int, int]:
    if not one_pass:
        return height, width
    from impasto.core import guided

    return guided.working_size(height, width, stroke_scale, max(height * width, 1) * 64)


def run_work(run: Any) -> Work | None:
    """The work a recorded picture did (None: a run this model cannot read, a clip, or not a finished one)."""
    from impasto import methods
    from impasto.jobs.image_job import nested_settings

    if run.status in ("interrupted", "non-finite") or run.seconds <= 0 or run.settings.get("kind") == "clip":
        return None  # a clip's time is its frames' and flow's: not one picture's
    try:
        method = methods.get(run.method)
    except Exception:  # noqa: BLE001 - a method this version does not have
        return None
    settings = nested_settings(run.settings)
    request = settings.get("request") or {}
    iterations = 1 if method.one_pass else int(settings.get("iterations") or (settings.get("options") or {})
                                               .get("iterations") or 1)
    working = _working(method.one_pass, run.height, run.width, request.get("stroke_scale"))
    upsampled = run.height * run.width if working != (run.height, run.width) else 0
    return Work(run.method, working[0] * working[1], iterations, upsampled, settings.get("device") or "cpu",
                cold=bool(settings.get("cold")))


def fit(runs: Iterable[Any], method: str, device: str = "cpu", cold: bool | None = None,
        upsample: float | None = None) -> Cost | None:
    """The cost of ``method`` on ``device`` from recorded runs (:class:`impasto.jobs.history.Run`,
    the latest first), or None when there is none to learn from.  ``cold``: from the runs that were
    (or were not) their process's first painting of the size, where there are such runs.
    ``upsample``: the seconds per output pixel of the upsampling, known from elsewhere, for a
    method only ever brought up (without it, its rate holds the upsampling: ``Cost.lifted``)."""
    done = []
    for run in runs:
        work = run_work(run)
        if work is not None and work.method == method and work.device == device:
            prepare = float(nested_prepare(run.settings))
            done.append((work, float(run.seconds), prepare))
        if len(done) >= LATEST:
            break
    if not done:
        return None
    everything = done
    if cold is not None and any(w.cold == cold for w, _, _ in done):
        done = [item for item in done if item[0].cold == cold]
        prepare = statistics.median(p for _, _, p in done[:RECENT])
    else:  # a repeat of work the process has done keeps its set-up (the model, the paintings' codes)
        prepare = 0.0 if cold is False else statistics.median(p for _, _, p in done[:RECENT])
    plain = [(w, s, p) for w, s, p in done if not w.output_pixels] or \
        [(w, s, p) for w, s, p in everything if not w.output_pixels]
    if not plain:  # only ever brought up: the upsampling's share taken off with its known rate, else held
        share = upsample or 0.0
        rate = statistics.median(max(s - p - share * w.output_pixels, 0.0) / max(w.pixels * w.iterations, 1)
                                 for w, s, p in done[:RECENT])
        return Cost(prepare, rate, share, len(done[:RECENT]), lifted=upsample is None)
    rate = statistics.median(max(s - p, 0.0) / max(w.pixels * w.iterations, 1) for w, s, p in plain[:RECENT])
    lifted = [max(s - p - rate * w.pixels * w.iterations, 0.0) / w.output_pixels
              for w, s, p in done[:RECENT] if w.output_pixels]
    upsample = statistics.median(lifted) if lifted else 0.0
    return Cost(prepare, rate, upsample, len(done[:RECENT]))


def nested_prepare(settings: dict[str, Any]) -> float:
    return settings.get("prepare_seconds") or 0.0


def upsample_rate(runs: Iterable[Any], device: str = "cpu", cold: bool | None = None) -> float | None:
    """Seconds per output pixel of bringing a one-pass painting up to its size, from any one-pass
    method's runs (the guided upsampling is the same for all of them); ``cold``: from the runs that
    were (or were not) their process's first painting of the size, where there are such runs."""
    from impasto import methods

    found = []
    by_method: dict[str, Cost | None] = {}
    works = [(run, run_work(run)) for run in runs]  # each run read once
    plain = [run for run, work in works if work is not None and not work.output_pixels]
    lifting = [(run, work) for run, work in works if work is not None and work.output_pixels and work.device == device]
    if cold is not None and any(work.cold == cold for _, work in lifting):
        lifting = [(run, work) for run, work in lifting if work.cold == cold]
    for run, work in lifting:
        if work.method not in by_method:
            by_method[work.method] = fit(plain, work.method, device)
        cost = by_method[work.method]
        if cost is None or not methods.get(work.method).one_pass:
            continue
        spent = run.seconds - nested_prepare(run.settings) - cost.rate * work.pixels * work.iterations
        found.append(max(spent, 0.0) / work.output_pixels)
        if len(found) >= RECENT:
            break
    return statistics.median(found) if found else None


class Estimator:
    """A studio's estimates: fitted on its history at each question, first guesses calibrated once
    per (method, device) and kept."""

    def __init__(self, history: Any, calibrate: Callable[[str, str], Cost] | None = None,
                 calibrate_upsampling: Callable[[str], float] | None = None) -> None:
        self.history = history
        self.calibrate = calibrate or calibration
        self.calibrate_upsampling = calibrate_upsampling or upsample_calibration
        self.guesses: dict[tuple[str, str], Cost] = {}

    def cost(self, method: str, device: str = "cpu", guess: bool = True, upsampled: bool = True,
             cold: bool | None = None) -> Cost | None:
        """The fitted cost; else the first guess (calibrated now if ``guess``, else None);
        ``upsampled``: with the cost of bringing a one-pass painting up to a larger output;
        ``cold``: of a process's first painting of the size (or a later one)."""
        runs = self.history.runs(limit=LATEST)
        cost = fit(runs, method, device, cold)
        if cost is None:
            key = (method, device)
            if key not in self.guesses:
                if not guess:
                    return None
                self.guesses[key] = self.calibrate(method, device)
            cost = self.guesses[key]
        if cost.lifted or (upsampled and not cost.upsample):
            lifted = upsample_rate(runs, device, cold)
            if lifted is None:
                key = ("upsample", device)
                if key not in self.guesses:
                    self.guesses[key] = Cost(0.0, 0.0, self.calibrate_upsampling(device))
                lifted = self.guesses[key].upsample
            cost = fit(runs, method, device, cold, lifted) if cost.lifted else dataclasses.replace(cost, upsample=lifted)
        return cost

    def seconds(self, work: Work, guess: bool = True) -> tuple[float, bool] | None:
        """(seconds, whether it is a first guess) for ``work``; None without history unless ``guess``."""
        cost = self.cost(work.method, work.device, guess, bool(work.output_pixels), work.cold)
        return None if cost is None else (cost.seconds(work), cost.runs == 0)


def calibration(method: str, device: str = "cpu") -> Cost:
    """A first guess: paint a tiny photo at two sizes with the method (a built-in painting as the
    style, the first fast model where it needs one) and take the cost per pixel from the difference."""
    import torch

    from impasto import methods
    from impasto.core.modelfile import available_models
    from impasto.core.samples import paintings

    chosen = methods.get(method)
    model = None
    if chosen.model_required:
        model = next((m.path for m in available_models() if m.kind == method), None)
    styles = [next(iter(paintings().values()))] if chosen.uses_styles else []
    options = None
    if chosen.options is not None and "iterations" in chosen.options.__dataclass_fields__:
        options = chosen.options(iterations=CALIBRATION_ITERATIONS)
    started = time.perf_counter()
    painter = chosen.prepare(styles, methods.Request(size=None, model=model, device=device, options=options))
    prepare = time.perf_counter() - started
    times = []
    for side in CALIBRATION_SIDES:
        photo = torch.rand(1, 3, side * 3 // 4, side, generator=torch.Generator().manual_seed(0))
        started = time.perf_counter()
        painter.paint(photo)
        times.append((time.perf_counter() - started, side * (side * 3 // 4)))
    (t1, p1), (t2, p2) = times
    iterations = 1 if chosen.one_pass else CALIBRATION_ITERATIONS
    rate = max(t2 - t1, t2 * 0.1) / max((p2 - p1) * iterations, 1)
    return Cost(prepare, rate, 0.0, 0)


def upsample_calibration(device: str = "cpu") -> float:
    """Seconds per output pixel of bringing a painting from the working size up to the output's
    (resizing down and the guided upsampling), timed once with a painting that does nothing."""
    import torch

    from impasto.core import guided

    photo = torch.rand(1, 3, 1536, 2048, generator=torch.Generator().manual_seed(0))
    guided.paint_at_scale(lambda small: small, photo, None)  # warm
    started = time.perf_counter()
    guided.paint_at_scale(lambda small: small, photo, None)
    return (time.perf_counter() - started) / (1536 * 2048)


def words(seconds: float, guessed: bool = False) -> str:
    """'about 12 s' / 'about 3 min' / 'under a second', said as a first guess when it is one."""
    if seconds < 1:
        text = "under a second"
    elif seconds < 120:
        text = f"about {seconds:.0f} s"
    elif seconds < 7200:
        text = f"about {seconds / 60:.0f} min"
    else:
        text = f"about {seconds / 3600:.1f} h"
    return text + (" (a first guess: measured on this machine after the first run)" if guessed else "")
