"""The optimisation method with each L-BFGS: quality per second, side by side in one run.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_lbfgs.py                      # this machine's device, 384 px
    .venv/bin/python benchmarks/bench_lbfgs.py --device cuda --size 512

`lbfgs` is PyTorch's L-BFGS with a strong-Wolfe line search (impasto's default: the loss is read
back at every evaluation); `lbfgs-device` is impasto.lbfgs.DeviceLBFGS (one evaluation per
iteration, steps accepted on the device, the loss read every `--read-every` iterations).  Each
round runs both, in turn, in-process, with the default settings (pyramid levels, iterations) at
`--size`; `lbfgs-device` runs `--device-iterations` times the iterations, so that both do about
the same number of evaluations.  Reported per run: wall time, evaluations, final loss, and the time
`lbfgs-device` needed to reach the line search's final loss on the last level.
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


def one_run(optimizer: str, args: argparse.Namespace, iterations: int) -> dict:
    import torch

    from impasto.optimize import StyleSettings, run

    marks: list[tuple[float, int, float]] = []  # (seconds, level, total) at each read
    started = time.perf_counter()

    def on_step(progress) -> None:
        marks.append((time.perf_counter() - started, progress.level, progress.terms["total"]))

    settings = StyleSettings(size=args.size, iterations=iterations, optimizer=optimizer, device=args.device,
                             read_every=args.read_every if optimizer == "lbfgs-device" else None)
    result = run(args.content, [args.style], settings, on_step=on_step)
    if result.image.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"optimizer": optimizer, "seconds": seconds, "evaluations": result.evaluations,
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
    print_table(["optimizer", "round", "seconds", "evaluations", "final loss", "s to the line search's final loss"],
                [[r["optimizer"], r["round"], f"{r['seconds']:.1f}", r["evaluations"], f"{r['final']:.4g}",
                  "not reached" if r["to_wolfe_final"] is None else f"{r['to_wolfe_final']:.1f}"] for r in rows])
    for name in ("lbfgs", "lbfgs-device"):
        mine = [r for r in rows if r["optimizer"] == name]
        print(f"{name}: median {statistics.median(r['seconds'] for r in mine):.1f} s, "
              f"{statistics.median(r['seconds'] / r['evaluations'] for r in mine) * 1000:.0f} ms per evaluation")
    save_results("lbfgs", [{k: v for k, v in r.items() if k != "marks"} for r in rows])


if __name__ == "__main__":
    main()
