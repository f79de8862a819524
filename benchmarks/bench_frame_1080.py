"""One 1920x1080 frame painted by each one-pass method at the default stroke scale, code cached.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_frame_1080.py                  # arbitrary, a fast model, AdaIN
    .venv/bin/python benchmarks/bench_frame_1080.py --calls 9

The photo (``../shared/data/content/tubingen.jpg`` beside the project, or the bundled sample) is
cut to 16:9 and brought to 1920x1080; each method is prepared once for ``starry_night`` (a fast
model paints its own painting), called twice to warm up, then timed over ``--calls`` calls; the
median and the fastest are printed, with the working size and the guided upsampling inside them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "content" / "tubingen.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--model", default="candy", help="the fast model (a shipped name or a file)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from impasto import methods
    from impasto.core import images
    from impasto.core.modelfile import resolve_model
    from impasto.core.samples import paintings, sample_photo_path

    photo = images.read_image(PHOTO if PHOTO.exists() else sample_photo_path("chelsea.png"))
    height, width = photo.shape[-2:]
    cut_height = min(height, round(width * 9 / 16))
    top = (height - cut_height) // 2
    frame = images.resize(photo[..., top:top + cut_height, :], (1080, 1920))
    painting = images.read_image(paintings()["starry_night"])
    torch.set_grad_enabled(False)
    for name in ("arbitrary", args.model, "adain"):
        method = methods.get("fast" if name == args.model else name)
        request = methods.Request(size=None, model=resolve_model(name) if method.model_required else None)
        painter = method.prepare([] if method.model_required else [painting], request)
        for _ in range(2):
            painter.paint(frame)
        times = []
        for _ in range(args.calls):
            began = time.perf_counter()
            painter.paint(frame)
            times.append(time.perf_counter() - began)
        print(f"{name}: median {statistics.median(times):.3f} s, fastest {min(times):.3f} s a 1920x1080 frame "
              f"({args.calls} calls)", flush=True)


if __name__ == "__main__":
    main()
