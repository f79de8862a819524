"""The optimisation method with each L-BFGS: quality per second, side by side in one run.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_lbfgs.py                      # this machine's device, 384 px
    .venv/bin/python benchmarks/bench_lbfgs.py --device cuda --size 512

`lbfgs` is PyTorch's L-BFGS with a strong-Wolfe line search (impasto's default: the loss is read
back at every evaluation); `lbfgs-device` is impasto.engines.lbfgs.DeviceLBFGS (one evaluation per
iteration, steps accepted on the device, the loss read every `--read-every` iterations).  Each
round runs both, in turn, in-process, with the default settings (pyramid levels, iterations) at
`--size`; `lbfgs-device` runs `--device-iterations` times the iterations, so that both do about
the same number of evaluations.  Reported per run: wall time, evaluations, achieved TFLOP/s (each
level's evaluations times one evaluation's FLOPs at its size, counted by PyTorch, over the wall
time), final loss, and the time `lbfgs-device` needed to reach the line search's final loss on the
last level.
Images: tubingen and starry_night from the project's test data (../shared/data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from report import print_table, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def evaluation_flops(settings, height: int, width: int) -> float:
    """FLOPs of one evaluation (forward + the pixels' backward) at one level's size, counted by PyTorch."""
    import functools

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from impasto.engines import optimize
    from impasto.core.runtime import autocast, get_backbone, resolve_device, resolve_precision

    device = resolve_device(settings.device)
    layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
    model = get_backbone(settings.backbone, settings.backbone_weights, settings.pooling, layers, device)
    cast = functools.partial(autocast, device, resolve_precision(settings.precision, device))
    image = torch.rand(1, 3, height, width, device=device)
    objective = optimize.build_objective(model, image, [image], settings, cast)
    pixels = image.clone().requires_grad_(True)
    counter = FlopCounterMode(display=False)
    with counter:
        optimize.Evaluator(model, objective, pixels, cast)()
    return float(counter.get_total_flops())


def one_run(optimizer: str, args: argparse.Namespace, iterations: int) -> dict:
    import torch

    from impasto.core import images
    from impasto.engines.optimize import StyleSettings, pyramid_plan, run

    marks: list[tuple[float, int, float]] = []  # (seconds, level, total) at each read
    evaluations: dict[int, int] = {}  # evaluations done by the end of each level
    started = time.perf_counter()

    def on_step(progress) -> None:
        marks.append((time.perf_counter() - started, progress.level, progress.terms["total"]))
        evaluations[progress.level] = progress.evaluations

    settings = StyleSettings(size=args.size, iterations=iterations, optimizer=optimizer, device=args.device,
                             read_every=args.read_every if optimizer == "lbfgs-device" else None)
    result = run(args.content, [args.style], settings, on_step=on_step)
    if result.image.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    height, width = images.read_image(args.content).shape[-2:]
    flops, before = 0.0, 0
    for level, (size, _) in enumerate(pyramid_plan(args.size, iterations, None, settings.pyramid_min), start=1):
        if level in evaluations:
            flops += (evaluations[level] - before) * evaluation_flops(settings, *images.scaled_size(height, width, size))
            before = evaluations[level]
    return {"optimizer": optimizer, "seconds": seconds, "evaluations": result.evaluations, "tflops": flops / seconds / 1e12,
            "iterations": result.iterations, "final": result.terms["total"], "marks": marks,
            "levels": max(level for _, level, _ in marks)}


def time_to_reach(marks: list[tuple[float, int, float]], target: float, last_level: int) -> float | None:
    return next((seconds for seconds, level, total in marks if level == last_level and total <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=50, help="the line search's -n (the default settings')")
    parser.add_argument("--device-iterations", type=float, default=1.3,
                        help="lbfgs-device's -n as a multiple of --iterations (it does one evaluation per iteration)")
    parser.add_argument("--read-every", type=int, default=None, help="lbfgs-device (default: 1 on CPUs, 10 on GPUs)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--content", type=Path, default=DATA / "content" / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=DATA / "style" / "starry_night.jpg")
    args = parser.parse_args()

    rows = []
    for round_ in range(args.rounds):
        wolfe = one_run("lbfgs", args, args.iterations)
        device = one_run("lbfgs-device", args, round(args.iterations * args.device_iterations))
        reached = time_to_reach(device["marks"], wolfe["final"], device["levels"])
        for row in (wolfe, device):
            row["round"] = round_ + 1
            row["to_wolfe_final"] = reached if row is device else row["seconds"]
            print({k: v for k, v in row.items() if k != "marks"}, file=sys.stderr)
            rows.append(row)

    print()
    print_table(["optimizer", "round", "seconds", "evaluations", "TFLOP/s", "final loss",
                 "s to the line search's final loss"],
                [[r["optimizer"], r["round"], f"{r['seconds']:.1f}", r["evaluations"], f"{r['tflops']:.3f}", f"{r['final']:.4g}",
                  "not reached" if r["to_wolfe_final"] is None else f"{r['to_wolfe_final']:.1f}"] for r in rows])
    for name in ("lbfgs", "lbfgs-device"):
        mine = [r for r in rows if r["optimizer"] == name]
        print(f"{name}: median {statistics.median(r['seconds'] for r in mine):.1f} s, "
              f"{statistics.median(r['seconds'] / r['evaluations'] for r in mine) * 1000:.0f} ms per evaluation")
    save_results("lbfgs", [{k: v for k, v in r.items() if k != "marks"} for r in rows])


if __name__ == "__main__":
    main()
