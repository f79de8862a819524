"""Neural neighbours beside the optimisation method: quality on unseen pairs, and time, in one run.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_neighbours.py                 # 12 pairs at 384 px + timing at 512 px
    .venv/bin/python benchmarks/bench_neighbours.py --pairs 3 --no-timing   # a quick look while tuning

Quality: for every photo x painting of bench_quality's unseen sets (photos no model trained on,
paintings held out of the AdaIN decoder's training), both methods' results at --size are scored with
:mod:`impasto.core.quality` (content error; sliced-Wasserstein style distance of VGG features, which
neither method optimises directly).  The optimisation method's results come from bench_quality's
cache (its defaults), so both harnesses judge the same pictures.  Timing: both methods at
--time-size on the first --time-pairs pairs, one after the other in this process, same threads.

Writes a Markdown table to stdout, JSON to benchmarks/results/, and a contact sheet (--sheet,
default docs/neighbours-sheet.jpg): painting, photo, optimisation, neighbours.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from bench_quality import ADAIN_STYLES, DATA, PHOTOS, ROOT, _as_saved, reference
from report import RESULTS, print_table, save_results


def _table(rows: list[dict]) -> None:
    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    print_table(list(rows[0]), [[cell(v) for v in row.values()] for row in rows])
    print()


def neighbours(content: torch.Tensor, style: torch.Tensor, size: int, iterations: int | None,
               strength: float | None = None) -> torch.Tensor:
    from impasto import methods
    from impasto.methods.neighbours import NeighbourSettings

    options = NeighbourSettings() if iterations is None else NeighbourSettings(iterations=iterations)
    request = methods.Request(size=size, strength=strength, options=options)
    return methods.stylize("neighbours", content, [style], request).image


def main(argv: list[str] | None = None) -> None:
    from impasto.core import images, quality
    from impasto.engines.optimize import StyleSettings, run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=None, help="neighbours' own (default: its default)")
    parser.add_argument("--strength", type=float, default=None, help="neighbours' (default: its default)")
    parser.add_argument("--reference-iterations", type=int, default=50, help="the optimisation method's")
    parser.add_argument("--pairs", type=int, default=None, help="only the first N pairs")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--time-size", type=int, default=512)
    parser.add_argument("--time-pairs", type=int, default=2)
    parser.add_argument("--sheet", default=str(ROOT / "docs" / "neighbours-sheet.jpg"))
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    pairs = [(DATA / "content" / photo, DATA / "style" / style) for style in ADAIN_STYLES for photo in PHOTOS]
    pairs = pairs[: args.pairs] if args.pairs else pairs
    cache = RESULTS / "cache"
    rows, cells = [], []
    for photo_path, style_path in pairs:
        content = images.resize_max_side(images.read_image(photo_path), args.size)
        style = images.resize_max_side(images.read_image(style_path), args.size)
        opt = reference(content, style, args.size, args.reference_iterations, cache)
        began = time.perf_counter()
        out = _as_saved(neighbours(content, style, args.size, args.iterations, args.strength))
        seconds = time.perf_counter() - began
        a, b = quality.score(opt, content, style), quality.score(out, content, style)
        rows.append({"photo": photo_path.stem, "style": style_path.stem, "opt_content": a.content,
                     "opt_style": a.style, "nn_content": b.content, "nn_style": b.style, "nn_seconds": seconds})
        cells.append((style, content, opt, out))
        print(f"  {photo_path.stem} / {style_path.stem}: style {b.style:.4g} vs {a.style:.4g}, "
              f"content {b.content:.4g} vs {a.content:.4g} ({seconds:.1f} s)", file=sys.stderr)

    mean = statistics.fmean
    summary = [{
        "pairs": len(rows), "size": args.size,
        "style_ratio": mean(r["nn_style"] for r in rows) / mean(r["opt_style"] for r in rows),
        "content_ratio": mean(r["nn_content"] for r in rows) / mean(r["opt_content"] for r in rows),
        "style_lower_in": sum(r["nn_style"] < r["opt_style"] for r in rows),
        "content_lower_or_equal_in": sum(r["nn_content"] <= r["opt_content"] for r in rows),
    }]
    print(f"\n## Neighbours / optimisation on unseen pairs ({args.size} px; ratios of means, < 1 = lower)\n")
    _table(summary)
    _table(rows)

    timing = []
    if not args.no_timing:
        for photo_path, style_path in pairs[: args.time_pairs]:
            for name in ("optimisation", "neighbours"):
                began = time.perf_counter()
                if name == "optimisation":
                    run(photo_path, [style_path], StyleSettings(size=args.time_size))
                else:
                    neighbours(photo_path, style_path, args.time_size, args.iterations, args.strength)
                timing.append({"method": name, "pair": f"{photo_path.stem}/{style_path.stem}",
                               "size": args.time_size, "seconds": time.perf_counter() - began})
        print(f"\n## Time at {args.time_size} px ({torch.get_num_threads()} threads, same process)\n")
        _table(timing)
    save_results("neighbours", {"summary": summary, "rows": rows, "timing": timing})

    if args.sheet:
        cell = 160
        sheet = Image.new("RGB", (4 * cell, len(cells) * cell), "white")
        for row, pictures in enumerate(cells):
            for column, picture in enumerate(pictures):
                tile = images.tensor_to_pil(picture)
                tile.thumbnail((cell, cell))
                sheet.paste(tile, (column * cell + (cell - tile.width) // 2, row * cell + (cell - tile.height) // 2))
        sheet.save(args.sheet, quality=88)
        print(f"wrote {args.sheet} (painting, photo, optimisation, neighbours)", file=sys.stderr)


if __name__ == "__main__":
    main()
