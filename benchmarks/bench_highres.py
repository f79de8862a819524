"""High-resolution benchmark of the optimisation method: wall time and peak memory per output size.

    .venv/bin/python benchmarks/bench_highres.py               # 1024 and 2048 px
    .venv/bin/python benchmarks/bench_highres.py --sizes 4096 -n 20

Each size runs `impasto stylize` with its defaults (coarse-to-fine pyramid from 256 px, levels
above --tile-size optimised in overlapping tiles) as a separate process, whose peak resident
memory is read from the operating system when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent


def run_size(size: int, content: Path, style: Path, out_dir: Path, extra: list[str]) -> dict:
    out = out_dir / f"highres_{size}.jpg"
    command = [str(BIN / "impasto"), "stylize", str(content), str(style), "-o", str(out), "--size", str(size), "-q", *extra]
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    peak_gib = usage.ru_maxrss / 1024 ** 2  # ru_maxrss is in KiB on Linux
    row = {"size": size, "seconds": seconds, "peak_gib": peak_gib, "status": os.waitstatus_to_exitcode(status),
           "command": " ".join(["impasto", *command[1:]])}
    print(f"  {size} px: {seconds / 60:.1f} min, peak memory {peak_gib:.1f} GiB, exit {row['status']}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--content", type=Path, default=DATA / "content" / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=DATA / "style" / "starry_night.jpg")
    parser.add_argument("--keep", type=Path, default=ROOT / "benchmarks" / "results")
    args, extra = parser.parse_known_args()
    args.keep.mkdir(parents=True, exist_ok=True)
    print(f"# impasto high-resolution benchmark ({args.content.name} in the style of {args.style.name})")
    rows = [run_size(size, args.content, args.style, args.keep, extra) for size in args.sizes]
    name = "highres_" + "_".join(map(str, args.sizes)) + ".json"
    (args.keep / name).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
