"""A walk through style space: one photo painted with codes on the line from one painting's code to another's.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/style_walk.py PHOTO PAINTING_A PAINTING_B -o docs/arbitrary-walk.jpg

Each picture is one pass of the arbitrary network with the blended code (1 - t) * code(A) + t * code(B),
t = 0, 1/(n-1), ..., 1: the same as `impasto stylize --method arbitrary PHOTO A B --style-blend 1-t,t`.
The sheet shows painting A, the steps, then painting B.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--model", default=None, help="arbitrary network (default: the shipped one)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from impasto.core import images
    from impasto import methods
    from impasto.core.samples import resolve_style

    first, second = (images.read_image(resolve_style(p)) for p in (args.first, args.second))
    pictures = []
    for step in range(args.steps):
        t = step / (args.steps - 1)
        request = methods.Request(size=args.size, model=args.model, style_blend=[1.0 - t, t])
        pictures.append(methods.stylize("arbitrary", args.photo, [first, second], request).image)
    height = pictures[0].shape[-2]
    tiles = [images.tensor_to_pil(images.resize_max_side(first, height))]
    tiles += [images.tensor_to_pil(p) for p in pictures]
    tiles += [images.tensor_to_pil(images.resize_max_side(second, height))]
    for tile in tiles:
        tile.thumbnail((height, height))
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, (height - tile.height) // 2))
        x += tile.width + 4
    images.save_image(sheet, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
