"""Make docs/gallery/method_*.jpg and docs/methods.md: every registered method on the same photo.

    .venv/bin/python docs/make_methods_gallery.py        # about a minute on a 2-core CPU

The loop is over the method registry, so a new method gets its row by being registered.  Images the
project can ship only: scikit-image's astronaut photo and impasto's own brushstroke style; a method
whose styles live in its model uses the shipped `mosaic` model.
"""

from __future__ import annotations

import time
from pathlib import Path

from impasto.core import images
from impasto import methods
from impasto.core.modelfile import resolve_model
from impasto.core.samples import painted_style, sample_photo_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "gallery"
SIZE = 384


def main() -> None:
    OUT.mkdir(exist_ok=True)
    photo = images.read_image(sample_photo_path("astronaut.png"))
    night = painted_style(384)
    images.save_image(images.resize_max_side(photo, SIZE), OUT / "method_photo.jpg")
    images.save_image(night, OUT / "method_style.jpg")
    rows = [("method_photo", "the photo (scikit-image's astronaut.png)"),
            ("method_style", "the style: impasto's procedural brushstrokes, night palette")]
    for name in methods.names():
        method = methods.get(name)
        model = resolve_model("mosaic") if method.model_required else None
        styles = [night] if method.uses_styles else []
        began = time.perf_counter()
        result = method.prepare(styles, methods.Request(size=SIZE, model=model)).paint(photo)
        seconds = time.perf_counter() - began
        images.save_image(result.image, OUT / f"method_{name}.jpg")
        flags = f"--method {name}" if model is None else "--model mosaic (its own painting, not the style above)"
        rows.append((f"method_{name}", f"`{flags}`: {method.summary}; {seconds:.1f} s on this CPU"))
        print(f"{name}: {seconds:.1f} s")
    lines = [
        "# Every method on the same photo",
        "",
        f"{SIZE} px, each method's defaults, made by `docs/make_methods_gallery.py` (one row per registered",
        "method). Quality measured on unseen photo/painting pairs: BENCHMARKS.md; neural neighbours beside",
        "the optimisation method on those pairs (painting, photo, optimisation, neighbours):",
        "[neighbours-sheet.jpg](neighbours-sheet.jpg).",
        "",
        "| image | what |",
        "| --- | --- |",
        *[f"| ![{stem}](gallery/{stem}.jpg) | {text} |" for stem, text in rows],
        "",
    ]
    (HERE / "methods.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
