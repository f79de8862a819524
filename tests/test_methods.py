"""The method interface: the registry, and one contract that every registered method keeps."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import gradient_photo, stripes

from impasto.core import images
from impasto import methods
from impasto.core.color import rgb_to_ycbcr
from impasto.core.errors import ImpastoError
from impasto.networks.fast import KIND
from impasto.networks.transformer import TransformerNet
from impasto.methods.neighbours import nearest_neighbours
from impasto.core.modelfile import ModelFile, resolve_model, save_model

#: a method made only for the tests (tests/palette_method.py): a new method is its file and this line
FIFTH = {"palette": "palette_method:Palette"}
NAMES = methods.names() + list(FIFTH)


@pytest.fixture(autouse=True)
def _fifth_method(monkeypatch):
    for name, where in FIFTH.items():
        monkeypatch.setitem(methods.REGISTRY, name, where)


@pytest.fixture(scope="module")
def two_style_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    config = {"styles": 2, "width": 0.25, "residual_blocks": 1, "style_names": ["a", "b"]}
    save_model(path, ModelFile(kind=KIND, config=config, state_dict=TransformerNet(2, 0.25, 1).state_dict()))
    return path


def _setup(name: str, model, count: int = 1, **changes):
    """(method, styles, request) for a tiny, quick run of the method called ``name``."""
    method = methods.get(name)
    styles = [images.pil_to_tensor(stripes(48, period=6 + 2 * k)) for k in range(count)] if method.uses_styles else []
    options = method.options(**method.quick_options) if method.options is not None else None
    request = methods.Request(size=40, model=model if method.model_required else None, device="cpu",
                              precision="fp32", options=options)
    return method, styles, dataclasses.replace(request, **changes)


def _photo(width: int = 53, height: int = 37) -> torch.Tensor:
    return images.pil_to_tensor(gradient_photo(width, height))


def test_the_registry_names_every_method_and_finds_a_models_method():
    assert {"optimize", "adain", "fast", "neighbours"} <= set(NAMES)
    assert methods.for_model(resolve_model("mosaic")).name == "fast"
    assert methods.choose(None, None).name == "optimize"
    with pytest.raises(ImpastoError) as error:
        methods.get("cubism")
    assert error.value.parameter == "method"
    with pytest.raises(ImpastoError, match="needs a trained model"):
        methods.choose("fast", None)


def test_the_request_owns_the_shared_options_and_no_method_repeats_one():
    shared = {field.name for field in dataclasses.fields(methods.Request)} - {"options"}
    for name in NAMES:
        options = methods.get(name).options
        if options is not None:
            assert not shared & {field.name for field in dataclasses.fields(options)}, name


def test_a_methods_own_settings_reach_the_command_line_without_an_edit_there():
    from impasto.cli import options_from, build_parser

    parser = build_parser()
    args = parser.parse_args(["stylize", "p.jpg", "s.jpg", "-o", "o.png", "--method", "palette",
                              "--palette-contrast", "0.5", "--iterations", "3"])
    assert options_from(methods.get("palette"), args) == methods.get("palette").options(contrast=0.5)
    # neighbours' own fields come from their generated flags, never from a flag of the same name
    # that means something else (video's --chunk: frames per cluster chunk)
    args = parser.parse_args(["video", "in.mp4", "-o", "o.mp4", "--method", "neighbours", "--style", "s.jpg",
                              "--neighbours-spread", "0.5", "--no-neighbours-colour-step", "-n", "3"])
    own = options_from(methods.get("neighbours"), args)
    assert (own.spread, own.colour_step, own.iterations) == (0.5, False, 3)
    assert own.chunk == methods.get("neighbours").options().chunk


def test_the_optimisation_engine_gets_the_requests_shared_options_and_the_methods_own():
    from impasto.methods.optimize import settings_for
    from impasto.engines.optimize import OptimizeSettings, StyleSettings

    own = OptimizeSettings(iterations=7, style_loss="swd")
    request = methods.Request(size=None, strength=0.3, style_blend=[1, 2], preserve_color="luminance", options=own)
    settings = settings_for(request, 300)
    assert (settings.size, settings.strength, settings.style_blend, settings.preserve_color) == (300, 0.3, [1, 2],
                                                                                                 "luminance")
    assert settings.own() == own
    # a whole StyleSettings as options gives only its own part: the request's shared options win
    assert settings_for(request, 300) == settings_for(dataclasses.replace(request, options=StyleSettings(
        iterations=7, style_loss="swd", size=64, strength=0.9)), 300)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("width, height, size", [(53, 37, None), (53, 37, 40), (200, 24, None), (37, 53, 41)])
def test_every_method_returns_the_requested_size_in_range(name, two_style_model, width, height, size):
    method, styles, request = _setup(name, two_style_model, size=size)
    result = method.prepare(styles, request).paint(_photo(width, height))
    expected = images.resize_max_side(_photo(width, height), size).shape
    assert result.image.shape == expected
    assert torch.isfinite(result.image).all() and 0 <= result.image.min() and result.image.max() <= 1
    assert result.stop_reason in ("done", "iterations", "converged")


@pytest.mark.parametrize("name", NAMES)
def test_a_photo_too_small_for_the_method_is_a_clear_error_or_works(name, two_style_model):
    method, styles, request = _setup(name, two_style_model, size=None)
    try:
        result = method.prepare(styles, request).paint(_photo(6, 5))
    except ImpastoError as error:
        assert "px" in str(error)
    else:
        assert result.image.shape[-2:] == (5, 6)


@pytest.mark.parametrize("name", NAMES)
def test_luminance_keeps_the_photos_colours_for_every_method(name, two_style_model):
    method, styles, request = _setup(name, two_style_model, preserve_color="luminance", size=None)
    photo = 0.2 + 0.6 * _photo()  # mid-tones: room for the style's brightness without clamping
    result = method.prepare(styles, request).paint(photo).image
    chroma = rgb_to_ycbcr(result)[:, 1:]
    inside = ((result > 0.02) & (result < 0.98)).all(dim=1, keepdim=True).expand_as(chroma)  # not clamped
    assert inside.float().mean() > 0.3
    # the result's colours are the photo's where clamping to [0, 1] did not change them
    assert (chroma - rgb_to_ycbcr(photo)[:, 1:]).abs()[inside].mean() < 0.01


@pytest.mark.parametrize("name", [n for n in NAMES if n != "fast"])  # fast: no painting, its styles are built in
def test_a_dark_painting_does_not_darken_the_photo_under_luminance(name, two_style_model):
    """One colour policy (impasto.core.color): every method learns from the paintings brightness-matched
    to the photo, then keeps the photo's colours."""
    method, _, request = _setup(name, two_style_model, size=None)
    dark = [images.pil_to_tensor(stripes(48, period=6, colours=((40, 30, 60), (10, 5, 20))))]
    photo = 0.3 + 0.5 * _photo(128, 96)
    brightness = {}
    for mode in ("none", "luminance"):
        painted = method.prepare(dark, dataclasses.replace(request, preserve_color=mode)).paint(photo).image
        brightness[mode] = float(rgb_to_ycbcr(painted)[:, :1].mean())
    target = float(rgb_to_ycbcr(photo)[:, :1].mean())
    # the networks darken a photo painted in near-black stripes by 0.41-0.44; matched, at most 0.23
    assert abs(brightness["luminance"] - target) <= 0.6 * abs(brightness["none"] - target) + 0.01, (brightness, target)


@pytest.mark.parametrize("name", NAMES)
def test_strength_zero_is_as_near_the_photo_as_the_method_goes(name, two_style_model):
    """0 = the photo (AdaIN: the decoder's picture of the photo's own features), 1 = the full style."""
    photo = _photo()
    distance = {}
    for strength in (0.0, 1.0):
        method, styles, request = _setup(name, two_style_model, strength=strength, size=None)
        distance[strength] = float((method.prepare(styles, request).paint(photo).image - photo).abs().mean())
    assert distance[0.0] < distance[1.0], distance
    if name != "adain":
        assert distance[0.0] < min(0.03, 0.5 * distance[1.0]), distance


@pytest.mark.parametrize("name", NAMES)
def test_blend_weights_work_and_a_wrong_count_names_the_parameter(name, two_style_model):
    method, styles, request = _setup(name, two_style_model, count=2, style_blend=[3.0, 1.0])
    assert method.prepare(styles, request).paint(_photo()).image.shape[-1] == 40
    for weights in ([1.0, 1.0, 1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(ImpastoError) as error:
            method.prepare(styles, dataclasses.replace(request, style_blend=weights)).paint(_photo())
        assert error.value.parameter == "style_blend", (weights, str(error.value))


@pytest.mark.parametrize("name", NAMES)
def test_masks_give_each_style_its_region_or_are_refused_by_name(name, two_style_model):
    left = torch.zeros(1, 1, 37, 53)
    left[..., :26] = 1.0
    method, styles, request = _setup(name, two_style_model, count=2, masks=[left, 1.0 - left])
    if not method.uses_styles:
        with pytest.raises(ImpastoError) as error:
            method.prepare(styles, request)
        assert error.value.parameter == "masks"
        return
    result = method.prepare(styles, request).paint(_photo()).image
    assert result.shape[-1] == 40
    with pytest.raises(ImpastoError) as error:
        method.prepare(styles, dataclasses.replace(request, masks=[left]))
    assert error.value.parameter == "masks"


@pytest.mark.parametrize("name", NAMES)
def test_a_stop_from_the_step_callback_returns_the_image_so_far(name, two_style_model):
    method, styles, request = _setup(name, two_style_model)

    def stop(progress: methods.Progress) -> None:
        assert progress.image.shape[-1] > 0 and progress.iterations >= progress.iteration >= 1
        raise KeyboardInterrupt

    result = method.prepare(styles, request).paint(_photo(), stop)
    assert result.stop_reason == "interrupted"
    assert result.image.shape[-1] == 40 and torch.isfinite(result.image).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("change, parameter", [
    (dict(strength=1.5), "strength"), (dict(size=0), "size"), (dict(preserve_color="sepia"), "preserve_color"),
    (dict(style_scale=-1.0), "style_scale"), (dict(max_pixels=0), "max_pixels"),
])
def test_a_bad_value_of_a_shared_option_is_the_same_error_for_every_method(name, two_style_model, change, parameter):
    method, styles, request = _setup(name, two_style_model, **change)
    with pytest.raises(ImpastoError) as error:
        method.prepare(styles, request)
    assert error.value.parameter == parameter


@pytest.mark.parametrize("name", NAMES)
def test_styles_where_the_method_takes_none_or_none_where_it_needs_them(name, two_style_model):
    method, styles, request = _setup(name, two_style_model)
    wrong = [] if method.uses_styles else [images.pil_to_tensor(stripes(32))]
    with pytest.raises(ImpastoError) as error:
        method.prepare(wrong, request)
    assert error.value.parameter == "styles"


@pytest.mark.parametrize("name", NAMES)
def test_a_prepared_painter_paints_many_photos_alike(name, two_style_model):
    """A batch prepares once; the same photo twice gives the same picture."""
    method, styles, request = _setup(name, two_style_model)
    painter = method.prepare(styles, request)
    first, other, again = painter.paint(_photo()), painter.paint(_photo(40, 40)), painter.paint(_photo())
    torch.testing.assert_close(first.image, again.image)
    assert other.image.shape[-2:] == (40, 40)


@pytest.mark.parametrize("name", NAMES)
def test_paint_many_paints_each_photo_as_paint_does(name, two_style_model):
    method, styles, request = _setup(name, two_style_model)
    painter = method.prepare(styles, request)
    photos = [request.load(_photo()), request.load(_photo().flip(-1))]
    for one, many in zip(photos, painter.paint_many(photos)):
        torch.testing.assert_close(many, painter.paint(one).image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_every_method_stylizes_video_frames_with_a_recipe(name, two_style_model):
    method, styles, request = _setup(name, two_style_model, size=None)
    stylizer = method.prepare(styles, request).frames(methods.Temporal(iterations=1))
    frame = _photo(32, 24)
    first = stylizer(frame, [])
    second = stylizer(frame, [(first, torch.ones(1, 1, 24, 32))])
    assert first.shape == second.shape == frame.shape
    assert stylizer.name == name and isinstance(stylizer.recipe, dict) and stylizer.recipe


# ---------------------------------------------------------------------------- the neighbour search


def test_the_nearest_neighbour_search_is_exact_on_tiny_features():
    keys = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.7, 0.7]]), dim=1)
    queries = torch.nn.functional.normalize(torch.tensor([[0.9, 0.1], [0.1, 0.9], [-1.0, 0.2], [1.0, 1.0]]), dim=1)
    assert nearest_neighbours(queries, keys).tolist() == [0, 1, 2, 3]
    tie = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert nearest_neighbours(torch.tensor([[1.0, 0.0]]), tie, chunk=1).tolist() == [0]  # ties: the first


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_a_chunked_search_finds_what_the_whole_search_finds(chunk):
    generator = torch.Generator().manual_seed(3)
    queries = torch.nn.functional.normalize(torch.randn(57, 16, generator=generator), dim=1)
    keys = torch.nn.functional.normalize(torch.randn(43, 16, generator=generator), dim=1)
    whole = (queries @ keys.T).argmax(dim=1)
    assert torch.equal(nearest_neighbours(queries, keys, chunk=chunk), whole)


def test_neighbours_takes_the_styles_texture_where_the_gram_loss_is_not_asked_for():
    """Every cell of the result's target is a style cell: a striped style gives a striped result."""
    method, styles, request = _setup("neighbours", None, size=None)
    request = dataclasses.replace(request, options=method.options(iterations=30, pyramid_min=1 << 20))
    photo = torch.full((1, 3, 48, 48), 0.5)
    result = method.prepare(styles, request).paint(photo).image
    columns = result.mean(dim=(1, 2))[0]  # stripes are vertical: column means vary, the grey photo's do not
    assert columns.std() > 0.05


# ----------------------------------------------------------------------- through the command line


@pytest.mark.parametrize("name", ["optimize", "adain", "neighbours"])
def test_every_method_stylizes_a_folder_and_resumes_it(capsys, tmp_path, name):
    from helpers import image_folder, one_error_line, run_cli

    photos = image_folder(tmp_path / "photos", 3, size=40)
    style = tmp_path / "style.png"
    stripes(48).save(style)
    out = tmp_path / "out"
    common = ["stylize", "--method", name, photos, style, "-o", out, "-s", 32, "-n", 2, "--device", "cpu",
              "--precision", "fp32", "-q"]
    code, _, err = run_cli(capsys, *common)
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 3 and all(max(images.image_size(out / n)) == 32 for n in written)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / written[0]).unlink()
    code, _, err = run_cli(capsys, *common, "--skip-existing")
    assert code == 0 and sorted(p.name for p in out.iterdir()) == written
    assert all((out / n).stat().st_mtime_ns == stamps[n] for n in written[1:])  # the others left alone
    code, _, err = run_cli(capsys, *common[:-1], "--style-blend", "1,2")
    assert code == 2 and "--style-blend" in one_error_line(err)


def test_neighbours_from_the_command_line_and_for_a_clip(capsys, tmp_path):
    from helpers import run_cli
    from PIL import Image

    photo, style = tmp_path / "photo.png", tmp_path / "style.png"
    gradient_photo(64, 48).save(photo)
    stripes(48).save(style)
    code, _, err = run_cli(capsys, "stylize", "--method", "neighbours", photo, style, "-o", tmp_path / "o.png",
                           "-s", 48, "-n", 3, "--strength", 0.9, "--device", "cpu")
    assert code == 0 and "neighbours, " in err and Image.open(tmp_path / "o.png").size == (48, 36)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        gradient_photo(48 + 0, 32).rotate(i).save(frames / f"f{i:03d}.png")
    code, _, err = run_cli(capsys, "video", frames, "-o", tmp_path / "out", "--method", "neighbours", "--style", style,
                           "-s", 48, "-n", 2, "--frame-iterations", 2, "--device", "cpu", "-q")
    assert code == 0, err
    assert len(list((tmp_path / "out").glob("*.png"))) == 3
