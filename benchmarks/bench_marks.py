"""Machine marks of the one-pass methods: pixel-lattice stripes, frames, colour, and brushwork at 1080p.

Run from the repository root (after `make install`):

    .venv/bin/python benchmarks/bench_marks.py out/marks                        # every one-pass method
    .venv/bin/python benchmarks/bench_marks.py out/marks --methods arbitrary adain --upsample both
    .venv/bin/python benchmarks/bench_marks.py out/marks --methods fast:mosaic --pairs 2 --no-full
    .venv/bin/python benchmarks/bench_marks.py out/before --methods adain fast --no-1080 --before   # as before the fixes

On the held-out photo x painting pairs of bench_arbitrary (PAIRS; its ``--data`` folder), each
method paints every pair at 512 px (the photo's own framing) and at 1920x1080 (the photo cut to
16:9): with the default stroke scale (painted at 512x288 and brought up guided by the photo,
impasto.core.guided) and, unless ``--no-full``, painted at full resolution (stroke scale
512/1920, what impasto did before stroke scale).  A shipped per-style model (``fast:NAME``; ``fast``
is every shipped one) paints each distinct photo of the pairs, against its own painting
(train/style/<its style name>.jpg).  Each result, as saved (8 bits), is scored with
impasto.core.quality:

* lattice: the strongest spectral peak at the pixel-lattice frequencies (periods 2, 4, 8 px along x,
  y and the diagonal) of the Hann-windowed grey image over its 13x13 neighbourhood's median; a
  photo is about 2, a visible stripe 5 and more;
* frame: the mean over the four sides of |outer 8 px - next 8 px inward|, grey levels (the rule:
  within 5), and the worst side beside it;
* saturation (mean HSV saturation, 0..255) and brightness spread (grey standard deviation, 0..255),
  each as a ratio to the painting's (at 512 px); colour distance: how far the result's colours are
  from the painting's as distributions (impasto.core.quality.colour_distance, 8-bit levels);
* style distance and content error: at 512 px against the painting at 512 px; a 1080p result is
  brought down to 512x288 first and compared with the same method's 512x288 painting of the same
  cut ("style vs 512": the stroke-scale goal is at most 1.15).

``--upsample bilinear`` (or ``both``) repaints with every 2x nearest upsampling of the loaded networks
switched to bilinear, no retraining (the network's variant is called ``METHOD+bilinear``).
``--neighbours`` adds the neural-neighbours method at 512 px only (an optimisation: minutes a pair).

Writes Markdown to stdout; JSON and, per method, a contact sheet (photo, painting, the 512 px
result, a 4x zoom of a flat area of it, the 1080p result, a 1x and a 4x crop of the same area at
1080p, and the full-resolution painting's 4x crop) into the output folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from bench_arbitrary import DATA, PAIRS, find
from report import print_table

ROOT = Path(__file__).resolve().parents[1]
FRAME = (1080, 1920)
#: the zoomed crops: this many pixels of the result, shown 4x (512 px result; 1080p result)
CROP_512, CROP_1080 = 48, 64
CELL = 256


def as_saved(image: torch.Tensor) -> torch.Tensor:
    from impasto.core import images

    return images.as_tensor(images.tensor_to_pil(image))


def cut_16_9(photo: torch.Tensor) -> torch.Tensor:
    """The photo's centre cut to 16:9."""
    h, w = photo.shape[-2:]
    if w * 9 >= h * 16:
        keep = round(h * 16 / 9)
        return photo[..., :, (w - keep) // 2:(w - keep) // 2 + keep]
    keep = round(w * 9 / 16)
    return photo[..., (h - keep) // 2:(h - keep) // 2 + keep, :]


def flattest(photo: torch.Tensor, window: int) -> tuple[float, float]:
    """The centre (as fractions of height and width) of the ``window`` px square of ``photo`` with the
    least grey variation, away from the edges (where a frame would show instead)."""
    grey = photo.float().mean(dim=1, keepdim=True)
    stride = max(1, window // 4)
    mean = F.avg_pool2d(grey, window, stride)
    variance = F.avg_pool2d(grey * grey, window, stride) - mean * mean
    margin = max(1, 16 // stride)
    inner = variance[..., margin:-margin, margin:-margin]
    index = int(inner.flatten().argmin())
    y, x = divmod(index, inner.shape[-1])
    h, w = photo.shape[-2:]
    return ((y + margin) * stride + window / 2) / h, ((x + margin) * stride + window / 2) / w


def crop(image: torch.Tensor, centre: tuple[float, float], size: int, zoom: int) -> Image.Image:
    from impasto.core import images

    h, w = image.shape[-2:]
    top = min(max(0, round(centre[0] * h - size / 2)), h - size)
    left = min(max(0, round(centre[1] * w - size / 2)), w - size)
    picture = images.tensor_to_pil(image[..., top:top + size, left:left + size])
    return picture.resize((size * zoom, size * zoom), Image.NEAREST)


def thumbnail(image: torch.Tensor) -> Image.Image:
    from impasto.core import images

    picture = images.tensor_to_pil(image)
    picture.thumbnail((CELL - 4, CELL - 4), Image.LANCZOS)
    return picture


def save_sheet(rows: list[list[Image.Image | None]], columns: list[str], title: str, path: Path) -> None:
    sheet = Image.new("RGB", (CELL * len(columns), 40 + CELL * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 4), title, fill="black")
    for x, name in enumerate(columns):
        draw.text((x * CELL + 6, 22), name, fill="black")
    for y, row in enumerate(rows):
        for x, picture in enumerate(row):
            if picture is not None:
                sheet.paste(picture, (x * CELL + 2, 40 + y * CELL + 2))
    sheet.save(path, quality=92)


@contextmanager
def as_before():
    """Paint as impasto did before the machine-mark fixes: the per-style models see the photo's own
    edge (no mirrored margin) and nothing takes a lattice out (AdaIN's cells, neighbours' speckle, the
    nearest-upsampling transformers' 4 px lattice)."""
    from impasto.core import lattice
    from impasto.networks import fast

    margin, remove = fast.MARGIN, lattice.remove_lattice
    fast.MARGIN, lattice.remove_lattice = 0, lambda image, period, window=lattice.WINDOW: image.float()
    try:
        yield
    finally:
        fast.MARGIN, lattice.remove_lattice = margin, remove


@contextmanager
def upsampling(engine, mode: str | None):
    """Every 2x nearest upsampling of ``engine``'s networks switched to ``mode`` while inside (None: as is)."""
    from impasto.networks.transformer import ConvNorm

    changed = []
    if mode is not None:
        for name in ("network", "decoder"):
            module = getattr(engine, name, None)
            if not isinstance(module, torch.nn.Module):
                continue
            for layer in module.modules():
                if isinstance(layer, ConvNorm) and layer.upsample and layer.upsample != mode:
                    changed.append((layer, "upsample", layer.upsample))
                    layer.upsample = mode
                elif isinstance(layer, torch.nn.Upsample) and layer.mode != mode:
                    changed.append((layer, "mode", layer.mode))
                    layer.mode = mode
    try:
        yield len(changed)
    finally:
        for layer, attribute, value in changed:
            setattr(layer, attribute, value)


def shipped_fast_models() -> list[str]:
    from impasto.core.modelfile import load_model
    from impasto.networks.arbitrary import DEFAULT_MODEL

    names = []
    for path in sorted(DEFAULT_MODEL.parent.glob("*.pt")):
        try:
            load_model(path, "fast")
        except Exception:  # another kind of model file
            continue
        names.append(path.stem)
    return names


def jobs_for(method: str, data: Path, pair_count: int, photos: list[str] | None = None) -> list[dict]:
    """(photo, painting, model, weights) of each picture ``method`` paints (a per-style model: each of
    ``photos``, or each distinct photo of the pairs)."""
    from impasto.core.modelfile import load_model, resolve_model

    pairs = [(find(data, p, "content"), find(data, s, "style", "train/style")) for p, s in PAIRS[:pair_count]]
    if photos and method.startswith("fast:"):
        pairs = [(find(data, p, "content"), None) for p in photos]
    if not method.startswith("fast:"):
        return [{"photo": p, "painting": s, "model": None, "weights": None} for p, s in pairs]
    model = resolve_model(method.split(":", 1)[1])
    names = load_model(model, "fast").config.get("style_names") or [model.stem]
    jobs = []
    for index, name in enumerate(names):
        weights = [1.0 if i == index else 0.0 for i in range(len(names))] if len(names) > 1 else None
        painting = find(data, f"{name}.jpg", "train/style", "style")
        for photo in dict.fromkeys(p for p, _ in pairs):
            jobs.append({"photo": photo, "painting": painting, "model": model, "weights": weights, "style": name})
    return jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the contact sheets and the JSON")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="arbitrary, adain, fast (every shipped model) or fast:NAME (default: all of them)")
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--upsample", choices=("as-trained", "bilinear", "both"), default="as-trained",
                        help="switch the networks' nearest upsampling to bilinear (no retraining)")
    parser.add_argument("--no-full", action="store_true", help="skip the full-resolution 1080p painting")
    parser.add_argument("--no-1080", action="store_true", help="512 px only")
    parser.add_argument("--neighbours", action="store_true", help="also the neighbours method, 512 px only")
    parser.add_argument("--data", type=Path, default=DATA, help="the test data folder (content/, style/, train/style/)")
    parser.add_argument("--photos", nargs="+", default=None,
                        help="photos (in content/) the per-style models paint (default: the pairs' photos)")
    parser.add_argument("--before", action="store_true",
                        help="paint as before the machine-mark fixes (no mirrored margin for the per-style models, "
                             "no lattice taken out)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    if args.before:
        with as_before():
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> None:
    from impasto import methods
    from impasto.core import guided, images, quality

    torch.set_num_threads(os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.methods or ["arbitrary", "adain", "fast"]
    method_names = []
    for name in wanted:
        method_names.extend(f"fast:{m}" for m in shipped_fast_models()) if name == "fast" else method_names.append(name)
    if args.neighbours and "neighbours" not in method_names:
        method_names.append("neighbours")
    modes = {"as-trained": [None], "bilinear": ["bilinear"], "both": [None, "bilinear"]}[args.upsample]
    full_scale = guided.STROKE_SIDE / max(FRAME)

    rows: list[dict] = []
    photos_done: set[str] = set()
    for method_name in method_names:
        method = methods.get(method_name.split(":")[0])
        for mode in modes:
            if mode is not None and method_name == "neighbours":
                continue
            label = method_name + (f"+{mode}" if mode else "")
            sheet_rows = []
            for job in jobs_for(method_name, args.data, args.pairs, args.photos):
                photo = images.resize_max_side(images.read_image(job["photo"]), 512)
                painting_full = images.read_image(job["painting"])
                painting = images.resize_max_side(painting_full, 512)
                cut = cut_16_9(images.read_image(job["photo"]))
                frame_photo = images.resize(cut, FRAME)
                small_photo = images.resize(cut, images.scaled_size(*FRAME, 512))
                styles = [] if method_name.startswith("fast:") else [painting]
                base = {"method": label, "photo": job["photo"].name, "painting": job["painting"].stem}
                painting_colour = {"painting_saturation": quality.saturation(painting),
                                   "painting_spread": quality.brightness_spread(painting)}

                def paint(content: torch.Tensor, stroke_scale: float | None) -> tuple[torch.Tensor, float]:
                    request = methods.Request(size=None, model=job["model"], style_blend=job["weights"],
                                              stroke_scale=stroke_scale)
                    painter = method.prepare(styles, request)
                    with upsampling(getattr(painter, "engine", None), mode):
                        if method.one_pass:  # warm: the painting's code, the first call's allocations
                            painter.paint(content[..., :64, :64])
                        began = time.perf_counter()
                        image = painter.paint(content).image
                    return as_saved(image), time.perf_counter() - began

                def marks(image: torch.Tensor) -> dict:
                    sides = quality.frame_sides(image)
                    return {"lattice": quality.lattice_peak(image), "frame": quality.frame_score(image),
                            "frame_worst": max(sides.values(), key=abs), "saturation": quality.saturation(image),
                            "spread": quality.brightness_spread(image),
                            "colour": quality.colour_distance(image, painting)}

                if job["photo"].name not in photos_done:  # the photos themselves, for reference
                    photos_done.add(job["photo"].name)
                    for size_label, image in (("512", photo), ("1920x1080", frame_photo)):
                        rows.append({"method": "photo", "photo": job["photo"].name, "painting": "", "size": size_label,
                                     **marks(as_saved(image))})
                out_512, seconds = paint(photo, None)
                score = quality.score(out_512, photo, painting)
                rows.append({**base, "size": "512", **marks(out_512), **painting_colour, "style": score.style,
                             "content": score.content, "seconds": seconds})
                centre_512 = flattest(photo, CROP_512)
                row_pictures = [thumbnail(photo), thumbnail(painting_full), thumbnail(out_512),
                                crop(out_512, centre_512, CROP_512, 4)]
                if method_name != "neighbours" and not args.no_1080:
                    out_small, _ = paint(small_photo, None)
                    small_score = quality.score(out_small, small_photo, painting)
                    centre = flattest(frame_photo, CROP_1080)
                    variants = [("1920x1080", None)] + ([] if args.no_full else [("1920x1080 full-res", full_scale)])
                    for size_label, stroke_scale in variants:
                        out, seconds = paint(frame_photo, stroke_scale)
                        down = images.resize(out, small_photo.shape[-2:])
                        down_score = quality.score(down, small_photo, painting)
                        rows.append({**base, "size": size_label, **marks(out), **painting_colour,
                                     "style": down_score.style, "content": down_score.content,
                                     "style_vs_512": down_score.style / small_score.style,
                                     "content_vs_512": down_score.content / small_score.content, "seconds": seconds})
                        if stroke_scale is None:
                            row_pictures += [thumbnail(out), crop(out, centre, CROP_1080 * 4, 1),
                                             crop(out, centre, CROP_1080, 4)]
                        else:
                            row_pictures.append(crop(out, centre, CROP_1080, 4))
                sheet_rows.append(row_pictures)
                print(f"  {label}: {job['photo'].name} x {job['painting'].stem} done", file=sys.stderr, flush=True)
            columns = ["photo", "painting", "512 px", "512 px, 4x", "1920x1080", "1080p 1x crop", "1080p 4x",
                       "1080p full-res, 4x"]
            safe = "".join(c if c.isalnum() or c in "+-_." else "-" for c in label)  # a model given as a path too
            save_sheet(sheet_rows, columns[:max(len(r) for r in sheet_rows)],
                       f"{label}: crops of the photo's flattest area", args.out / f"marks-{safe}.jpg")

    summary = []
    for key in dict.fromkeys((row["method"], row["size"]) for row in rows):
        mine = [row for row in rows if (row["method"], row["size"]) == key]
        entry = {"method": key[0], "size": key[1], "pictures": len(mine),
                 "lattice_mean": statistics.mean(r["lattice"] for r in mine),
                 "lattice_max": max(r["lattice"] for r in mine),
                 "frame_mean": statistics.mean(r["frame"] for r in mine),
                 "frame_worst": max((r["frame_worst"] for r in mine), key=abs)}
        if key[0] != "photo":
            entry.update({
                "saturation_ratio": statistics.mean(r["saturation"] / r["painting_saturation"] for r in mine),
                "spread_ratio": statistics.mean(r["spread"] / r["painting_spread"] for r in mine),
                "colour": statistics.mean(r["colour"] for r in mine),
                "style": statistics.mean(r["style"] for r in mine),
                "content": statistics.mean(r["content"] for r in mine),
                "seconds": statistics.median(r["seconds"] for r in mine)})
            if "style_vs_512" in mine[0]:
                entry["style_vs_512"] = statistics.mean(r["style_vs_512"] for r in mine)
                entry["content_vs_512"] = statistics.mean(r["content_vs_512"] for r in mine)
        summary.append(entry)

    def number(entry: dict, key: str, digits: int = 2) -> str:
        return f"{entry[key]:.{digits}f}" if key in entry else ""

    print(f"\n### Machine marks: {args.pairs} held-out pairs (per-style models: each distinct photo)\n")
    print_table(["method", "size", "n", "lattice mean", "lattice max", "frame mean", "frame worst side",
                 "saturation / painting", "spread / painting", "colour distance", "style", "content", "style vs 512",
                 "content vs 512", "s / picture"],
                [[s["method"], s["size"], s["pictures"], f"{s['lattice_mean']:.2f}", f"{s['lattice_max']:.2f}",
                  f"{s['frame_mean']:.1f}", f"{s['frame_worst']:+.1f}", number(s, "saturation_ratio"),
                  number(s, "spread_ratio"), number(s, "colour", 1), number(s, "style", 4), number(s, "content", 3), number(s, "style_vs_512"),
                  number(s, "content_vs_512"), number(s, "seconds")] for s in summary])
    path = args.out / f"marks-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"rows": rows, "summary": summary, "upsample": args.upsample, "before": args.before},
                               indent=2))
    print(f"\nsheets and results: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
