"""Feed-forward inference compiled for this machine (`--compile`) beside the eager network, in one run.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_compile.py                  # mosaic, 512 and 1024 px
    .venv/bin/python benchmarks/bench_compile.py --device cuda

Both engines load the shipped model the way `impasto stylize --model` does (bf16 autocast where the
hardware has it, channels-last); the compiled one is `torch.compile` (inductor) of the same
network, made once per image size (its cost is printed).  Timing: the two in turn, --rounds times
after a warm-up, the median per engine; "break-even" is how many images of one size repay the
compile time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    from impasto.networks import adain, fast
    from impasto.core import images
    from impasto.core.modelfile import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mosaic")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    path = resolve_model(args.model)
    photo = images.read_image(DATA / "content" / "tubingen.jpg")
    style = images.resize_max_side(images.read_image(DATA / "style" / "starry_night.jpg"), 512)
    rows = []
    for engine_name in (args.model, "adain"):
        if engine_name == "adain":
            eager_adain, compiled_adain = adain.AdaIN(device=args.device), adain.AdaIN(device=args.device, compile=True)
            code = eager_adain.style_code(style)
            engines = [(lambda image: eager_adain.stylize(image, [code])),
                       (lambda image: compiled_adain.stylize(image, [code]))]
            device = eager_adain.device
        else:
            eager_fast, compiled_fast = fast.FastModel(path, args.device), fast.FastModel(path, args.device, compile=True)
            engines = [eager_fast.stylize, compiled_fast.stylize]
            device = eager_fast.device
        rows += measure(engine_name, engines, device, photo, args)
    print(f"| {device}, {torch.get_num_threads()} threads, bf16 autocast where the hardware has it | eager | "
          "compiled | ratio | compile once | break-even | mean abs difference |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        h, w = row["size"]
        print(f"| {row['engine']} {w}x{h} | {row['eager_ms']:.1f} ms | {row['compiled_ms']:.1f} ms | {row['ratio']:.2f}x | "
              f"{row['compile_s']:.1f} s | {row['break_even']:.0f} images | {row['mean_abs_difference']:.4f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compile.json").write_text(json.dumps(rows, indent=1) + "\n")


def measure(name: str, engines: list, device, photo, args) -> list[dict]:
    """(eager, compiled) stylize functions, in turn, at each size."""
    from impasto.core import images

    eager, compiled = engines
    rows = []
    for size in args.sizes:
        image = images.resize_max_side(photo, size)
        began = time.perf_counter()
        compiled(image)
        compile_s = time.perf_counter() - began
        eager(image)
        times = {"eager": [], "compiled": []}
        for _ in range(args.rounds):
            for label, engine in (("eager", eager), ("compiled", compiled)):
                began = time.perf_counter()
                engine(image)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[label].append(time.perf_counter() - began)
        e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
        difference = float((compiled(image) - eager(image)).abs().mean())
        rows.append({"engine": name, "size": list(image.shape[-2:]), "eager_ms": 1000 * e, "compiled_ms": 1000 * c,
                     "ratio": c / e, "compile_s": compile_s, "break_even": compile_s / max(e - c, 1e-9),
                     "mean_abs_difference": difference})
    return rows


if __name__ == "__main__":
    main()
