"""Make docs/gallery/dream_*.jpg and docs/dream.md: DeepDream from shallow to deep layers, and guided.

    .venv/bin/python docs/make_dream_gallery.py        # about half a minute on a 2-core CPU

Images the project can ship only: scikit-image's coffee photo; the guide is a built-in public-domain
painting (The Starry Night).
"""

from __future__ import annotations

import time
from pathlib import Path

from impasto.core import images
from impasto.engines.dream import DreamSettings, dream
from impasto.core.samples import paintings, sample_photo_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "gallery"
SIZE = 384
ROWS = [("relu2_1", None, "strokes and grain"), ("relu3_1", None, "ripples and swirls"),
        ("relu4_2", None, "eyes and arches (the default)"), ("relu5_1", None, "creatures"),
        ("relu3_1", "starry_night", "guided by The Starry Night: its blue dashes where the plain dream has ripples")]


def main() -> None:
    OUT.mkdir(exist_ok=True)
    photo = images.resize_max_side(images.read_image(sample_photo_path("coffee.png")), SIZE)
    images.save_image(photo, OUT / "dream_photo.jpg")
    lines = ["# DeepDream", "",
             "`impasto dream PHOTO -o OUT --layers LAYER [--guide IMAGE]`: the network grows what it sees. "
             f"Each row: the default 4 octaves x 10 iterations at {SIZE} px on this 2-core CPU "
             "(made by `docs/make_dream_gallery.py`).", "",
             "| layer | what grows | result | time |", "| --- | --- | --- | --- |",
             "| (photo) | scikit-image's coffee.png | ![photo](gallery/dream_photo.jpg) | |"]
    for layer, guide, words in ROWS:
        began = time.perf_counter()
        result = dream(photo, DreamSettings(layers={layer: 1.0}), guide=paintings()[guide] if guide else None)
        seconds = time.perf_counter() - began
        name = f"dream_{layer}" + (f"_{guide}" if guide else "")
        images.save_image(result.image, OUT / f"{name}.jpg")
        flag = f"`--layers {layer}`" + (f" `--guide {guide}`" if guide else "")
        lines.append(f"| {flag} | {words} | ![{name}](gallery/{name}.jpg) | {seconds:.1f} s |")
        print(name, f"{seconds:.1f} s")
    (HERE / "dream.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
