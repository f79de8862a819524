"""Make docs/gallery/*.png and docs/gallery.md: each artistic control beside the plain result.

    .venv/bin/python docs/make_gallery.py        # about 3 minutes on a 2-core CPU

Only images the project can ship: scikit-image's astronaut photo and the brushstroke styles
impasto paints itself (impasto.core.samples.painted_style), so the gallery can be rebuilt anywhere.
"""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image, ImageDraw

from impasto.core import images
from impasto.engines.optimize import StyleSettings, run
from impasto.core.samples import painted_style, sample_photo_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "gallery"
SIZE = 256


def half_mask(width: int, height: int, left: bool) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, width // 2, height) if left else (width // 2, 0, width, height), fill=255)
    return mask


def main() -> None:
    OUT.mkdir(exist_ok=True)
    photo = images.read_image(sample_photo_path("astronaut.png"))
    night, ember = painted_style(384), painted_style(384, seed=3, palette="ember")
    height, width = photo.shape[-2:]
    left = half_mask(width, height, left=True)
    right = half_mask(width, height, left=False)
    base = dict(size=SIZE, iterations=60)
    entries = [
        ("photo", "the content photo (scikit-image's astronaut.png)", None, None),
        ("style_night", "style: impasto's procedural brushstrokes, night palette", None, None),
        ("style_ember", "style: the same painter, ember palette (seed 3)", None, None),
        ("plain", "plain result: Gram loss, defaults", [night], {}),
        ("luminance", "--preserve-color luminance: the photo's colours, the style's brushwork", [night],
         {"preserve_color": "luminance"}),
        ("histogram", "--preserve-color histogram: style recoloured to the photo's palette first", [night],
         {"preserve_color": "histogram"}),
        ("strength_02", "--strength 0.2", [night], {"strength": 0.2}),
        ("strength_08", "--strength 0.8", [night], {"strength": 0.8}),
        ("mask_left", "--mask (left half white): style inside the mask only", [night], {"masks": [left]}),
        ("regional", "two styles, --mask for each: night on the left, ember on the right", [night, ember],
         {"masks": [left, right]}),
        ("blend", "--style-blend 1,1: both styles everywhere", [night, ember], {}),
        ("mean_std", "--style-loss mean_std", [night], {"style_loss": "mean_std"}),
        ("swd", "--style-loss swd (sliced Wasserstein, Adam)", [night], {"style_loss": "swd"}),
        ("style_scale_05", "--style-scale 0.5: finer brushwork", [night], {"style_scale": 0.5}),
    ]
    lines = [
        "# Gallery",
        "",
        f"Each control beside the plain result, {SIZE} px, 60 iterations at the output size, made by",
        "`docs/make_gallery.py` from images impasto can ship (scikit-image's `astronaut.png` and the",
        "brushstroke styles impasto paints itself).",
        "",
        "| image | what |",
        "| --- | --- |",
    ]
    for name, caption, styles, options in entries:
        path = OUT / f"{name}.png"
        started = time.perf_counter()
        if name == "photo":
            images.save_image(images.resize_max_side(photo, SIZE), path)
        elif name.startswith("style_") and styles is None:
            (night if name == "style_night" else ember).resize((SIZE, SIZE)).save(path)
        else:
            result = run(photo, styles, StyleSettings(**base, **options))
            images.save_image(result.image, path)
        print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
        lines.append(f"| ![{name}](gallery/{name}.png) | {caption} |")
    (HERE / "gallery.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
