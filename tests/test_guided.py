"""Stroke scale (impasto.core.guided): the working size a one-pass network paints at, the guided
upsampling that brings the painting to the output size, and the methods that use them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import gradient_photo, stripes
from test_arbitrary import TINY, _tiny_network
from test_fast import _model_file

from impasto import methods
from impasto.core import guided, images
from impasto.core.errors import ImpastoError
from impasto.core.modelfile import ModelFile, save_model
from impasto.networks import arbitrary


@pytest.fixture(scope="module")
def tiny_arbitrary(tmp_path_factory):
    path = tmp_path_factory.mktemp("arbitrary") / "tiny.pt"
    save_model(path, ModelFile(kind=arbitrary.KIND, config=TINY, state_dict=_tiny_network().state_dict()))
    return path


@pytest.fixture(scope="module")
def tiny_fast(tmp_path_factory):
    return _model_file(tmp_path_factory.mktemp("fast") / "one.pt", width=0.125)


def _request(**changes) -> methods.Request:
    return dataclasses.replace(methods.Request(size=None, device="cpu", precision="fp32"), **changes)


def test_the_default_keeps_a_512_px_painting_and_a_scale_sets_the_working_side():
    assert guided.working_size(1080, 1920, None) == (288, 512)
    assert guided.working_size(300, 400, None) == (300, 400)  # up to 512 px: painted as it is
    assert guided.working_size(1080, 1920, 1.0) == (288, 512)
    assert guided.working_size(1080, 1920, 2.0) == (144, 256)  # strokes twice as large
    assert guided.working_size(300, 400, 0.5) == (768, 1024)  # finer than the output: painted larger
    assert guided.working_size(1080, 1920, 16.0) == (18, 32)


def test_paint_at_scale_paints_at_the_working_size_and_returns_the_output_size():
    seen = []

    def paint(photo):
        seen.append(tuple(photo.shape[-2:]))
        return 1.0 - photo

    photo = torch.rand(2, 3, 270, 480)
    for scale, working in ((None, (270, 480)), (2.0, (144, 256)), (0.5, (576, 1024))):
        out = guided.paint_at_scale(paint, photo, scale)
        assert seen[-1] == working
        assert out.shape == photo.shape and 0 <= out.min() and out.max() <= 1


def _step_photo(height=96, width=256, at=129):
    photo = torch.full((1, 3, height, width), 0.2)
    photo[..., at:] = 0.8
    return photo


def test_guided_upsampling_keeps_a_photo_step_edge_sharp():
    photo = _step_photo()
    small = images.resize(photo, (24, 64))  # a quarter of the size: the edge is one blurred pixel there
    painted = 1.0 - small  # a painting that follows the photo (inverted)
    guided_out = guided.guided_upsample(painted, small, photo)
    plain = guided.guided_upsample(painted, small, photo, detail=0.0)
    row = guided_out[0, 0, 48]
    assert row[:127].min() > 0.75 and row[131:].max() < 0.25  # the step within 2 px of the photo's
    assert torch.allclose(guided_out, 1.0 - photo, atol=0.06)
    # plain upsampling spreads it over several pixels
    assert (plain[0, 0, 48] - (1.0 - photo)[0, 0, 48]).abs().max() > 0.15


def test_guided_upsampling_keeps_the_paintings_own_texture_where_the_photo_is_flat():
    photo = torch.full((1, 3, 64, 64), 0.5)
    small = images.resize(photo, (16, 16))
    painted = torch.rand(1, 3, 16, 16)
    out = guided.guided_upsample(painted, small, photo)
    plain = guided.guided_upsample(painted, small, photo, detail=0.0)  # the painting upsampled as it is
    assert torch.allclose(out, plain, atol=1e-5)
    # brought back down to the working size, the strokes are still there (bilinear would soften them)
    bilinear = torch.nn.functional.interpolate(painted, size=(64, 64), mode="bilinear", align_corners=False)
    kept, softened = ((images.resize(x, (16, 16)) - painted).abs().mean() for x in (out, bilinear))
    assert kept < 0.8 * softened


@pytest.mark.parametrize("method", ["arbitrary", "adain", "fast"])
def test_each_one_pass_method_paints_at_the_working_size_and_returns_the_requested_size(method, tiny_arbitrary,
                                                                                       tiny_fast, monkeypatch):
    photo = images.pil_to_tensor(gradient_photo(180, 120))
    styles = [] if method == "fast" else [images.pil_to_tensor(stripes(64))]
    model = {"arbitrary": tiny_arbitrary, "fast": tiny_fast, "adain": None}[method]
    seen = []
    for scale in (None, 6.4, 0.8):  # the working long side: 180 (as it is), 80, 640
        painter = methods.get(method).prepare(styles, _request(model=model, stroke_scale=scale))
        engine = painter.engine
        original = type(engine).stylize

        def spy(content, *args, **kwargs):
            seen.append(tuple(content.shape[-2:]))
            return original(engine, content, *args, **kwargs)

        monkeypatch.setattr(engine, "stylize", spy)
        result = painter.paint(photo)
        monkeypatch.undo()
        assert result.image.shape == (1, 3, 120, 180)
        assert 0 <= result.image.min() and result.image.max() <= 1
    assert seen == [(120, 180), (53, 80), (427, 640)]


@pytest.mark.parametrize("method", ["arbitrary", "adain", "fast"])
def test_a_clips_frames_are_painted_at_the_stroke_scales_working_size(method, tiny_arbitrary, tiny_fast,
                                                                      monkeypatch):
    """`impasto video`'s path: the one-pass frame stylizer (each frame alone, and several in one
    call) honours the stroke scale, and a clip's recipe records it (a resumed clip must match it)."""
    frame = images.pil_to_tensor(gradient_photo(180, 120))
    styles = [] if method == "fast" else [images.pil_to_tensor(stripes(64))]
    model = {"arbitrary": tiny_arbitrary, "fast": tiny_fast, "adain": None}[method]
    recipes = []
    for scale in (None, 6.4):
        painter = methods.get(method).prepare(styles, _request(model=model, stroke_scale=scale))
        engine = painter.engine
        original = type(engine).stylize
        seen = []

        def spy(content, *args, **kwargs):
            seen.append(tuple(content.shape))
            return original(engine, content, *args, **kwargs)

        monkeypatch.setattr(engine, "stylize", spy)
        stylizer = painter.frames(methods.Temporal())
        first = stylizer(frame, [])
        later = stylizer(frame, [(first, torch.ones(1, 1, 120, 180))])
        batch = stylizer.paint_many([frame, frame])
        monkeypatch.undo()
        assert first.shape == later.shape == (1, 3, 120, 180) and [b.shape for b in batch] == [(1, 3, 120, 180)] * 2
        side = (120, 180) if scale is None else (53, 80)
        assert seen == [(1, 3, *side), (1, 3, *side), (2, 3, *side)]
        recipes.append(stylizer.recipe)
    assert recipes[0]["stroke_scale"] is None and recipes[1]["stroke_scale"] == 6.4


def test_adain_reads_its_styles_at_the_style_scale_of_the_working_size():
    painter = methods.get("adain").prepare([images.pil_to_tensor(stripes(64))], _request(stroke_scale=2.0))
    assert painter.style_side(1080, 1920) == 256
    assert painter.style_side(100, 120) == 256  # painted larger than the output
    default = methods.get("adain").prepare([images.pil_to_tensor(stripes(64))], _request())
    assert default.style_side(300, 400) == 400


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), 17.0, "2", True])
@pytest.mark.parametrize("method", ["arbitrary", "adain", "fast"])
def test_a_bad_stroke_scale_is_an_error_naming_the_parameter(method, value, tiny_arbitrary, tiny_fast):
    styles = [] if method == "fast" else [images.pil_to_tensor(stripes(64))]
    model = {"arbitrary": tiny_arbitrary, "fast": tiny_fast, "adain": None}[method]
    with pytest.raises(ImpastoError, match="stroke scale") as error:
        methods.get(method).prepare(styles, _request(model=model, stroke_scale=value))
    assert error.value.parameter == "stroke_scale"


def test_a_stroke_scale_past_the_pixel_limit_is_an_error_naming_it():
    with pytest.raises(ImpastoError, match="pixel limit") as error:
        guided.working_size(300, 400, 0.0625, max_pixels=1_000_000)
    assert error.value.parameter == "stroke_scale"


def test_upsampling_to_a_larger_picture_draws_no_lattice():
    """512 -> 1920 px (a ratio of 3.75): every output pixel as sharp as the next, so no regular
    pattern at the pixel lattice's periods (PyTorch's bicubic drew one at period 4)."""
    from impasto.core import quality
    from impasto.core.samples import paintings

    small = images.resize(images.read_image(paintings()["the_scream"]), (288, 512))  # long straight strokes
    up = guided._up(small, (1080, 1920)).clamp(0, 1)
    assert quality.lattice_peak((up * 255).round() / 255) < 3.0
