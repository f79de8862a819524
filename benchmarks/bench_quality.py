"""Quality harness for the one-pass methods: every feed-forward model and AdaIN beside the optimisation method.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_quality.py                      # shipped models, 384 px, ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_quality.py --model cand.pt --decoder other.pt   # candidates too

For each feed-forward model (each of its styles) and each photo that no model was trained on, the
model's output, AdaIN's output with the same painting, and the optimisation method's output (its
defaults; cached under benchmarks/results/cache/) are scored with :mod:`impasto.core.quality`: the
content error and the sliced-Wasserstein style distance, which no method optimises directly.  AdaIN
is also scored on unseen photo x unseen painting pairs (the paintings held out of its training).
The ratio to the optimisation method's figure on the same photos and paintings (mean over mean;
the median of the per-pair ratios beside it) is the headline (goal: <= 1.5 for style and content).  The frame (border lighter than the photo's own border, in
luminance), grid (8 px lattice peak; about 1 for a photo) and cells (steps between pixels at the
strongest position of an 8 px cell over their mean; about 1.1 without a cell structure) measures are
reported beside them, and moved: how much the painting changes when the photo moves by 1-3 px,
beyond the move (RMS, 0..1).

It writes a Markdown report to stdout and JSON to benchmarks/results/, and a contact sheet
(--sheet, default docs/one-pass-sheet.jpg): one row per painting, the painting, then for each
photo the feed-forward model, AdaIN and the optimisation method side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from report import RESULTS, print_table, save_results

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
#: Photos no shipped model was trained on (the training photos are BSDS500's).
PHOTOS = ("tubingen.jpg", "golden_gate.jpg", "brad_pitt.jpg")
#: Paintings held out of the AdaIN decoder's training.
ADAIN_STYLES = ("starry_night.jpg", "the_scream.jpg", "la_muse.jpg", "picasso_self_portrait.jpg")


def find_style(name: str, folders: list[Path]) -> Path:
    for folder in folders:
        for suffix in ("", ".jpg", ".png", ".jpeg"):
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    raise SystemExit(f"bench_quality: no style image named {name!r} in {', '.join(map(str, folders))}")


def reference(content: torch.Tensor, style: torch.Tensor, size: int, iterations: int, cache: Path) -> torch.Tensor:
    """The optimisation method's result (defaults), cached by the inputs' bytes and the settings."""
    from impasto.core import images
    from impasto.engines.optimize import StyleSettings, run

    path = cache / f"{images.digest(content)}-{images.digest(style)}-{size}-{iterations}.png"
    if path.exists():
        return images.read_image(path)
    result = run(content, [style], StyleSettings(size=size, iterations=iterations)).image
    cache.mkdir(parents=True, exist_ok=True)
    images.save_image(result, path)
    return images.read_image(path)


def _as_saved(image: torch.Tensor) -> torch.Tensor:
    """Round-trip through 8 bits, as users see the result."""
    from impasto.core import images

    return images.as_tensor(images.tensor_to_pil(image))


def evaluate(models: list[Path], decoders: list[Path | None], photos: list[Path], style_dirs: list[Path],
             adain_styles: list[Path], size: int, iterations: int, cache: Path) -> tuple[list[dict], list[dict]]:
    """Score every model/style/photo and AdaIN; returns (rows, sheet entries)."""
    from impasto.networks import fast
    from impasto.core import images, quality
    from impasto import methods
    from impasto.core.modelfile import load_model

    def score(row: dict, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor, paint=None) -> dict:
        """``paint``: the one-pass painter itself, for the moved measure."""
        saved = _as_saved(output)
        result = quality.score(saved, content, style)
        return {**row, "content": result.content, "style": result.style,
                "style_relu1_1": result.per_layer["relu1_1"],
                "frame": quality.frame(saved) - quality.frame(content), "grid": quality.grid(saved),
                "cells": quality.cell_edges(saved), **({"moved": quality.moved(paint, content)} if paint else {})}

    def score_adain(rows: list[dict], base: dict, decoder: Path | None, content: torch.Tensor,
                    style: torch.Tensor) -> torch.Tensor:
        """AdaIN's result for one pair, scored into ``rows``."""
        def paint(photo: torch.Tensor) -> torch.Tensor:
            return methods.stylize("adain", photo, [style], methods.Request(size=None, model=decoder)).image

        out = paint(content)
        rows.append(score({**base, "method": f"adain {decoder.stem if decoder else 'shipped'}"}, out, content, style,
                          paint))
        return out

    rows: list[dict] = []
    sheet: list[dict] = []
    contents = {p.name: images.resize_max_side(images.read_image(p), size) for p in photos}
    jobs: list[tuple[str, Path, list[float] | None, Path]] = []  # (label, model, mix, style image)
    for model_path in models:
        model = load_model(model_path, fast.KIND)
        names = model.config.get("style_names") or [model_path.stem]
        for index, name in enumerate(names):
            mix = [1.0 if i == index else 0.0 for i in range(len(names))] if len(names) > 1 else None
            label = model_path.stem if mix is None else f"{model_path.stem}[{name}]"
            jobs.append((label, model_path, mix, find_style(name, style_dirs)))
    for label, model_path, mix, style_path in jobs:
        style = images.resize_max_side(images.read_image(style_path), size)
        entry = {"label": label, "style": style, "cells": []}
        for photo, content in contents.items():
            base = {"style_image": style_path.stem, "photo": photo}
            opt = reference(content, style, size, iterations, cache)
            rows.append(score({**base, "method": "optimisation"}, opt, content, style))
            def paint_fast(photo: torch.Tensor) -> torch.Tensor:
                return methods.stylize("fast", photo, (), methods.Request(size=None, style_blend=mix, model=model_path)).image

            began = time.perf_counter()
            out = paint_fast(content)
            seconds = time.perf_counter() - began
            rows.append(score({**base, "method": f"fast {label}", "seconds": seconds}, out, content, style, paint_fast))
            cells = [out]
            for decoder in decoders:
                ada = score_adain(rows, base, decoder, content, style)
                cells.append(ada)
            entry["cells"].append([*cells, opt])
            print(f"  {label} / {photo} done", file=sys.stderr)
        sheet.append(entry)
    for style_path in adain_styles:
        style = images.resize_max_side(images.read_image(style_path), size)
        for photo, content in contents.items():
            base = {"style_image": style_path.stem, "photo": photo, "unseen_style": True}
            opt = reference(content, style, size, iterations, cache)
            rows.append(score({**base, "method": "optimisation"}, opt, content, style))
            for decoder in decoders:
                score_adain(rows, base, decoder, content, style)
        print(f"  adain / {style_path.name} done", file=sys.stderr)
    return rows, sheet


def summarise(rows: list[dict]) -> list[dict]:
    """Per method (and painting set), the mean style and content ratios to the optimisation method."""
    opt = {(r["style_image"], r["photo"]): r for r in rows if r["method"] == "optimisation"}
    groups: dict[tuple[str, bool], list[dict]] = {}
    for row in rows:
        if row["method"] == "optimisation":
            continue
        groups.setdefault((row["method"], bool(row.get("unseen_style"))), []).append(row)
    out = []
    for (method, unseen), items in groups.items():
        refs = [opt[(r["style_image"], r["photo"])] for r in items]
        style, style_opt = statistics.mean(r["style"] for r in items), statistics.mean(r["style"] for r in refs)
        content = statistics.mean(r["content"] for r in items)
        content_opt = statistics.mean(r["content"] for r in refs)
        out.append({
            "method": method,
            "paintings": "unseen (held out)" if unseen else "the model's own",
            "pairs": len(items),
            "style": style,
            "style_opt": style_opt,
            # ratio of the means: a per-pair ratio explodes where the optimisation method matches a
            # painting almost exactly (its distance near 0); the median pair ratio is kept beside it
            "style_ratio": style / max(style_opt, 1e-12),
            "style_ratio_median": statistics.median(r["style"] / max(o["style"], 1e-12) for r, o in zip(items, refs)),
            "content": content,
            "content_opt": content_opt,
            "content_ratio": content / max(content_opt, 1e-12),
            "frame": statistics.mean(r["frame"] for r in items),
            "grid": statistics.mean(r["grid"] for r in items),
            "cells": statistics.mean(r["cells"] for r in items),
            "moved": statistics.mean(r["moved"] for r in items) if all("moved" in r for r in items) else None,
        })
    return out


def contact_sheet(sheet: list[dict], columns: list[str], photos: list[str], cell: int = 160) -> Image.Image:
    """One row per painting: the painting, then per photo one cell per method; a header names them."""
    from impasto.core import images

    def fit(image: torch.Tensor) -> Image.Image:
        pil = images.tensor_to_pil(image)
        pil.thumbnail((cell, cell))
        canvas = Image.new("RGB", (cell, cell), (255, 255, 255))
        canvas.paste(pil, ((cell - pil.width) // 2, (cell - pil.height) // 2))
        return canvas

    per_photo = len(columns)
    width = cell * (1 + per_photo * len(photos)) + 8 * len(photos)
    header = 34
    label_h = 14
    page = Image.new("RGB", (width, header + len(sheet) * (cell + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    for p, photo in enumerate(photos):
        x0 = cell + p * (cell * per_photo + 8) + 8
        draw.text((x0, 2), photo, fill=(0, 0, 0))
        for c, name in enumerate(columns):
            draw.text((x0 + c * cell + 2, 18), name, fill=(60, 60, 60))
    for r, entry in enumerate(sheet):
        y = header + r * (cell + label_h)
        draw.text((2, y), entry["label"], fill=(0, 0, 0))
        page.paste(fit(entry["style"]), (0, y + label_h))
        for p, cells in enumerate(entry["cells"]):
            x0 = cell + p * (cell * per_photo + 8) + 8
            for c, image in enumerate(cells):
                page.paste(fit(image), (x0 + c * cell, y + label_h))
    return page


def print_summary(summary: list[dict], size: int, photos: list[Path]) -> None:
    if photos:
        print(f"\n{size} px; photos: {', '.join(p.name for p in photos)}\n")
    print_table(["method", "paintings", "pairs", "style distance (optimisation's)", "style ratio (median pair)",
                 "content error (optimisation's)", "content ratio", "frame", "grid", "cells", "moved"],
                [[r["method"], r["paintings"], r["pairs"], f"{r['style']:.4f} ({r['style_opt']:.4f})",
                  f"{r['style_ratio']:.2f} ({r['style_ratio_median']:.2f})",
                  f"{r['content']:.3f} ({r['content_opt']:.3f})", f"{r['content_ratio']:.2f}", f"{r['frame']:+.3f}",
                  f"{r['grid']:.1f}", f"{r['cells']:.2f}", "" if r.get("moved") is None else f"{r['moved']:.3f}"] for r in summary])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None,
                        help="feed-forward model file or shipped name (repeat; default: every shipped one; 'none': AdaIN only)")
    parser.add_argument("--decoder", action="append", default=None,
                        help="AdaIN decoder file, or 'shipped' (repeat; default: the shipped one; 'none': no AdaIN)")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=50, help="optimisation method: iterations at full size")
    parser.add_argument("--data", type=Path, default=DATA, help="the test data folder (content/, style/, train/style/)")
    parser.add_argument("--photos", default=",".join(PHOTOS))
    parser.add_argument("--adain-styles", default=",".join(ADAIN_STYLES), help="held-out paintings ('' for none)")
    parser.add_argument("--sheet", type=Path, default=ROOT / "docs" / "one-pass-sheet.jpg")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--summarise", type=Path, nargs="+", default=None, metavar="JSON",
                        help="only print the table of earlier runs' results (rows merged)")
    args = parser.parse_args(argv)
    if args.summarise:
        rows = [row for path in args.summarise for row in json.loads(path.read_text())["rows"]]
        print_summary(summarise(rows), args.size, [])
        return

    from impasto.core import images
    from impasto.core.modelfile import resolve_model, shipped_models

    if args.model == ["none"]:
        models = []
    else:
        models = ([resolve_model(m) for m in args.model] if args.model
                  else [m.path for m in shipped_models() if m.kind == "fast"])
    decoders = ([] if args.decoder == ["none"]
                else [None if d == "shipped" else Path(d) for d in (args.decoder or ["shipped"])])
    style_dirs = [args.data / "train" / "style", args.data / "style"]
    photos = [args.data / "content" / name for name in args.photos.split(",") if name]
    adain_styles = [find_style(name, style_dirs) for name in args.adain_styles.split(",") if name]
    rows, sheet = evaluate(models, decoders, photos, style_dirs, adain_styles, args.size, args.iterations,
                           args.results / "cache")
    summary = summarise(rows)
    print_summary(summary, args.size, photos)

    save_results("quality", {"rows": rows, "summary": summary}, args.results)
    if sheet and args.sheet:
        columns = ["feed-forward", *[f"AdaIN {d.stem if d else ''}".strip() for d in decoders], "optimisation"]
        page = contact_sheet(sheet, columns, [p.stem for p in photos])
        images.save_image(page, args.sheet)
        print(f"\ncontact sheet: {args.sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
