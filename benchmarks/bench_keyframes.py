"""Keyframed video against painting every frame, with the same method, side by side in one run.

Run from the repository root (after `make install`), with nothing else busy on the machine:

    .venv/bin/python benchmarks/bench_keyframes.py                         # optimize, 480 px, every 8
    .venv/bin/python benchmarks/bench_keyframes.py --frames 17 --size 256  # a quicker look

On ../shared/data/video/mountain_2 (a real camera clip) the optimisation method paints the clip
twice or more: every frame (the first frame a full still-image run, then --frame-iterations per
frame from the warped previous output with the temporal loss: Ruder et al.), and at keyframes every
--every frames carried along the optical flow (impasto.jobs.keyframes), for each --keyframe-iterations.  It reports the wall time of each, the
style distance and content error of every frame against the painting and the photo
(impasto.core.quality.score, mean over frames), and the warping error (impasto.core.flow.warping_error),
with the ratios keyframed / every frame; it writes a contact strip (rows: photo, every frame,
keyframed, the last setting) to --sheet.
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
    import numpy as np
    import torch
    from PIL import Image

    from impasto.core import flow, images, quality
    from impasto.jobs import keyframes, clip as video
    from impasto.core import clips
    from impasto import methods

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(DATA / "video" / "mountain_2"))
    parser.add_argument("--style", default=str(DATA / "style" / "starry_night.jpg"))
    parser.add_argument("--method", default="optimize")
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames (default: all)")
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=None, help="the first frame's iterations (method default)")
    parser.add_argument("--frame-iterations", type=int, default=30)
    parser.add_argument("--fill-iterations", type=int, default=10)
    parser.add_argument("--keyframe-iterations", default="60", help="a list to compare (default %(default)s)")
    parser.add_argument("--sheet", default=str(ROOT / "docs" / "keyframes-strip.jpg"))
    parser.add_argument("--reference", default=None, metavar="FOLDER",
                        help="the every-frame run's frames from an earlier run of this script (same settings), "
                             "instead of painting them again; give its time with --reference-seconds")
    parser.add_argument("--reference-seconds", type=float, default=None)
    parser.add_argument("--keyframe-weight", type=float, default=None,
                        help="the temporal loss's weight on keyframes (default: the method's)")
    parser.add_argument("--keep", default=None, metavar="FOLDER", help="keep every run's frames here (a folder each)")
    args = parser.parse_args()
    torch.manual_seed(0)

    method = methods.get(args.method)
    options = None
    if args.iterations is not None and method.options is not None:
        options = method.options(iterations=args.iterations)
    request = methods.Request(size=args.size, options=options)
    painter = method.prepare([args.style], request)
    temporal = methods.Temporal(iterations=args.frame_iterations)
    settings = clips.VideoSettings(size=args.size, end=args.frames)
    runs = {}
    names = ["every frame"] + [f"keyframed, {n} iterations" for n in args.keyframe_iterations.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            out = Path(folder) / name.replace(" ", "_").replace(",", "")
            began = time.perf_counter()
            if name == "every frame" and args.reference:
                runs[name] = {"seconds": args.reference_seconds, "frames": clips.read_clip(args.reference),
                              "keyframes": []}
                print(f"{name}: from {args.reference}, {args.reference_seconds:.0f} s", file=sys.stderr, flush=True)
                continue
            if name == "every frame":
                report = video.stylize_video(args.clip, out, painter.frames(temporal), settings)
            else:
                keyed = methods.Temporal(iterations=int(name.split()[1]), weight=args.keyframe_weight)
                fill = painter.frames(methods.Temporal(iterations=args.fill_iterations))
                report = keyframes.stylize_keyframed(args.clip, out, painter.frames(keyed), fill, settings,
                                                     keyframes.KeyframeSettings(every=args.every))
            seconds = time.perf_counter() - began
            runs[name] = {"seconds": seconds, "frames": clips.read_clip(out), "keyframes": report.keyframes}
            print(f"{name}: {report.frames} frames in {seconds:.0f} s", file=sys.stderr, flush=True)
            if args.keep:
                import shutil

                shutil.copytree(out, Path(args.keep) / out.name, dirs_exist_ok=True)
    photos = clips.read_clip(args.clip, runs["every frame"]["frames"][0].shape[:2])[:len(runs["every frame"]["frames"])]
    style = images.resize_max_side(images.read_image(args.style), args.size)  # scored at the frames' scale
    rows = []
    for name, run in runs.items():
        scores = [quality.score(images.pil_to_tensor(Image.fromarray(out)), images.pil_to_tensor(Image.fromarray(photo)),
                                style) for out, photo in zip(run["frames"], photos)]
        warping, pairs = flow.warping_error(photos, run["frames"])
        # where the error is: pairs that arrive at a keyframe (of the keyframed runs) against the rest
        arrivals = {index - settings.start for index in runs[names[-1]]["keyframes"]} - {0}
        at_keys = [error for t, error in enumerate(pairs, 1) if t in arrivals]
        between = [error for t, error in enumerate(pairs, 1) if t not in arrivals]
        rows.append({"run": name, "frames": len(run["frames"]), "keyframes": len(run["keyframes"]) or None,
                     "seconds": run["seconds"], "style": float(np.mean([s.style for s in scores])),
                     "content": float(np.mean([s.content for s in scores])), "warping_error": warping,
                     "warping_at_keyframes": float(np.mean(at_keys)) if at_keys else None,
                     "warping_between": float(np.mean(between)), "warping_pairs": pairs})
    base = rows[0]
    print(f"\n{args.method}, {args.size} px, {base['frames']} frames, keyframes every {args.every}; first frame "
          f"{args.iterations or 'default'} iterations, then {args.frame_iterations} a frame; fill "
          f"{args.fill_iterations}\n")
    print("| run | keyframes | time (s) | style distance | content error | warping error | arriving at a keyframe "
          "| other frames |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        at_keys = "-" if row["warping_at_keyframes"] is None else f"{row['warping_at_keyframes']:.5f}"
        print(f"| {row['run']} | {row['keyframes'] or '-'} | {row['seconds']:.0f} | {row['style']:.4f} "
              f"| {row['content']:.3f} | {row['warping_error']:.5f} | {at_keys} | {row['warping_between']:.5f} |")
    for row in rows[1:]:
        print(f"| {row['run']} / every frame | | {row['seconds'] / base['seconds']:.2f}x | "
              f"{row['style'] / base['style']:.2f}x | {row['content'] / base['content']:.2f}x | "
              f"{row['warping_error'] / base['warping_error']:.2f}x |")
    picks = np.linspace(0, base["frames"] - 1, 6).round().astype(int)
    strip = np.concatenate([np.concatenate([frames[i] for i in picks], axis=1)
                            for frames in (photos, runs["every frame"]["frames"], runs[names[-1]]["frames"])], axis=0)
    Image.fromarray(strip).save(args.sheet, quality=88)
    print(f"\nstrip: {args.sheet} (rows: photo, every frame, keyframed; frames {', '.join(map(str, picks))})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"keyframes-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
