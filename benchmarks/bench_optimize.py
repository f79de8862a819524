"""Benchmark of the optimisation method: speed per iteration, and time to pastiche's quality.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_optimize.py            # everything (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_optimize.py --only speed

Sections:
  speed     seconds per evaluation (forward + backward + losses) at 256 and 512 px, fp32 and bf16,
            and the achieved GFLOP/s of the VGG-19 convolutions.
  pastiche  side by side with the `pastiche` command on the same weights, images and size: its
            default L-BFGS for N steps, then impasto's CLI with the same objective; every output is
            scored by one evaluator (the shared objective in float32 on the saved 8-bit PNG) and
            impasto's time is the wall time until its first intermediate that scores at least as
            well as pastiche's final image.
  default   wall time of `impasto stylize` with its default settings at 512 px.

Images come from the project's test data beside the repository (../shared/data).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BIN = Path(sys.executable).parent

# pastiche's objective written in impasto's terms: content 0.01 * MSE(relu4_2); style 10/C^2 * MSE(F F^T / HW)
# per layer = 10 * MSE(Gram / (C H W)), relu1_1..relu5_1, no TV.
PASTICHE_OBJECTIVE = ["--content-weight", "0.01", "--style-weight", "10", "--tv-weight", "0"]


def conv_flops(height: int, width: int, last: str = "relu5_1") -> float:
    """Multiply-adds x2 of the VGG-19 convolutions up to ``last`` for one forward pass."""
    from impasto.core.backbone import CHANNELS, layer_names

    flops, h, w, c_in = 0.0, height, width, 3
    for name in layer_names("vgg19"):
        if name.startswith("conv"):
            c_out = CHANNELS[int(name[4]) - 1]
            flops += 2 * 9 * c_in * c_out * h * w
            c_in = c_out
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
        if name == last:
            break
    return flops


def bench_speed(content: Path, style: Path) -> list[dict]:
    from impasto.engines.optimize import Evaluator, StyleSettings, autocast, build_objective, prepare
    from impasto.core.runtime import default_encoder

    rows = []
    device = torch.device("cpu")
    for size in (256, 512):
        for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            settings = StyleSettings(size=size)
            layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
            model = default_encoder(layers, device)
            square = torch.rand(1, 3, size, size)
            content_t, style_ts = prepare(square, [style], settings, 16)
            cast = functools.partial(autocast, device, dtype)
            objective = build_objective(model, content_t, style_ts, settings, cast)
            image = content_t.clone().requires_grad_(True)
            evaluate = Evaluator(model, objective, image, cast)
            times = []
            for i in range(6):
                with torch.no_grad():
                    image.add_(1e-3)  # a new point each time: no cache hit
                started = time.perf_counter()
                evaluate()
                times.append(time.perf_counter() - started)
            seconds = sorted(times[1:])[len(times[1:]) // 2]
            # forward + input-gradient backward: about twice the forward FLOPs
            gflops = 2 * conv_flops(size, size) / seconds / 1e9
            rows.append({"size": size, "precision": precision, "s_per_eval": seconds, "gflops": gflops})
            print(f"  {size}x{size} {precision}: {seconds:.3f} s/eval, {gflops:.0f} GFLOP/s", flush=True)
    return rows


def evaluate_file(path: Path, content: Path, style: Path, size: int) -> dict:
    """The common evaluator: pastiche's objective (in impasto's terms), float32, on a saved image."""
    from impasto.core import images
    from impasto.engines.optimize import Evaluator, StyleSettings, autocast, build_objective, prepare
    from impasto.core.runtime import default_encoder

    settings = StyleSettings(size=size, content_weight=0.01, style_weight=10.0, tv_weight=0.0, precision="fp32")
    device = torch.device("cpu")
    layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
    model = default_encoder(layers, device)
    key = (str(content), str(style), size)
    cache = evaluate_file.__dict__.setdefault("cache", {})
    if key not in cache:
        content_t, style_ts = prepare(content, [style], settings, 16)
        cast = functools.partial(autocast, device, None)
        cache[key] = (content_t, build_objective(model, content_t, style_ts, settings, cast), cast)
    content_t, objective, cast = cache[key]
    image = images.read_image(path)
    if image.shape != content_t.shape:
        image = images.resize(image, tuple(content_t.shape[-2:]))
    pixels = image.requires_grad_(True)
    evaluator = Evaluator(model, objective, pixels, cast)
    evaluator()
    return evaluator.terms


def prepare_inputs(work: Path, content: Path, style: Path, size: int) -> tuple[Path, Path]:
    """Resize both images once to the benchmark size, so that both tools read identical pixels."""
    from impasto.core import images

    paths = []
    for source, name in ((content, "content.png"), (style, "style.png")):
        t = images.resize_max_side(images.read_image(source), size)
        paths.append(images.save_image(t, work / name))
    return paths[0], paths[1]


def bench_pastiche(content: Path, style: Path, size: int, steps: int, work: Path, iterations: int) -> dict:
    pastiche = shutil.which("pastiche", path=str(BIN)) or shutil.which("pastiche")
    if pastiche is None:
        raise SystemExit("pastiche is not installed (it comes with impasto's dependencies)")
    content_p, style_p = prepare_inputs(work, content, style, size)
    out_p = work / "pastiche.png"
    started = time.perf_counter()
    subprocess.run([pastiche, "--content", str(content_p), "--styles", str(style_p), "--output", str(out_p),
                    "--size", str(size), "--style-size", str(size), "--num-steps", str(steps), "--seed", "0",
                    "--no-verbose"], check=True)
    pastiche_seconds = time.perf_counter() - started
    pastiche_score = evaluate_file(out_p, content_p, style_p, size)
    print(f"  pastiche {steps} steps: {pastiche_seconds:.1f} s, loss {pastiche_score['total']:.4g}", flush=True)

    # impasto: the same objective, default coarse-to-fine pyramid, intermediates every 2 iterations
    # (time = the snapshot file's modification time, counted from the command's start)
    out_i = work / "impasto.png"
    started_wall = time.time()
    started = time.perf_counter()
    subprocess.run([str(BIN / "impasto"), "stylize", str(content_p), str(style_p), "-o", str(out_i),
                    "--size", str(size), "-n", str(iterations), "--tolerance", "0", "--save-every", "2", "-q",
                    *PASTICHE_OBJECTIVE], check=True)
    impasto_total = time.perf_counter() - started
    reached = None
    curve = []
    for snapshot in sorted(work.glob("impasto_*.png"), key=lambda p: int(re.findall(r"_(\d+)\.png$", p.name)[0])):
        iteration = int(re.findall(r"_(\d+)\.png$", snapshot.name)[0])
        seconds = snapshot.stat().st_mtime - started_wall
        score = evaluate_file(snapshot, content_p, style_p, size)
        curve.append((iteration, seconds, score["total"]))
        if reached is None and score["total"] <= pastiche_score["total"]:
            reached = {"iteration": iteration, "seconds": seconds, "loss": score["total"],
                       "content": score["content"], "style": score["style"]}
            shutil.copy(snapshot, work / "impasto_matched.png")
    result = {
        "size": size, "steps": steps,
        "pastiche_seconds": pastiche_seconds, "pastiche_loss": pastiche_score["total"],
        "pastiche_content": pastiche_score["content"], "pastiche_style": pastiche_score["style"],
        "impasto_iterations": iterations, "impasto_reached": reached, "impasto_full_run_seconds": impasto_total,
        "impasto_final_loss": evaluate_file(out_i, content_p, style_p, size)["total"], "curve": curve,
    }
    if reached:
        result["speedup"] = pastiche_seconds / reached["seconds"]
        print(f"  impasto reached it at iteration {reached['iteration']}: {reached['seconds']:.1f} s, "
              f"loss {reached['loss']:.4g} -> {result['speedup']:.1f}x faster", flush=True)
    else:
        print("  impasto did not reach pastiche's loss", flush=True)
    return result


def bench_default(content: Path, style: Path, work: Path) -> dict:
    out = work / "default.png"
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "impasto"), "stylize", str(content), str(style), "-o", str(out), "--size", "512"],
                          capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    summary = done.stderr.strip().splitlines()[-1]
    print(f"  default settings at 512 px: {seconds:.1f} s ({summary})", flush=True)
    return {"seconds": seconds, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("speed", "pastiche", "default"), action="append")
    parser.add_argument("--content", type=Path, default=DATA / "content" / "tubingen.jpg")
    parser.add_argument("--style", type=Path, default=DATA / "style" / "starry_night.jpg")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--impasto-iterations", type=int, default=60, help="impasto's -n (at the output size)")
    parser.add_argument("--keep", type=Path, default=ROOT / "benchmarks" / "results", help="where outputs go")
    args = parser.parse_args()
    sections = args.only or ["speed", "pastiche", "default"]
    args.keep.mkdir(parents=True, exist_ok=True)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": _cpu_name()}
    print(f"# impasto optimisation benchmark ({info['cpu']}, {info['threads']} threads, torch {info['torch']})")
    results: dict = {"machine": info}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "speed" in sections:
            print("speed:")
            results["speed"] = bench_speed(args.content, args.style)
        if "pastiche" in sections:
            print(f"pastiche vs impasto at {args.size} px:")
            results["pastiche"] = bench_pastiche(args.content, args.style, args.size, args.pastiche_steps, work,
                                                args.impasto_iterations)
            for name in ("pastiche.png", "impasto_matched.png"):
                if (work / name).exists():
                    shutil.copy(work / name, args.keep / name)
        if "default" in sections:
            print("default run:")
            results["default"] = bench_default(args.content, args.style, work)
    (args.keep / "optimize.json").write_text(json.dumps(results, indent=2))
    print(f"results: {args.keep / 'optimize.json'}")


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


if __name__ == "__main__":
    main()
