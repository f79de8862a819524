"""Training speed: steps per second and achieved TFLOP/s of one training step, per method.

Run from the repository root (after `make install`), with nothing else busy on the machine:

    .venv/bin/python benchmarks/bench_training.py                         # this machine's device
    .venv/bin/python benchmarks/bench_training.py --device cuda --crop 256 --batch-size 8 --width 1.0

Each case runs the real training loop (`impasto.networks.training.train`: device-resident data, losses read
back every `--log-every` steps, bf16/fp16 autocast where the device has it) for warm-up steps, then
times `--steps` more.  FLOPs are counted once per case with PyTorch's FLOP counter over one
forward + backward step (convolutions and matrix products), so TFLOP/s = FLOPs per step x steps/s.
Photos: the training photos under ../shared/data/train/content; styles: its train/style paintings.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from report import print_table, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def make_task(method: str, crop: int, width: float, shift_weight: float | None = None,
              shift_share: float | None = None):
    from impasto.networks import adain_training
    from impasto.networks import fast_training
    from impasto.core import images
    from impasto.networks.training import ImageFolder

    photos = ImageFolder(DATA / "train" / "content", crop, 2 * crop, what="content photos")
    # only the settings given: impasto 0.2's tasks (also timed by this script) had no shift term
    shift = {name: value for name, value in (("shift_weight", shift_weight), ("shift_share", shift_share))
             if value is not None}
    if method == "adain":
        paintings = ImageFolder(DATA / "train" / "style", crop, 2 * crop, what="style images")
        return adain_training.AdainTask(photos, paintings, **shift)
    style = images.resize_max_side(images.read_image(DATA / "train" / "style" / "mosaic.jpg"), 2 * crop)
    return fast_training.FastTask(photos, [style], ["mosaic"], width=width, **shift)


def flops_per_step(task, batch_size: int, device: torch.device, dtype: torch.dtype | None) -> float:
    if hasattr(task, "setup"):  # (impasto 0.2's tasks had none: this script also times that version)
        task.setup(device, dtype)
    counter = FlopCounterMode(display=False)
    with counter:
        losses = task.losses(task.network, batch_size, random.Random(0), device, dtype)
        losses["total"].backward()
    task.network.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def measure(method: str, args: argparse.Namespace) -> dict:
    from impasto.core.runtime import resolve_device, resolve_precision
    from impasto.networks.training import TrainSettings, train

    device = resolve_device(args.device)
    dtype = resolve_precision(args.precision, device)
    flops = flops_per_step(make_task(method, args.crop, args.width, args.shift_weight, args.shift_share),
                           args.batch_size, device, dtype)
    task = make_task(method, args.crop, args.width, args.shift_weight, args.shift_share)
    marks: dict[int, float] = {}

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        marks[step] = time.perf_counter()

    total = args.warmup + args.steps
    settings = {"steps": total, "batch_size": args.batch_size, "device": args.device, "precision": args.precision,
                "checkpoint_every": total, "log_every": args.log_every, "compile": args.compile}
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    with tempfile.TemporaryDirectory() as folder:
        train(task, TrainSettings(**{k: v for k, v in settings.items() if k in known}), Path(folder) / "m.pt",
              progress=progress)
    first = min(step for step in marks if step >= args.warmup)  # needs a progress call at every step or so
    last = max(marks)
    seconds = marks[last] - marks[first]
    steps_per_s = (last - first) / seconds
    row = {"method": method, "device": str(device), "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
           "crop": args.crop, "batch": args.batch_size, "width": args.width if method == "fast" else None,
           "compile": args.compile, "shift_weight": getattr(task, "shift_weight", None),
           "shift_share": getattr(task, "shift_share", None),
           "steps_per_s": steps_per_s, "ms_per_step": 1000 / steps_per_s, "gflop_per_step": flops / 1e9,
           "tflops": flops * steps_per_s / 1e12}
    print(row, file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", choices=("fast", "adain"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--log-every", type=int, default=0, help="0: the loop's default (1 on CPUs, 10 elsewhere)")
    parser.add_argument("--shift-weight", type=float, default=None,
                        help="the shift-consistency weight (default: the method's; 0: without the term)")
    parser.add_argument("--shift-share", type=float, default=None,
                        help="share of the batch the shift pass paints again (default: the method's)")
    parser.add_argument("--compile", default=None, metavar="BACKEND",
                        help="torch.compile the network (inductor); the warm-up steps absorb the compilation")
    args = parser.parse_args()
    rows = [measure(method, args) for method in (args.method or ["fast", "adain"])]
    print()
    print_table(["method", "device", "precision", "compile", "crop", "batch", "ms / step", "steps/s", "GFLOP / step", "TFLOP/s"],
                [[r["method"] + (f" (width {r['width']}" + (f", shift {r['shift_weight']:g}"
                                                                   f" on {r['shift_share']:g} of the batch)"
                                                                   if r.get("shift_weight") else ")")
                                 if r["width"] else (f" (shift {r['shift_weight']:g} on {r['shift_share']:g})"
                                                     if r.get("shift_weight") else "")), r["device"], r["precision"],
                  r["compile"] or "no", r["crop"], r["batch"], f"{r['ms_per_step']:.0f}", f"{r['steps_per_s']:.2f}",
                  f"{r['gflop_per_step']:.1f}", f"{r['tflops']:.3f}"] for r in rows])
    save_results("training", rows)


if __name__ == "__main__":
    main()
