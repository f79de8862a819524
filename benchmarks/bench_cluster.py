"""A local Ray cluster beside one machine: folder throughput with 1 and 2 workers, and the seams of
a clip stylized in chunks, measured in one run.

Run from the repository root (after `make install` with the cluster extra):

    .venv/bin/python benchmarks/bench_cluster.py                 # about 4 minutes on a 2-core CPU
    .venv/bin/python benchmarks/bench_cluster.py --skip-video    # the folder part only
    .venv/bin/python benchmarks/bench_cluster.py --skip-folder --keyframes 8   # the clip at keyframes

Folder: 16 training photos at --size with the shipped `mosaic` model; one machine (the CLI's own
loop, 2 threads) against `--cluster` with 1 and 2 workers (each its share of the cores); the time
counts painting and writing only (Ray's start-up and the workers' model loading are printed
apart).  The outputs are compared byte for byte.  Clip: the first --frames frames of mountain_2,
--video-method (the optimisation method by default) at --video-size, coherent, on one machine and
in chunks of --chunk with --overlap cross-faded frames on 2 workers; warping error of both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    from impasto.jobs import cluster, clip as video
    from impasto import methods
    from impasto.cli import main as impasto
    from impasto.core.modelfile import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--video-method", default="optimize")
    parser.add_argument("--video-size", type=int, default=96)
    parser.add_argument("--chunk", type=int, default=24)
    parser.add_argument("--overlap", type=int, default=8)
    parser.add_argument("--keyframes", default=None, metavar="N|auto",
                        help="the clip at keyframes (both runs; the chunks rounded to whole keyframe gaps)")
    parser.add_argument("--skip-folder", action="store_true")
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args()
    rows: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        photos = scratch / "photos"
        photos.mkdir()
        for path in sorted((DATA / "train" / "content").glob("*.jpg"))[:args.images]:
            shutil.copy(path, photos / path.name)
        model = resolve_model("mosaic")
        began = time.perf_counter()
        assert args.skip_folder or impasto(["stylize", "--model", str(model), str(photos), "-o", str(scratch / "one"), "-s",
                        str(args.size), "-q"]) == 0
        rows["one machine"] = time.perf_counter() - began
        began = time.perf_counter()
        cluster.start(cpus=2)
        rows["ray start"] = time.perf_counter() - began
        request = methods.Request(size=args.size, model=model, device="cpu")
        for count in () if args.skip_folder else (1, 2):
            began = time.perf_counter()
            actors = cluster.workers("fast", [], request, count)
            import ray

            ray.get([actor.pid.remote() for actor in actors])  # ready: model loaded
            rows[f"{count} worker(s) start"] = time.perf_counter() - began
            out = scratch / f"cluster{count}"
            out.mkdir()
            began = time.perf_counter()
            cluster.paint_folder(actors, [(p, out / (p.stem + ".jpg")) for p in sorted(photos.iterdir())],
                                 lambda source, error: None)
            rows[f"{count} worker(s)"] = time.perf_counter() - began
            same = all((scratch / "one" / p.name).read_bytes() == p.read_bytes() for p in out.iterdir())
            rows[f"{count} worker(s) identical"] = same and len(list(out.iterdir())) == args.images
            for actor in actors:
                ray.kill(actor)
        if not args.skip_folder:
            print(f"| folder of {args.images} photos, mosaic, {args.size} px | seconds | images/s |")
            print("| --- | --- | --- |")
            for label in ("one machine", "1 worker(s)", "2 worker(s)"):
                print(f"| {label} | {rows[label]:.2f} | {args.images / rows[label]:.1f} |")
            print(f"\nRay start {rows['ray start']:.1f} s; workers ready in {rows['1 worker(s) start']:.1f} s (1) "
                  f"and {rows['2 worker(s) start']:.1f} s (2); byte-identical to one machine: "
                  f"{rows['1 worker(s) identical']} / {rows['2 worker(s) identical']}")
        if not args.skip_video:
            clip = scratch / "clip"
            clip.mkdir()
            for path in sorted((DATA / "video" / "mountain_2").iterdir())[:args.frames]:
                shutil.copy(path, clip / path.name)
            common = ["video", str(clip), "--method", args.video_method, "--style",
                      str(DATA / "style" / "starry_night.jpg"), "-s", str(args.video_size), "-q"]
            if args.keyframes:
                common += ["--keyframes", args.keyframes]
            began = time.perf_counter()
            assert impasto([*common, "-o", str(scratch / "v1")]) == 0
            rows["clip one machine"] = time.perf_counter() - began
            began = time.perf_counter()
            assert impasto([*common, "-o", str(scratch / "v2"), "--cluster", "--workers", "2", "--chunk",
                            str(args.chunk), "--overlap", str(args.overlap)]) == 0
            rows["clip 2 workers"] = time.perf_counter() - began
            single, single_pairs = video.score_video(clip, scratch / "v1")
            chunked, chunked_pairs = video.score_video(clip, scratch / "v2")
            rows["warping one machine"], rows["warping chunks"] = single, chunked
            rows["worst step one machine"], rows["worst step chunks"] = max(single_pairs), max(chunked_pairs)
            keyed = f", keyframes {args.keyframes}" if args.keyframes else ""
            print(f"\n| clip: {args.frames} frames, {args.video_method}, {args.video_size} px{keyed} | time "
                  "| warping error | worst frame pair |")
            print("| --- | --- | --- | --- |")
            print(f"| one machine, coherent | {rows['clip one machine']:.0f} s | {single:.5f} | "
                  f"{max(single_pairs):.5f} |")
            print(f"| 2 workers, chunks of {args.chunk} + {args.overlap} cross-faded | {rows['clip 2 workers']:.0f} s "
                  f"| {chunked:.5f} ({chunked / single:.2f}x) | {max(chunked_pairs):.5f} |")
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cluster.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
