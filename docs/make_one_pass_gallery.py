"""Make docs/gallery/one_pass_*.png and docs/one-pass.md: the shipped models and AdaIN at work.

    .venv/bin/python docs/make_one_pass_gallery.py        # about 30 seconds on a 2-core CPU

The photo is scikit-image's astronaut; AdaIN's styles are the brushstroke styles impasto paints
itself, so the page can be rebuilt anywhere from what the package ships.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from impasto.core import images
from impasto import methods
from impasto.core.modelfile import shipped_models
from impasto.core.samples import painted_style, sample_photo_path

HERE = Path(__file__).resolve().parent
OUT = HERE / "gallery"
SIZE = 384


def _paint(method: str, photo: torch.Tensor, styles: list[torch.Tensor] = (), **request) -> torch.Tensor:
    return methods.stylize(method, photo, styles, methods.Request(size=SIZE, **request)).image


def main() -> None:
    OUT.mkdir(exist_ok=True)
    photo = images.resize_max_side(images.read_image(sample_photo_path("astronaut.png")), SIZE)
    night, ember = painted_style(384), painted_style(384, seed=3, palette="ember")
    entries: list[tuple[str, str, torch.Tensor]] = [("one_pass_photo", "the photo (scikit-image's astronaut.png)", photo)]
    for model in shipped_models():
        if model.kind != "fast":
            continue
        names = model.config["style_names"]
        if len(names) == 1:
            entries.append((f"one_pass_{model.path.stem}", f"`--model {model.path.stem}`", _paint("fast", photo, model=model.path)))
        else:
            for mix in ([1, 0], [0.5, 0.5], [0, 1]):
                label = ", ".join(f"{n} {w:g}" for n, w in zip(names, mix))
                tag = "_".join(f"{w:g}".replace(".", "") for w in mix)
                entries.append((f"one_pass_{model.path.stem}_{tag}", f"`--model {model.path.stem} --style-blend "
                                f"{','.join(f'{w:g}' for w in mix)}` ({label})",
                                _paint("fast", photo, model=model.path, weights=mix)))
    left = Image.new("L", (photo.shape[-1], photo.shape[-2]), 0)
    ImageDraw.Draw(left).rectangle((0, 0, photo.shape[-1] // 2, photo.shape[-2]), fill=255)
    right = Image.fromarray(255 - __import__("numpy").asarray(left))
    entries += [
        ("one_pass_adain_night", "`--method adain` with the night brushstroke style", _paint("adain", photo, [night])),
        ("one_pass_adain_ember_08", "`--method adain --strength 0.8`, ember style", _paint("adain", photo, [ember], strength=0.8)),
        ("one_pass_adain_blend", "`--method adain --style-blend 1,1`, night and ember",
         _paint("adain", photo, [night, ember], weights=[1, 1])),
        ("one_pass_adain_regions", "`--method adain --mask left --mask right`: night left, ember right",
         _paint("adain", photo, [night, ember], masks=[left, right])),
        ("one_pass_adain_luminance", "`--method adain --preserve-color luminance`, ember style",
         _paint("adain", photo, [ember], preserve_color="luminance")),
    ]
    lines = ["# One-pass methods", "",
             f"The shipped feed-forward models and AdaIN (shipped decoder) at {SIZE} px, made by",
             "`docs/make_one_pass_gallery.py`. These models were trained briefly on a CPU (see",
             "`src/impasto/models/PROVENANCE.md`); the optimisation method's results are in",
             "[gallery.md](gallery.md).", "", "| image | what |", "| --- | --- |"]
    for name, what, image in entries:
        images.save_image(image, OUT / f"{name}.jpg")
        lines.append(f"| ![{name}](gallery/{name}.jpg) | {what} |")
    (HERE / "one-pass.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
