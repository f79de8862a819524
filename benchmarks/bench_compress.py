"""Compressed feed-forward models beside their float originals: time, style distance, contact sheet.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_compress.py                      # mosaic and candy, 512 px
    .venv/bin/python benchmarks/bench_compress.py --models mosaic --steps 100   # a quick look

For each model: the float model as shipped (bf16 where the CPU has it, as `impasto stylize` runs it),
its int8 version (`impasto compress --int8`, calibrated on 16 training photos), its pruned version
(`--prune 0.5`: half the convolutions' work, then --steps of distillation on the training photos),
and the pruned one in int8.  Timing: every variant in turn, --rounds times, in this process (the
same threads), the median per variant; the ratio is against the float model of the same round.
Quality: bench_quality's style distance (sliced Wasserstein of VGG features, which neither the
training nor the distillation optimises) and content error on bench_quality's unseen photos.
Writes a Markdown table, JSON and a contact sheet in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch

from bench_quality import DATA, PHOTOS, ROOT, _as_saved, contact_sheet, find_style

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    from impasto.networks import fast
    from impasto.core import images, quality
    from impasto.networks.compress import DISTILL_SETTINGS, DISTILL_TEXTURE_WEIGHT, compress, conv_macs
    from impasto.core.modelfile import resolve_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mosaic", "candy"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=DISTILL_SETTINGS.steps)
    parser.add_argument("--texture-weight", type=float, default=DISTILL_TEXTURE_WEIGHT,
                        help="the distillation's texture term (0: pixels only, as before it existed)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--work", default=str(RESULTS / "compressed"), help="where the compressed models go")
    parser.add_argument("--sheet", default=str(RESULTS / "compress-sheet.jpg"),
                        help="(not shipped: it shows the test photos and the paintings, whose licences do not allow it)")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_photos = DATA / "train" / "content"
    settings = dataclasses.replace(DISTILL_SETTINGS, steps=args.steps, checkpoint_every=10_000)
    photos = {name: images.resize_max_side(images.read_image(DATA / "content" / name), args.size) for name in PHOTOS}
    rows, sheet = [], []
    for name in args.models:
        original = resolve_model(name)
        variants = {"float": original}
        made = time.perf_counter()
        variants["int8"], _ = compress(original, work / f"{name}-int8.pt", train_photos, int8=True)
        int8_s = time.perf_counter() - made
        pruned = work / f"{name}-pruned-{args.steps}-texture{args.texture_weight:g}.pt"
        made = time.perf_counter()
        if not pruned.exists():
            compress(original, pruned, train_photos, remove=0.5, settings=settings, texture_weight=args.texture_weight)
        prune_s = time.perf_counter() - made
        variants["pruned"] = pruned
        variants["pruned int8"], _ = compress(pruned, work / f"{name}-pruned-int8.pt", train_photos, int8=True)
        loaded = {label: fast.FastModel(path) for label, path in variants.items()}
        style_path = find_style(name, [DATA / "style", DATA / "train" / "style"])
        style = images.resize_max_side(images.read_image(style_path), args.size)
        timing_photo = photos[PHOTOS[0]]
        times: dict[str, list[float]] = {label: [] for label in loaded}
        for label, model in loaded.items():
            model.stylize(timing_photo)  # warm-up
        for _ in range(args.rounds):
            for label, model in loaded.items():
                began = time.perf_counter()
                model.stylize(timing_photo)
                times[label].append(time.perf_counter() - began)
        outputs = {label: {photo: model.stylize(content) for photo, content in photos.items()}
                   for label, model in loaded.items()}
        float_net = fast.FastModel(original, precision="fp32").network.float()
        for label, model in loaded.items():
            scores = [quality.score(_as_saved(outputs[label][photo]), content, style) for photo, content in photos.items()]
            macs = conv_macs(fast.FastModel(variants[label if "pruned" not in label else "pruned"], precision="fp32")
                             .network.float(), 256, 256) if "int8" not in label else None
            rows.append({"model": name, "variant": label, "ms": 1000 * statistics.median(times[label]),
                         "ratio": statistics.median(t / f for t, f in zip(times[label], times["float"])),
                         "style": statistics.mean(s.style for s in scores),
                         "content": statistics.mean(s.content for s in scores),
                         "size_mb": variants[label].stat().st_size / 1e6,
                         "macs_fraction": None if macs is None else macs / conv_macs(float_net, 256, 256),
                         "made_s": {"int8": int8_s, "pruned": prune_s}.get(label)})
        sheet.append({"label": name, "style": style,
                      "cells": [[content, *[outputs[label][photo] for label in loaded]] for photo, content in photos.items()]})
    base = {row["model"]: row["style"] for row in rows if row["variant"] == "float"}
    print(f"| model | variant | {args.size} px time (median of {args.rounds}) | vs float | style distance | vs float "
          "| content error | file | conv work |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        work_text = "" if row["macs_fraction"] is None else f"{row['macs_fraction']:.2f}x"
        print(f"| {row['model']} | {row['variant']} | {row['ms']:.0f} ms | {row['ratio']:.2f}x | {row['style']:.3f} | "
              f"{row['style'] / base[row['model']]:.2f}x | {row['content']:.3f} | {row['size_mb']:.1f} MB | {work_text} |")
    print(f"\nthreads {torch.get_num_threads()}; distillation {args.steps} steps, texture weight {args.texture_weight:g}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compress.json").write_text(json.dumps(rows, indent=1) + "\n")
    page = contact_sheet(sheet, ["photo", *loaded], list(photos), cell=150)
    page.save(args.sheet, quality=88)
    print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
