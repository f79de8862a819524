"""An int8 file against its float model, as a user runs them: the whole `impasto stylize --model`
command, start-up included, for one photo and for a folder of photos.

Run from the repository root (after `make install`), with nothing else busy on the machine:

    .venv/bin/python benchmarks/bench_int8.py PHOTOS_DIR                   # mosaic, 512 px, 1 and 6 photos
    .venv/bin/python benchmarks/bench_int8.py PHOTOS_DIR --int8 mosaic-int8.pt --rounds 9

PHOTOS_DIR: a folder of photos (the first --count are painted; the test data's content/ folder).
Without --int8 the float model is compressed first (`impasto compress --int8`, calibrated on
--calibration, by default PHOTOS_DIR), into a temporary folder: the file then holds this machine's
own choice.  Each round runs the float model's command and the int8 file's, for one photo and then
for the folder, in fresh processes, the order of the two swapped every round; a warm-up round is
not counted.  The ratio is the int8 command's time over the float command's in the same round
(median over rounds).  Outputs go to a temporary folder.  Prints this machine's row of the per-CPU
table and writes JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import print_table, save_results

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "?"


def stylize(model: str, photos: Path, output: Path, size: int) -> float:
    """Seconds of one `impasto stylize --model` command, from launch to exit."""
    if output.is_dir():
        shutil.rmtree(output)
    else:
        output.unlink(missing_ok=True)
    command = [sys.executable, "-m", "impasto", "stylize", "--model", model, str(photos), "-o", str(output),
               "-s", str(size), "-q"]
    began = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if run.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{run.stderr}")
    return seconds


def main() -> None:
    from impasto.core.modelfile import load_model, resolve_model
    from impasto.networks import int8

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", type=Path, help="a folder of photos")
    parser.add_argument("--model", default="mosaic", help="the float model (default %(default)s)")
    parser.add_argument("--int8", default=None, help="its int8 file (default: compress it here first)")
    parser.add_argument("--calibration", type=Path, default=None, help="photos to calibrate int8 on (default PHOTOS)")
    parser.add_argument("--count", type=int, default=6, help="photos in the folder run (default %(default)s)")
    parser.add_argument("--size", type=int, default=512, help="long side (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="(default %(default)s)")
    args = parser.parse_args()

    found = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())[:args.count]
    if len(found) < args.count:
        sys.exit(f"{args.photos} has {len(found)} photos; --count {args.count} asked for")
    float_model = str(resolve_model(args.model))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        folder = scratch / "photos"
        folder.mkdir()
        for photo in found:
            shutil.copy(photo, folder / photo.name)
        if args.int8 is None:
            made = scratch / f"{Path(float_model).stem}-int8.pt"
            began = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "impasto", "compress", float_model, "--int8", "-o", str(made),
                                  "--photos", str(args.calibration or args.photos), "-q"], capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"compress failed:\n{run.stderr}")
            print(f"compressed in {time.perf_counter() - began:.0f} s", file=sys.stderr)
            int8_file = str(made)
        else:
            int8_file = str(resolve_model(args.int8))
        record = load_model(int8_file).config.get("int8_timing", {})
        described = int8.describe(int8_file)  # while a file made here still exists
        runs = {"one photo": folder / found[0].name, f"{args.count} photos": folder}
        times: dict[str, dict[str, list[float]]] = {case: {"float": [], "int8": []} for case in runs}
        load_before = load_average()
        for round_ in range(args.rounds + 1):  # round 0: warm-up (file caches), not counted
            for case, photos in runs.items():
                order = [("float", float_model), ("int8", int8_file)]
                for side, model in order if round_ % 2 else order[::-1]:
                    seconds = stylize(model, photos, scratch / ("out.png" if photos.is_file() else "out"), args.size)
                    if round_:
                        times[case][side].append(seconds)
            if round_:
                print(f"round {round_}: " + ", ".join(f"{case} int8 {t['int8'][-1]:.2f} s / float {t['float'][-1]:.2f} s"
                                                      for case, t in times.items()), file=sys.stderr, flush=True)
        load_after = load_average()

    rows, data = [], {"cpu": cpu_name(), "cpu_kind": int8.cpu_kind(), "float_precision": int8.float_precision(),
                      "threads": __import__("torch").get_num_threads(), "size": args.size, "rounds": args.rounds,
                      "model": args.model, "record": record, "describe": described,
                      "load_average": [load_before, load_after], "cases": {}}
    cells = [data["cpu"], data["cpu_kind"], data["float_precision"], record.get("choice", "?")]
    for case, t in times.items():
        ratio = statistics.median(i / f for i, f in zip(t["int8"], t["float"]))
        data["cases"][case] = {**t, "ratio": ratio}
        cells += [f"{statistics.median(t['float']):.2f} s", f"{statistics.median(t['int8']):.2f} s", f"{ratio:.2f}x"]
    rows.append(cells)
    headers = ["CPU", "kernels", "float in", "file's choice"]
    for case in times:
        headers += [f"{case}: float", f"{case}: int8", f"{case}: ratio"]
    print(f"`impasto stylize --model` at {args.size} px, {args.model}, median of {args.rounds} alternated rounds "
          f"(load average {load_before} before, {load_after} after)\n")
    print_table(headers, rows)
    print(f"\n{Path(int8_file).name}: {data['describe']}")
    print(f"results: {save_results('int8', data)}")


if __name__ == "__main__":
    main()
