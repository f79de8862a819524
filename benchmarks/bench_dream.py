"""DeepDream's time against its arithmetic floor, measured side by side in one run.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_dream.py                  # 1024 px, 4 octaves x 10 iterations
    .venv/bin/python benchmarks/bench_dream.py --size 512 --device cuda

The dream is timed in this process (the backbone loaded before the clock starts); the floor is the
same work done bare -- one forward+backward of VGG-19 up to the dreamt layer at each octave's size,
as many times as the dream iterates, same precision and threads -- so the ratio is what impasto's
loop costs on top of the network (jitter, normalisation, resizing, progress).  The photo is
scikit-image's coffee.png scaled to --size.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from impasto.core import images, runtime
from impasto.engines.dream import DreamSettings, Dreamer, octave_sizes
from impasto.core.samples import sample_photo_path

RESULTS = Path(__file__).resolve().parent / "results"


def floor_seconds(dreamer: Dreamer, sizes: list[tuple[int, int]], iterations: int) -> float:
    """Bare forward+backward passes of the backbone at each octave's size."""
    total = 0.0
    for h, w in sizes:
        pixels = torch.rand(1, 3, h, w, device=dreamer.device, requires_grad=True)
        dreamer.objective(pixels).backward()  # warm-up at this size
        began = time.perf_counter()
        for _ in range(iterations):
            pixels.grad = None
            dreamer.objective(pixels).backward()
        if dreamer.device.type == "cuda":
            torch.cuda.synchronize()
        total += time.perf_counter() - began
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--octaves", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    settings = DreamSettings(octaves=args.octaves, iterations=args.iterations)
    dreamer = Dreamer(settings, device=args.device)
    photo = images.resize_max_side(images.read_image(sample_photo_path("coffee.png")), args.size)
    dreamer.dream(images.resize_max_side(photo, 96))  # warm-up: kernels, allocator
    began = time.perf_counter()
    result = dreamer.dream(photo)
    dream_s = time.perf_counter() - began
    sizes = octave_sizes(*photo.shape[-2:], settings.octaves, settings.octave_scale)
    bare_s = floor_seconds(dreamer, sizes, settings.iterations)
    precision = str(runtime.resolve_precision("auto", dreamer.device)).replace("torch.", "") or "fp32"
    row = {"size": list(photo.shape[-2:]), "octaves": len(sizes), "iterations": result.iterations,
           "device": str(dreamer.device), "precision": precision, "threads": torch.get_num_threads(),
           "dream_s": round(dream_s, 2), "floor_s": round(bare_s, 2), "ratio": round(dream_s / bare_s, 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"dream_{dreamer.device.type}_{args.size}.json").write_text(json.dumps(row, indent=1) + "\n")
    print("| size | octaves x iterations | device, precision | dream | bare VGG fwd+bwd | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {photo.shape[-1]}x{photo.shape[-2]} | {len(sizes)} x {settings.iterations} | {dreamer.device}, "
          f"{precision}, {torch.get_num_threads()} threads | {dream_s:.1f} s | {bare_s:.1f} s | {dream_s / bare_s:.2f}x |")


if __name__ == "__main__":
    main()
