"""The solver every pixel-optimising method shares (the optimisation method, neural neighbours,
DeepDream's octaves): the optimisers, the loss-and-gradient evaluation that L-BFGS's line search
re-uses, one level's optimisation loop with its stopping rules, and the coarse-to-fine pyramid.

What is optimised -- the objective -- is the caller's (:mod:`impasto.engines.optimize` builds the
style transfer's); the solver only moves pixels to lower it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

import torch

from impasto.core.backbone import VGG
from impasto.core.losses import StyleObjective
from impasto.core.results import Progress
from impasto.core.runtime import check_cancelled

#: Learning rates that work on pixels in [0, 1] with the default loss weights.
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "lbfgs-device": 1.0, "adam": 0.02, "sgd": 0.002, "rmsprop": 0.005}
OPTIMIZERS = tuple(DEFAULT_LEARNING_RATES)


@dataclass(frozen=True)
class SolverSettings:
    """How one level's pixels are optimised, apart from what for: shared by the optimisation method
    and neural neighbours (:func:`optimize_level`)."""

    iterations: int = 50
    optimizer: str = "lbfgs"
    learning_rate: float | None = None  # None: the optimizer's default (DEFAULT_LEARNING_RATES)
    tolerance: float = 1e-5  # stop when the relative loss change per iteration stays below this ...
    patience: int = 10  # ... for this many iterations
    ema: float | None = None  # the decay of a moving average of the iterates (None: none)
    read_every: int | None = None  # lbfgs-device: read the loss back every N iterations; None: 1 on CPUs, 10 elsewhere


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite."""


def pyramid_plan(size: int, iterations: int, levels: int | None = None, smallest: int = 256) -> list[tuple[int, int]]:
    """(size, iterations) per level, coarse to fine.

    Sizes grow by sqrt(2) up to ``size``; by default there are as many levels as fit with the
    coarsest at least ``smallest`` px.  The finest level runs ``iterations``; each coarser one
    runs 1.5 times as many as the next finer (up to 2.25 times the finest's), since its iterations
    cost half as much and settle the large-scale layout that is slow to converge at full size.
    """
    if levels is None:
        levels = 1 + max(0, int(math.floor(math.log(max(size, 1) / smallest, math.sqrt(2)) + 1e-9)))
    plan = []
    for k in range(levels):  # k = 0 is the finest
        plan.append((max(1, round(size / math.sqrt(2) ** k)), max(1, round(iterations * 1.5 ** min(k, 2)))))
    return plan[::-1]


def make_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, max_eval=25, history_size=50,
                                 line_search_fn="strong_wolfe",
                                 tolerance_grad=0.0, tolerance_change=0.0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.RMSprop(params, lr=lr)


class Evaluator:
    """Computes loss and pixel gradient, caching the last point.

    L-BFGS re-evaluates the point its line search just accepted at the start of every step; the
    cache makes that free, so one iteration costs one forward+backward in the usual case.
    """

    def __init__(
        self, model: VGG, objective: StyleObjective, image: torch.Tensor, cast: Callable, unit_gradient: bool = False,
        compose: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.model, self.objective, self.image, self.cast = model, objective, image, cast
        self.compose = compose or (lambda pixels: pixels)  # the network's input made from the pixels
        self.unit_gradient = unit_gradient
        self.layers = objective.layers
        self.evaluations = 0
        self.terms: dict[str, float] = {}
        self._point: torch.Tensor | None = None
        self._grad: torch.Tensor | None = None
        self._loss: torch.Tensor | None = None

    def __call__(self) -> torch.Tensor:
        pixels = self.image.detach()
        if self._point is not None and torch.equal(self._point, pixels):
            check_cancelled()
            self.image.grad = self._grad.clone()
            return self._loss
        terms = self.compute()
        loss = terms["total"]
        if not torch.isfinite(loss):
            raise NonFiniteLoss()
        self.terms = {name: float(value) for name, value in terms.items()}
        self._point, self._grad, self._loss = pixels.clone(), self.image.grad.detach().clone(), loss
        return self._loss

    def compute(self) -> dict[str, torch.Tensor]:
        """Loss terms at the image (detached, left on the device) and its gradient in ``image.grad``:
        no cache and nothing read back, so the host never waits for the device here."""
        check_cancelled()
        self.image.grad = None
        with self.cast():
            seen = self.compose(self.image)
            features = self.model(seen, self.layers)
        terms = self.objective.terms(seen, features)
        terms["total"].backward()
        if self.unit_gradient:  # plain SGD: a step of lr moves pixels by about lr, whatever the loss scale
            self.image.grad /= self.image.grad.pow(2).mean().sqrt().clamp_min(1e-20)
        self.evaluations += 1
        return {name: value.detach() for name, value in terms.items()}


class _Stopping:
    """What both loops of :func:`optimize_level` share: the loss history, the stopping rule
    (the relative loss change per iteration under the tolerance for ``patience`` iterations in a
    row) and, as a context, how the level ended: Ctrl-C or a non-finite loss end it quietly,
    keeping the last good picture."""

    def __init__(self, settings: SolverSettings) -> None:
        self.settings = settings
        self.history: list[float] = []
        self.calm = 0
        self.reason = "iterations"

    def converged(self, total: float, span: int) -> bool:
        """Take the loss ``total`` read ``span`` iterations after the last reading; True once calm."""
        if self.history:
            change = abs(self.history[-1] - total) / max(abs(self.history[-1]), 1e-12) / span
            self.calm = self.calm + span if change < self.settings.tolerance else 0
        self.history.append(total)
        if self.calm >= self.settings.patience:
            self.reason = "converged"
        return self.reason == "converged"

    @property
    def broken(self) -> bool:
        """The last iteration did not finish (interrupted, or its loss was not finite)."""
        return self.reason in ("interrupted", "non-finite")

    def __enter__(self) -> "_Stopping":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            self.reason = "interrupted"
        elif kind is not None and issubclass(kind, NonFiniteLoss):
            self.reason = "non-finite"
        return self.broken


def optimize_level(
    model: VGG,
    objective: StyleObjective,
    start: torch.Tensor,
    settings: SolverSettings,
    cast: Callable,
    report: LevelReport,
    compose: Callable[[torch.Tensor], torch.Tensor] | None = None,
    first_step: float | None = None,
) -> tuple[torch.Tensor, int, int, dict[str, float], str, list[float]]:
    """One level (or tile) of optimisation: (image, iterations, evaluations, terms, stop reason, loss history).

    ``first_step`` (L-BFGS): the mean pixel change of the first step.  L-BFGS has no curvature yet
    and moves the pixels by 1/N in all (N = their number), so its line search spends several
    evaluations growing the step; a level that starts from a good picture knows the scale.
    """
    image = start.clone().requires_grad_(True)
    evaluate = Evaluator(model, objective, image, cast, unit_gradient=settings.optimizer == "sgd", compose=compose)
    loop = _steps_on_device if settings.optimizer == "lbfgs-device" else _steps
    return loop(evaluate, settings, report, first_step)


def _steps(evaluate: Evaluator, settings: SolverSettings, report: LevelReport,
           first_step: float | None) -> tuple[torch.Tensor, int, int, dict[str, float], str, list[float]]:
    """The loop of :func:`optimize_level` with a ``torch.optim`` optimiser."""
    name, image = settings.optimizer, evaluate.image
    lr = settings.learning_rate or DEFAULT_LEARNING_RATES[name]
    optimizer = make_optimizer(name, [image], lr * image.numel() * first_step if first_step and name == "lbfgs" else lr)
    last_good = image.detach().clone()
    decay = settings.ema
    average, average_weight = torch.zeros_like(last_good), 0.0
    stopping, iteration = _Stopping(settings), 0
    with stopping:
        for iteration in range(1, settings.iterations + 1):
            optimizer.step(evaluate)
            optimizer.param_groups[0]["lr"] = lr  # after a scaled first step, L-BFGS's own steps
            evaluate()  # the terms of the accepted point (free: cached, and reused by the next step)
            if name != "lbfgs":
                with torch.no_grad():
                    image.clamp_(0, 1)  # projected gradient; L-BFGS keeps its curvature pairs unclamped
            if not torch.isfinite(image).all():
                raise NonFiniteLoss()
            last_good = image.detach().clone()
            if decay is not None:  # bias-corrected exponential moving average of the iterates
                average.mul_(decay).add_(last_good, alpha=1 - decay)
                average_weight = average_weight * decay + (1 - decay)
            report(iteration, evaluate.evaluations, dict(evaluate.terms), image.detach())
            if stopping.converged(evaluate.terms["total"], 1):
                break
    if stopping.broken:
        iteration = max(iteration - 1, 0)
    if decay is not None and average_weight > 0 and stopping.reason != "non-finite":
        last_good = average / average_weight
    return last_good, iteration, evaluate.evaluations, dict(evaluate.terms), stopping.reason, stopping.history


def _steps_on_device(evaluate: Evaluator, settings: SolverSettings, report: LevelReport,
                     first_step: float | None) -> tuple[torch.Tensor, int, int, dict[str, float], str, list[float]]:
    """The loop of :func:`optimize_level` with :class:`impasto.engines.lbfgs.DeviceLBFGS`: one evaluation per
    iteration, and the loss read back (progress, convergence, a non-finite start) only every ``read_every``
    iterations, so a GPU is never left waiting for Python in between.  Convergence: the relative
    change per iteration, averaged between two reads, below the tolerance for ``patience``
    iterations."""
    from impasto.engines.lbfgs import DeviceLBFGS

    image = evaluate.image
    read_every = settings.read_every or (1 if image.device.type == "cpu" else 10)
    solver = DeviceLBFGS(image, settings.learning_rate or DEFAULT_LEARNING_RATES["lbfgs-device"],
                         first_step=first_step)
    latest: dict[str, torch.Tensor] = {}  # the terms of the point just evaluated
    accepted: dict[str, torch.Tensor] = {}  # and of the best accepted point
    terms: dict[str, float] = {}
    stopping, iteration, read_at = _Stopping(settings), 0, 0

    def closure() -> torch.Tensor:
        latest.update(evaluate.compute())
        return latest["total"]

    with stopping:
        for iteration in range(1, settings.iterations + 1):
            solver.step(closure)
            # the terms of the accepted point, kept on the device
            accepted = {key: torch.where(solver.accepted, value, accepted.get(key, value)) for key, value in latest.items()}
            if iteration % read_every and iteration != settings.iterations:
                continue
            terms = {key: float(value) for key, value in accepted.items()}  # the one read-back
            if not math.isfinite(terms["total"]):  # no finite point yet (a non-finite start)
                raise NonFiniteLoss()
            report(iteration, evaluate.evaluations, dict(terms), solver.point.detach())
            span, read_at = iteration - read_at, iteration
            if stopping.converged(terms["total"], span):
                break
    if stopping.broken:
        iteration = max(iteration - 1, 0)
    return solver.point.detach().clone(), iteration, evaluate.evaluations, terms, stopping.reason, stopping.history


#: what a level reports after each iteration: (iteration, evaluations) counted within the level,
#: the loss terms, the pixels
LevelReport = Callable[[int, int, dict[str, float], torch.Tensor], None]
Level = TypeVar("Level")


@dataclass
class LevelOutcome:
    """What one level (all of its tiles) did, or the totals of a coarse-to-fine run."""

    iterations: int
    evaluations: int
    terms: dict[str, float]
    stop_reason: str
    history: list[float] = field(default_factory=list)


def coarse_to_fine(levels: Sequence[Level], paint_level: Callable[[int, Level, LevelReport], LevelOutcome],
                   planned: int, on_step: Callable[[Progress], None] | None) -> LevelOutcome:
    """The coarse-to-fine loop of the pixel-optimising methods (optimisation, neural neighbours,
    DeepDream's octaves): ``paint_level(level, item, report)`` works one level (starting from the
    picture the previous level left, which it keeps), ``report`` turns its in-level counts into
    :class:`Progress` over the whole run (``planned`` iterations in all) for ``on_step``.  Stops after
    a level that was interrupted or went non-finite; returns the totals, with the last level's terms
    and stop reason."""
    done = evaluations = 0
    history: list[float] = []
    outcome = LevelOutcome(0, 0, {}, "iterations")
    for level, item in enumerate(levels, start=1):
        def report(iteration: int, count: int, terms: dict[str, float], pixels: torch.Tensor,
                   level: int = level, offset: int = done, before: int = evaluations) -> None:
            if on_step is not None:
                on_step(Progress(offset + iteration, planned, before + count, terms, pixels, level, len(levels)))

        outcome = paint_level(level, item, report)
        done, evaluations = done + outcome.iterations, evaluations + outcome.evaluations
        history += outcome.history
        if outcome.stop_reason in ("interrupted", "non-finite"):
            break
    return LevelOutcome(done, evaluations, outcome.terms, outcome.stop_reason, history)
