import functools

import pytest
import torch

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.losses import gram_matrix
from impasto.engines.optimize import (
    Evaluator,
    StyleSettings,
    autocast,
    build_objective,
    get_backbone,
    prepare,
    resolve_device,
    run,
    stylize,
)

from helpers import gradient_photo, stripes

FAST = dict(size=48, precision="fp32", device="cpu")


def evaluate_terms(image, content, styles, settings):
    """The loss terms of ``image`` under ``settings``, in float32 (a common evaluator)."""
    device = torch.device("cpu")
    layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
    model = get_backbone(settings.backbone, settings.backbone_weights, settings.pooling, layers, device)
    content_t, style_ts = prepare(content, styles, settings, 16)
    cast = functools.partial(autocast, device, None)
    objective = build_objective(model, content_t, style_ts, settings, cast)
    pixels = images.resize(image, tuple(content_t.shape[-2:])).clone().requires_grad_(True)
    evaluator = Evaluator(model, objective, pixels, cast)
    evaluator()
    return evaluator.terms


def test_short_optimisation_lowers_content_and_style_loss():
    content, style = gradient_photo(), stripes()
    settings = StyleSettings(iterations=25, init="noise", seed=1, style_weight=0.1, **FAST)
    noise = torch.Generator().manual_seed(1)
    initial = (0.5 + 0.15 * torch.randn((1, 3, 36, 48), generator=noise)).clamp(0, 1)
    before = evaluate_terms(initial, content, [style], settings)
    result = run(content, [style], settings)
    after = evaluate_terms(result.image, content, [style], settings)
    assert result.iterations == 25 and result.stop_reason == "iterations"
    assert after["content"] < 0.9 * before["content"]
    assert after["style"] < 0.5 * before["style"]
    assert result.image.shape == (1, 3, 36, 48)
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert result.history[-1] < result.history[0]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs-device", "adam", "sgd", "rmsprop"])
def test_every_optimizer_lowers_the_loss(optimizer):
    result = run(gradient_photo(), [stripes()], StyleSettings(iterations=12, optimizer=optimizer, **FAST))
    assert result.stop_reason == "iterations"
    assert result.history[-1] < 0.8 * result.history[0]


@pytest.mark.slow
def test_style_blend_moves_result_toward_heavier_style():
    red = stripes(colours=((230, 20, 20), (120, 0, 0)))
    blue = stripes(colours=((20, 20, 230), (0, 0, 120)), vertical=False)
    content = gradient_photo()
    results = {}
    for blend in ((0.85, 0.15), (0.15, 0.85)):
        r = run(content, [red, blue], StyleSettings(iterations=30, style_blend=blend, style_weight=300, **FAST))
        results[blend] = r.image
    red_heavy, blue_heavy = results[(0.85, 0.15)], results[(0.15, 0.85)]
    only_red = StyleSettings(**FAST, style_weight=1, content_weight=0)
    loss_to_red = {k: evaluate_terms(v, content, [red], only_red)["style"] for k, v in results.items()}
    assert loss_to_red[(0.85, 0.15)] < loss_to_red[(0.15, 0.85)]
    # and in plain colour terms: more red than blue where red weighs more
    assert (red_heavy[0, 0] - red_heavy[0, 2]).mean() > (blue_heavy[0, 0] - blue_heavy[0, 2]).mean()


def test_tolerance_stops_early():
    result = run(gradient_photo(), [stripes()], StyleSettings(iterations=200, tolerance=0.5, patience=2, **FAST))
    assert result.stop_reason == "converged"
    assert result.iterations < 200


def test_non_finite_loss_keeps_last_good_image():
    settings = StyleSettings(iterations=20, optimizer="sgd", learning_rate=1e30, **FAST)
    result = run(gradient_photo(), [stripes()], settings)
    assert result.stop_reason == "non-finite"
    assert torch.isfinite(result.image).all()
    with pytest.raises(ImpastoError, match="NaN or infinite"):
        stylize(gradient_photo(), stripes(), iterations=20, optimizer="sgd", learning_rate=1e30, **FAST)


def test_interrupt_returns_the_current_image():
    seen = []

    def on_step(progress):
        seen.append(progress.image.clone())
        if progress.iteration == 3:
            raise KeyboardInterrupt

    result = run(gradient_photo(), [stripes()], StyleSettings(iterations=50, **FAST), on_step)
    assert result.stop_reason == "interrupted"
    assert result.iterations == 2
    assert torch.allclose(result.image, seen[-1].clamp(0, 1))


def test_init_options_and_seed():
    content = gradient_photo()
    a = run(content, [stripes()], StyleSettings(iterations=2, init="noise", seed=5, **FAST)).image
    b = run(content, [stripes()], StyleSettings(iterations=2, init="noise", seed=5, **FAST)).image
    c = run(content, [stripes()], StyleSettings(iterations=2, init="noise", seed=6, **FAST)).image
    assert torch.equal(a, b) and not torch.equal(a, c)
    from_image = run(content, [stripes()], StyleSettings(iterations=1, init=stripes(100), **FAST)).image
    assert from_image.shape == (1, 3, 36, 48)


def test_style_scale_changes_style_target_size():
    settings = StyleSettings(style_scale=0.5, **FAST)
    content_t, style_ts = prepare(gradient_photo(), [stripes(200)], settings, 16)
    assert max(content_t.shape[-2:]) == 48 and max(style_ts[0].shape[-2:]) == 24


def test_api_returns_pil_and_accepts_paths(tmp_path):
    content_path = tmp_path / "c.png"
    gradient_photo().save(content_path)
    out = stylize(content_path, stripes(), iterations=3, **FAST)
    assert out.size == (48, 36) and out.mode == "RGB"


@pytest.mark.parametrize(
    "options, message, parameter",
    [
        (dict(size=0), "size must be a positive", "size"),
        (dict(iterations=-1), "iterations must be a positive", "iterations"),
        (dict(style_layers=("relu1_1", "relu7_1")), "unknown layer 'relu7_1'", "style_layers"),
        (dict(content_layers=("nope",)), "unknown layer 'nope'", "content_layers"),
        (dict(optimizer="newton"), "unknown optimizer", "optimizer"),
        (dict(style_blend=(1, 2, 3)), "3 style blend weights given for 1 style", "style_blend"),
        (dict(style_layer_weights=(1.0,)), "1 style layer weights given for 5 style layers", "style_layer_weights"),
        (dict(content_weight=-1), "content weight must be a non-negative", "content_weight"),
        (dict(tile_size=10), "tile size must be at least", "tile_size"),
        (dict(ema=1.5), "ema decay", "ema"),
        (dict(init="missing.png"), "file not found", "init"),
        (dict(device="tpu"), "device", "device"),
    ],
)
def test_bad_settings_are_clear_errors_that_name_their_parameter(options, message, parameter):
    settings = StyleSettings(**{**FAST, **options})
    with pytest.raises(ImpastoError, match=message) as error:
        run(gradient_photo(), [stripes()], settings)
    assert error.value.parameter == parameter


def test_image_too_small_for_the_network():
    tiny = gradient_photo(12, 10)
    with pytest.raises(ImpastoError, match="smaller than the 16 px"):
        run(tiny, [stripes()], StyleSettings(size=12, **{k: v for k, v in FAST.items() if k != "size"}))
    # shallow layers need less
    ok = run(tiny, [stripes()], StyleSettings(size=12, iterations=2, content_layers=("relu1_1",),
                                              style_layers=("relu1_1", "relu2_1"), precision="fp32", device="cpu"))
    assert ok.image.shape == (1, 3, 10, 12)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_asked_but_absent():
    with pytest.raises(ImpastoError, match="CUDA was asked for but is not available"):
        resolve_device("cuda")


@pytest.mark.slow
def test_bf16_gives_the_same_quality():
    content, style = gradient_photo(), stripes()
    fp32 = run(content, [style], StyleSettings(iterations=15, size=48, precision="fp32"))
    bf16 = run(content, [style], StyleSettings(iterations=15, size=48, precision="bf16"))
    common = StyleSettings(**FAST)
    t32 = evaluate_terms(fp32.image, content, [style], common)["total"]
    t16 = evaluate_terms(bf16.image, content, [style], common)["total"]
    assert t16 < 1.3 * t32


def test_gram_targets_are_blended():
    settings = StyleSettings(style_blend=(1, 3), **FAST)
    device = torch.device("cpu")
    model = get_backbone("vgg19", "caffe", "max", ["relu4_2", "relu5_1"], device)
    content_t, styles = prepare(gradient_photo(), [stripes(), stripes(vertical=False)], settings, 16)
    objective = build_objective(model, content_t, styles, settings, lambda: __import__("contextlib").nullcontext())
    with torch.no_grad():
        g0 = gram_matrix(model(styles[0], ["relu3_1"])["relu3_1"])
        g1 = gram_matrix(model(styles[1], ["relu3_1"])["relu3_1"])
    assert len(objective.style_targets) == 1  # Gram targets blend into one
    assert torch.allclose(objective.style_targets[0].stats["relu3_1"], 0.25 * g0 + 0.75 * g1, rtol=1e-4, atol=1e-3)


def test_pyramid_plan():
    from impasto.engines.optimize import pyramid_plan

    assert pyramid_plan(512, 40) == [(256, 90), (362, 60), (512, 40)]
    assert pyramid_plan(300, 40) == [(300, 40)]
    assert pyramid_plan(2048, 10, levels=3) == [(1024, 22), (1448, 15), (2048, 10)]
    plan = pyramid_plan(2048, 10)
    assert plan[0][0] == 256 and plan[-1][0] == 2048 and len(plan) == 7
    assert [n for _, n in plan] == [22, 22, 22, 22, 22, 15, 10]  # coarse levels capped


def test_pyramid_runs_coarse_to_fine():
    seen = []
    settings = StyleSettings(size=64, pyramid_min=32, iterations=3, **{k: v for k, v in FAST.items() if k != "size"})
    result = run(gradient_photo(), [stripes()], settings, lambda p: seen.append((p.level, p.levels, tuple(p.image.shape[-2:]), p.iteration, p.iterations)))
    levels = sorted({s[0] for s in seen})
    assert levels == [1, 2, 3] and all(s[1] == 3 for s in seen)
    widths = [s[2][1] for s in seen]
    assert widths == sorted(widths) and widths[0] == 32 and widths[-1] == 64
    assert [s[3] for s in seen] == list(range(1, len(seen) + 1))  # iterations count across levels
    assert seen[-1][4] == 7 + 4 + 3
    assert result.image.shape == (1, 3, 48, 64)


def test_interrupt_in_a_coarse_level_still_gives_full_size():
    def on_step(progress):
        if progress.iteration == 2:
            raise KeyboardInterrupt

    settings = StyleSettings(size=64, pyramid_min=32, iterations=3, **{k: v for k, v in FAST.items() if k != "size"})
    result = run(gradient_photo(), [stripes()], settings, on_step)
    assert result.stop_reason == "interrupted" and result.image.shape == (1, 3, 48, 64)


def test_a_compiled_backbone_gives_the_eager_result(monkeypatch):
    from impasto.engines import optimize
    from impasto.core import runtime

    compiled = []
    monkeypatch.setattr(optimize, "compiled_network", lambda model: compiled.append(model) or runtime.compiled_network(model))
    shallow = dict(content_layers=("relu1_1",), style_layers=("relu1_1", "relu1_2"), iterations=4, pyramid=2,
                   pyramid_min=24, tolerance=0, **FAST)
    eager = run(gradient_photo(), [stripes()], StyleSettings(**shallow))
    fused = run(gradient_photo(), [stripes()], StyleSettings(compile=True, **shallow))
    assert len(compiled) == 1 and fused.iterations == eager.iterations
    torch.testing.assert_close(fused.image, eager.image, atol=1e-3, rtol=0)
