"""The studio's jobs without a browser: the same functions the page calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from helpers import gradient_photo, stripes

pytest.importorskip("gradio")
from impasto.studio import Studio, command_line, create  # noqa: E402


def _editor(mask: bool = False, flat: bool = False) -> dict:
    photo = np.asarray(gradient_photo(64, 48).convert("RGBA"))
    if flat:
        photo = np.full_like(photo, 128)
    layer = np.zeros_like(photo)
    if mask:
        layer[:, :32, 3] = 255
    return {"background": photo, "layers": [layer], "composite": photo}


def _run(studio, editor, styles, method="optimize", **options):
    args = dict(blend_text="", model=None, size=48, strength=0.5, iterations=6, alpha=1.0, style_mix_text="",
                preserve="none", use_mask=False)
    args.update(options)
    return list(create(studio, editor, styles, args["blend_text"], method, args["model"], args["size"],
                       args["strength"], args["iterations"], args["alpha"], args["style_mix_text"], args["preserve"],
                       args["use_mask"], [], "session"))


def test_optimise_job_streams_previews_and_ends_with_a_file(tmp_path):
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", preview_every=1)
    updates = _run(studio, _editor(), [str(style)])
    previews = [u[0] for u in updates if u[0] is not None]
    assert len(previews) >= 3
    final = updates[-1]
    assert final[2] is not None and "done" in final[1]
    assert final[3][0]["command"].startswith("impasto stylize content.png style.png -o result.png --size 48")


def test_stop_flag_ends_the_job_with_the_current_result(tmp_path):
    style = tmp_path / "style.png"
    stripes(48).save(style)
    studio = Studio(tmp_path / "work", preview_every=1)
    jobs = create(studio, _editor(), [str(style)], "", "optimize", None, 48, 0.5, 200, 1.0, "", "none", False, [], "s")
    for count, update in enumerate(jobs):
        if count == 3:
            threading.Timer(0, studio.stop_flag("s").set).start()
        last = update
    assert "stopped" in last[1] and last[2] is not None


@pytest.mark.parametrize("options, fragment", [
    (dict(use_mask=True), "paint where the style goes"),
    (dict(blend_text="1,x"), "blend weights must be numbers"),
    (dict(blend_text="1,2,3"), "give 1 non-negative blend weight"),
])
def test_mistakes_become_messages(tmp_path, options, fragment):
    import gradio as gr

    style = tmp_path / "style.png"
    stripes(48).save(style)
    with pytest.raises(gr.Error, match=fragment):
        _run(Studio(tmp_path / "work"), _editor(), [str(style)], **options)


def test_painted_mask_splits_two_styles(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    stripes(48, ((250, 0, 0), (250, 0, 0))).save(a)
    stripes(48, ((0, 0, 250), (0, 0, 250))).save(b)
    updates = _run(Studio(tmp_path / "work"), _editor(mask=True, flat=True), [str(a), str(b)], use_mask=True, iterations=15)
    from PIL import Image

    result = np.asarray(Image.open(updates[-1][2])).astype(float)
    left, right = result[:, :16], result[:, 32:]
    assert left[..., 0].mean() - left[..., 2].mean() > right[..., 0].mean() - right[..., 2].mean()
    assert "--mask mask.png --mask mask_inverse.png" in updates[-1][3][0]["command"]


def test_command_line_for_each_method():
    assert command_line("fast", [], {"size": 512, "model": "mosaic", "style_mix": [0.7, 0.3]}) == \
        "impasto stylize --model mosaic content.png -o result.png --size 512 --style-mix 0.7,0.3"
    adain = command_line("adain", ["a b.png"], {"size": 256, "alpha": 0.5, "preserve_color": "luminance"})
    assert adain == ("impasto stylize --method adain content.png 'a b.png' -o result.png --size 256 --alpha 0.5 "
                     "--preserve-color luminance")
