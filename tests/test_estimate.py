"""The cost model behind every estimate: fitted on recorded runs, a calibration as the first guess."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from impasto.jobs.estimate import Cost, Estimator, Work, fit, paintings_work, words


@dataclass
class FakeRun:
    method: str
    seconds: float
    width: int
    height: int
    settings: dict
    status: str = "done"
    created: float = field(default_factory=time.time)
    folder: Path = Path("nowhere")


def _run(method: str, seconds: float, side: int = 100, prepare: float = 0.0, iterations: int | None = None,
         device: str = "cpu", status: str = "done", stroke_scale: float | None = None, cold: bool = False) -> FakeRun:
    settings = {"method": method, "request": {"size": side, "stroke_scale": stroke_scale}, "options": None,
                "prepare_seconds": prepare, "device": device, "iterations": iterations or 1, "cold": cold}
    return FakeRun(method, seconds, side, side, settings, status)


class FakeHistory:
    def __init__(self, runs: list[FakeRun]) -> None:
        self.items = runs

    def runs(self, limit: int = 200) -> list[FakeRun]:
        return self.items[:limit]


def test_the_rate_leaves_out_the_preparation_and_an_odd_run():
    runs = [_run("optimize", 1 + 2.0, prepare=1.0, iterations=10), _run("optimize", 1 + 2.0, prepare=1.0, iterations=10),
            _run("optimize", 90.0, prepare=1.0, iterations=10)]
    cost = fit(runs, "optimize")
    assert cost.prepare == pytest.approx(1.0) and cost.rate == pytest.approx(2.0 / (100 * 100 * 10))
    # twice the pixels and twice the iterations: four times the painting, the same preparation
    assert cost.seconds(Work("optimize", 2 * 100 * 100, 20)) == pytest.approx(1 + 8.0)
    assert cost.runs == 3


def test_other_methods_devices_and_unfinished_runs_do_not_count():
    runs = [_run("adain", 50.0), _run("optimize", 9.0, device="cuda:0"), _run("optimize", 70.0, status="interrupted"),
            _run("optimize", 4.0)]
    cost = fit(runs, "optimize", "cpu")
    assert cost.rate == pytest.approx(4.0 / (100 * 100)) and cost.runs == 1
    assert fit(runs, "neighbours") is None
    assert fit(runs, "optimize", "cuda:0").rate == pytest.approx(9.0 / (100 * 100))


def test_a_first_painting_in_a_process_is_priced_from_first_paintings_where_there_are_some():
    runs = [_run("adain", 1.0), _run("adain", 5.0, cold=True), _run("adain", 1.0)]
    assert fit(runs, "adain", cold=False).rate == pytest.approx(1.0 / 100 ** 2)
    assert fit(runs, "adain", cold=True).rate == pytest.approx(5.0 / 100 ** 2)
    assert fit(runs[:1], "adain", cold=True).rate == pytest.approx(1.0 / 100 ** 2)  # none cold: the others


def test_a_repeat_priced_from_a_first_painting_alone_leaves_out_that_paintings_set_up():
    """After one run (the process's first of its size), the same work again keeps its model and the
    paintings' codes: the estimate is the painting alone, not the set-up as well."""
    first = _run("arbitrary", 0.25, prepare=0.1, cold=True)
    again = fit([first], "arbitrary", cold=False)
    assert again.prepare == 0.0 and again.rate == pytest.approx(0.15 / 100 ** 2)
    assert fit([first], "arbitrary", cold=True).prepare == pytest.approx(0.1)
    assert fit([_run("arbitrary", 0.12, prepare=0.02), first], "arbitrary", cold=False).prepare == pytest.approx(0.02)


def test_the_upsampling_of_a_repeat_is_learnt_from_repeats_where_there_are_some():
    small = _run("adain", 0.512 * 0.512, side=512)  # 1 s per million painted pixels
    first_big = _run("adain", 0.512 * 0.512 + 8.0, side=2000, cold=True)  # 2 s per million output pixels
    big_again = _run("adain", 0.512 * 0.512 + 4.0, side=2000)  # 1 s per million
    estimator = Estimator(FakeHistory([big_again, first_big, small]))
    cold = paintings_work("adain", [(2000, 2000)])  # this process has not painted the size
    warm = dataclasses.replace(cold, cold=False)
    assert estimator.seconds(warm)[0] == pytest.approx(0.512 * 0.512 + 4.0, rel=1e-3)
    assert estimator.seconds(cold)[0] == pytest.approx(0.512 * 0.512 + 8.0, rel=1e-3)
    only_first = Estimator(FakeHistory([first_big, small]))
    assert only_first.seconds(warm)[0] == pytest.approx(0.512 * 0.512 + 8.0, rel=1e-3)  # none warm: the first
    # only ever brought up: the upsampling's share (here calibrated) taken off, so a size is priced as it is
    never_small = Estimator(FakeHistory([first_big]), calibrate_upsampling=lambda d: 1e-6)
    assert never_small.seconds(cold)[0] == pytest.approx(0.512 * 0.512 + 8.0, rel=1e-3)
    assert never_small.seconds(paintings_work("adain", [(512, 512)]))[0] == pytest.approx(0.512 * 0.512 + 4.0, rel=1e-3)
    bigger = never_small.seconds(paintings_work("adain", [(4000, 4000)]))[0]
    assert bigger == pytest.approx(0.512 * 0.512 + 4.0 + 16.0, rel=1e-3)


def test_a_job_counts_the_paintings_codes_as_its_preparation(monkeypatch, tmp_path):
    """The any-painting methods make a painting's code at its first photo; the job makes it before
    painting and records it as preparation, so that a repeat (the code kept) is not priced with it."""
    import torch

    from impasto.core import images
    from impasto.core.errors import ImpastoError
    from impasto.jobs.image_job import ImageJob
    from impasto.methods import Request
    from impasto.methods.style_codes import StyleCodePainter, forget_codes

    forget_codes()
    events = []
    real_code, real_paint = StyleCodePainter._code, StyleCodePainter.paint
    monkeypatch.setattr(StyleCodePainter, "_code", lambda self, *a: events.append("code") or real_code(self, *a))
    monkeypatch.setattr(StyleCodePainter, "paint",
                        lambda self, *a, **k: events.append("paint") or real_paint(self, *a, **k))
    style = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    photo = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(2))
    report = ImageJob([photo], [style], method="adain", request=Request(size=None)).run()
    assert events == ["code", "paint"]  # made before the painting began
    assert 0 < report.prepare_seconds <= report.seconds

    events.clear()  # a photo that cannot be read, or one past the pixel limit: no code made before the message
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    big = tmp_path / "big.png"
    images.save_image(torch.rand(1, 3, 300, 700), big)
    for source, request in ((broken, Request(size=None)), (big, Request(size=100, max_pixels=100_000))):
        with pytest.raises(ImpastoError):
            ImageJob([source], [style], method="adain", request=request).run()
    assert "code" not in events


def test_a_one_pass_method_paints_a_large_photo_at_its_working_size_then_brings_it_up():
    work = paintings_work("adain", [(3000, 4000)])
    assert work.pixels == 384 * 512 and work.output_pixels == 3000 * 4000 and work.iterations == 1
    small = paintings_work("adain", [(300, 400)])
    assert small.pixels == 300 * 400 and small.output_pixels == 0
    coarse = paintings_work("adain", [(300, 400)], stroke_scale=2.0)  # strokes twice as large: painted at 256
    assert coarse.pixels == 192 * 256 and coarse.output_pixels == 300 * 400
    assert paintings_work("optimize", [(300, 400)], 30).pixels == 300 * 400


def test_the_upsampling_is_learnt_from_runs_that_brought_a_painting_up():
    small = _run("adain", 1.0 + 0.512 * 0.512, side=512, prepare=1.0)  # 1 s per million painted pixels
    big = _run("adain", 1.0 + 0.512 * 0.512 + 4.0, side=2000, prepare=1.0)  # + 1 s per million output pixels
    history = FakeHistory([big, small])
    estimator = Estimator(history, calibrate=lambda m, d: pytest.fail("no calibration with history"),
                          calibrate_upsampling=lambda d: pytest.fail("no calibration with history"))
    seconds, guessed = estimator.seconds(paintings_work("adain", [(3000, 4000)]))
    assert not guessed and seconds == pytest.approx(1.0 + 0.512 * 0.384 + 12.0, rel=1e-3)


def test_without_history_the_first_guess_is_calibrated_once_and_said_to_be_one():
    calls = []

    def calibrate(method: str, device: str) -> Cost:
        calls.append(method)
        return Cost(0.5, 1e-6)

    estimator = Estimator(FakeHistory([]), calibrate=calibrate, calibrate_upsampling=lambda d: 1e-7)
    assert estimator.seconds(Work("adain", 1_000_000), guess=False) is None
    for _ in range(3):
        seconds, guessed = estimator.seconds(Work("adain", 1_000_000))
    assert calls == ["adain"] and guessed and seconds == pytest.approx(1.5)
    assert estimator.seconds(Work("adain", 1_000_000, output_pixels=10_000_000))[0] == pytest.approx(2.5)


def test_a_recorded_job_is_read_back_as_the_work_it_did(tmp_path):
    """The history's runs, as ImageJob.record keeps them, are what the model fits."""
    import torch

    from impasto.jobs.history import History
    from impasto.jobs.image_job import ImageJob, ImageReport
    from impasto.methods import Request, Result

    history = History(tmp_path)
    photo = torch.zeros(1, 3, 60, 80)
    job = ImageJob([photo], [torch.zeros(1, 3, 32, 32)], method="adain", request=Request(size=80))
    report = ImageReport("adain", 1, result=Result(torch.zeros(1, 3, 60, 80), 1, 1, {}, "done", 0.5), seconds=0.7,
                         prepare_seconds=0.2)
    job.record(report, history)
    cost = fit(history.runs(), "adain", str(job.settings(report)["device"]))
    assert cost.prepare == pytest.approx(0.2) and cost.rate == pytest.approx(0.5 / (60 * 80))


@pytest.mark.slow
def test_the_calibration_paints_for_a_few_seconds_and_guesses_a_positive_rate():
    from impasto.jobs.estimate import calibration

    started = time.perf_counter()
    cost = calibration("arbitrary")
    assert cost.rate > 0 and cost.runs == 0 and time.perf_counter() - started < 60


def test_times_in_words():
    assert words(0.4) == "under a second" and words(12.3) == "about 12 s" and words(600) == "about 10 min"
    assert "first guess" in words(5, guessed=True)


def test_a_recorded_clip_does_not_count_as_one_picture():
    """A clip's time is its frames' and its flow's: the picture cost model leaves it out."""
    from types import SimpleNamespace

    from impasto.jobs.estimate import run_work

    clip = SimpleNamespace(status="done", seconds=30.0, method="adain", width=64, height=48,
                           settings={"kind": "clip", "request": {"size": 64}, "frames": 48})
    picture = SimpleNamespace(**{**vars(clip), "settings": {"request": {"size": 64}}})
    assert run_work(clip) is None and run_work(picture) is not None
