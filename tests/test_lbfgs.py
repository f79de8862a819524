"""The L-BFGS that never waits for the device (impasto.engines.lbfgs) and the loop that reads it every N steps."""

import contextlib

import pytest
import torch

from impasto.core.errors import ImpastoError
from impasto.engines.lbfgs import DeviceLBFGS
from impasto.engines.optimize import StyleSettings, prepare, run

from helpers import gradient_photo, stripes

FAST = dict(size=48, precision="fp32", device="cpu")


def minimise(loss_of, start, steps):
    image = start.clone().requires_grad_(True)
    solver = DeviceLBFGS(image)

    def closure():
        image.grad = None
        loss = loss_of(image)
        loss.backward()
        return loss

    for _ in range(steps):
        solver.step(closure)
    return solver


def test_solves_an_ill_conditioned_quadratic():
    torch.manual_seed(0)
    scales = torch.logspace(0, 3, 64)  # condition number 1000
    target = torch.randn(64)
    solver = minimise(lambda x: 0.5 * (scales * (x - target) ** 2).sum(), torch.zeros(64), 150)
    assert torch.allclose(solver.point, target, atol=1e-3)
    assert float(solver.loss) < 1e-6


def test_a_step_to_a_non_finite_loss_is_refused_and_shortened():
    # the loss is NaN beyond 2.5; its minimum (3) lies out there, so the solver keeps landing on the edge
    def loss_of(x):
        value = ((x - 3) ** 2).sum()
        return torch.where((x > 2.5).any(), torch.full_like(value, float("nan")), value)

    solver = minimise(loss_of, torch.zeros(8), 40)
    assert torch.isfinite(solver.loss) and torch.isfinite(solver.point).all()
    assert 2.3 < float(solver.point.min()) and float(solver.point.max()) <= 2.5


def test_curving_down_at_the_start_grows_the_step():
    # -cos is concave near 0: the first tiny step teaches no curvature; the step must grow, not crawl
    solver = minimise(lambda x: -torch.cos(x).sum() + 1e-3 * (x ** 2).sum(), torch.full((16,), 0.01), 30)
    assert float(solver.point.abs().max()) < 1e-2  # the minimum at 0 is found from either side
    solver = minimise(lambda x: -torch.cos(x - 3).sum(), torch.full((16,), 0.01), 30)
    assert torch.allclose(solver.point, torch.full((16,), 3.0), atol=1e-3)


def test_matches_the_line_search_lbfgs_on_a_style_transfer():
    """Same evaluations, final loss within 10 % of PyTorch's strong-Wolfe L-BFGS."""
    content, style = gradient_photo(), stripes()
    wolfe = run(content, [style], StyleSettings(iterations=30, tolerance=0, **FAST))
    device = run(content, [style], StyleSettings(iterations=wolfe.evaluations, optimizer="lbfgs-device",
                                                 tolerance=0, **FAST))
    assert device.evaluations == wolfe.evaluations and device.stop_reason == "iterations"
    assert device.terms["total"] < 1.1 * wolfe.terms["total"]
    assert device.history[-1] < 0.2 * device.history[0]
    # near the same picture, reached another way: the two differ far less than each moved from the photo
    photo = prepare(content, [style], StyleSettings(**FAST), 16)[0]
    assert (device.image - wolfe.image).abs().mean() < 0.4 * (wolfe.image - photo).abs().mean()


@contextlib.contextmanager
def counting_reads():
    """Count every read of a tensor's value by the host (each is a device synchronisation on a GPU)."""
    counts = {"reads": 0}
    originals = {name: getattr(torch.Tensor, name) for name in ("__bool__", "__float__", "__int__", "item", "tolist")}

    def counted(original):
        def read(self, *args, **kwargs):
            counts["reads"] += 1
            return original(self, *args, **kwargs)
        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, counted(original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_the_loss_is_read_back_only_every_n_iterations():
    seen = []
    settings = StyleSettings(iterations=20, optimizer="lbfgs-device", read_every=5, tolerance=0, pyramid=1, **FAST)
    with counting_reads() as device_lbfgs:
        result = run(gradient_photo(), [stripes()], settings, on_step=lambda p: seen.append(p.iteration))
    assert seen == [5, 10, 15, 20] and result.iterations == 20
    # each read fetches the four terms (content, style, tv, total); nothing else is read
    assert device_lbfgs["reads"] <= 4 * len(seen) + 4
    with counting_reads() as wolfe:
        run(gradient_photo(), [stripes()], StyleSettings(iterations=20, tolerance=0, pyramid=1, **FAST))
    assert wolfe["reads"] > 5 * device_lbfgs["reads"]  # the line search reads at every evaluation


def test_converges_and_stops_between_reads():
    result = run(gradient_photo(), [stripes()], StyleSettings(iterations=300, optimizer="lbfgs-device",
                                                              tolerance=0.05, patience=4, read_every=2, **FAST))
    assert result.stop_reason == "converged" and result.iterations < 300 and result.iterations % 2 == 0


def test_interrupt_keeps_the_best_point():
    def on_step(progress):
        if progress.iteration == 6:
            raise KeyboardInterrupt

    result = run(gradient_photo(), [stripes()], StyleSettings(iterations=50, optimizer="lbfgs-device", **FAST),
                 on_step=on_step)
    assert result.stop_reason == "interrupted" and torch.isfinite(result.image).all()


@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_read_every_must_be_a_positive_whole_number(value):
    with pytest.raises(ImpastoError, match="read every"):
        run(gradient_photo(), [stripes()], StyleSettings(read_every=value, **FAST))
