"""Benchmark of video stylization: temporal consistency (warping error) and frames per second.

Run from the repository root (after `make install`), with nothing else busy on the machine:

    .venv/bin/python benchmarks/bench_video.py                     # all three methods
    .venv/bin/python benchmarks/bench_video.py --methods fast,adain
    .venv/bin/python benchmarks/bench_video.py --methods fast --batch 1,8 --device cuda   # frames per network call

On ../shared/data/video/mountain_2 (47 frames of a real camera clip), each method runs twice, once
stylizing every frame on its own (`--independent`) and once with temporal coherence (the default),
and `impasto.jobs.clip.score_video` measures the warping error of both against the original clip's
optical flow.  The feed-forward methods run at 480 px (long side), the optimisation method at
--optimize-size (it costs seconds per frame on a CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    from impasto import methods
    from impasto.jobs import clip as video
    from impasto.core import clips
    from impasto.core.modelfile import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="fast,adain,optimize")
    parser.add_argument("--model", default="mosaic", help="feed-forward model (default %(default)s)")
    parser.add_argument("--style", default=str(DATA / "style" / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--optimize-size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument("--batch", default="1", help="one-pass methods: frames per network call, a list to compare")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    clip = DATA / "video" / "mountain_2"
    rows = []
    for method in args.methods.split(","):
        chosen = methods.get(method)
        size = args.size if chosen.one_pass else args.optimize_size
        batches = [int(b) for b in args.batch.split(",")] if chosen.one_pass else [None]
        for coherent, batch in ((coherent, batch) for coherent in (False, True) for batch in batches):
            model = resolve_model(args.model) if chosen.model_required else None
            styles = [args.style] if chosen.uses_styles else []
            request = methods.Request(size=size, model=model, batch=batch, device=args.device)
            stylizer = chosen.prepare(styles, request).frames(methods.Temporal())
            with tempfile.TemporaryDirectory() as folder:
                out = Path(folder) / "frames"
                began = time.perf_counter()
                report = video.stylize_video(clip, out, stylizer,
                                             clips.VideoSettings(size=size, coherent=coherent, end=args.frames))
                seconds = time.perf_counter() - began
                error, _ = video.score_video(clip, out)
            row = {"method": method, "mode": "coherent" if coherent else "independent", "size": size, "batch": batch,
                   "frames": report.frames, "seconds": seconds, "fps": report.frames / seconds, "warping_error": error}
            rows.append(row)
            print(row, file=sys.stderr)
    print("\n| method | size | mode | frames per call | warping error | frames/s |\n| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['method']} | {row['size']} | {row['mode']} | {row['batch'] or '-'} | {row['warping_error']:.5f} "
              f"| {row['fps']:.2f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"video-{stamp}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
