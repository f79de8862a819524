"""Frozen networks with their weights in the compute dtype (the GPU path), exercised here in bf16 on
the CPU: they must paint what autocast paints, and leave the shared float32 backbone alone."""

import contextlib
import functools

import pytest
import torch

from impasto.networks import adain, fast
from impasto.core import images, runtime
from impasto.engines import optimize
from impasto.engines.optimize import StyleSettings, run

from helpers import gradient_photo, stripes
from test_fast import _model_file


@pytest.fixture()
def weights_in_bf16(monkeypatch):
    """Take the GPU's path (weights converted once, no autocast) on this CPU."""
    def on_every_device(device, dtype, gradients=False):
        return dtype is not None

    for module in (runtime, fast, adain):
        monkeypatch.setattr(module, "weights_in_compute_dtype", on_every_device)
    runtime._ENGINES.clear()
    yield
    runtime._ENGINES.clear()


def test_networks_that_only_paint_convert_weights_and_a_cpu_keeps_autocast_for_gradients():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert runtime.weights_in_compute_dtype(cuda, torch.bfloat16)
    assert runtime.weights_in_compute_dtype(cuda, torch.float16, gradients=True)
    assert not runtime.weights_in_compute_dtype(cuda, None)
    assert runtime.weights_in_compute_dtype(cpu, torch.bfloat16)
    assert not runtime.weights_in_compute_dtype(cpu, torch.bfloat16, gradients=True)
    assert not runtime.weights_in_compute_dtype(cpu, None)


def test_the_backbone_copy_keeps_the_shared_network_in_float32(vgg, weights_in_bf16):
    model, cast = runtime.frozen_network(vgg, torch.device("cpu"), torch.bfloat16)
    assert model is not vgg and model is runtime.frozen_network(vgg, torch.device("cpu"), torch.bfloat16)[0]
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in vgg.parameters())
    image = images.as_tensor(gradient_photo())
    with torch.no_grad(), cast():
        converted = model(image, ["relu3_1"])["relu3_1"].float()
    with torch.no_grad(), runtime.autocast(torch.device("cpu"), torch.bfloat16):
        autocast = vgg(image, ["relu3_1"])["relu3_1"].float()
    assert (converted - autocast).abs().mean() < 0.02 * autocast.abs().mean()


@pytest.mark.slow
def test_the_optimisation_method_runs_the_converted_backbone_whose_gradient_agrees(vgg, weights_in_bf16, monkeypatch):
    used = []
    original = optimize.frozen_network
    monkeypatch.setattr(optimize, "frozen_network", lambda *a, **k: used.append(original(*a, **k)) or used[-1])
    settings = StyleSettings(size=48, iterations=2, precision="bf16", device="cpu", pyramid=1)
    assert run(gradient_photo(), [stripes()], settings).stop_reason == "iterations"
    model, _ = used[0]
    assert next(model.parameters()).dtype == torch.bfloat16

    def gradient(network, cast):
        content, styles = optimize.prepare(gradient_photo(), [stripes()], settings, 16)
        objective = optimize.build_objective(network, content, styles, settings, cast)
        pixels = content.clone().requires_grad_(True)
        optimize.Evaluator(network, objective, pixels, cast)()
        return pixels.grad.flatten()

    def gradient_agreement(network, cast):
        return torch.nn.functional.cosine_similarity(gradient(network, cast), exact, dim=0)

    exact = gradient(vgg, contextlib.nullcontext)  # float32
    autocast = gradient_agreement(vgg, functools.partial(runtime.autocast, torch.device("cpu"), torch.bfloat16))
    converted = gradient_agreement(model, contextlib.nullcontext)
    # bf16 arithmetic either way (measured: cosine 0.94 converted, 0.96 autocast to the float32 gradient)
    assert converted > 0.9 and converted > autocast - 0.05


def test_one_pass_networks_paint_the_same_with_converted_weights(tmp_path, weights_in_bf16, monkeypatch):
    path = _model_file(tmp_path / "m.pt")
    photo = images.as_tensor(gradient_photo())
    converted = fast.FastModel(path, "cpu", "bf16")
    assert converted.network.out.weight.dtype == torch.bfloat16 and converted.dtype is None
    adain_converted = adain.AdaIN(None, "cpu", "bf16")
    assert next(adain_converted.decoder.parameters()).dtype == torch.bfloat16
    fast_out = converted.stylize(photo)
    code = adain_converted.style_code(images.as_tensor(stripes()))
    adain_out = adain_converted.stylize(photo, [code])
    for module in (runtime, fast, adain):
        monkeypatch.setattr(module, "weights_in_compute_dtype", lambda device, dtype, gradients=False: False)
    reference = fast.FastModel(path, "cpu", "bf16")
    assert reference.network.out.weight.dtype == torch.float32
    adain_reference = adain.AdaIN(None, "cpu", "bf16")
    assert (fast_out - reference.stylize(photo)).abs().mean() < 0.01
    assert (adain_out - adain_reference.stylize(photo, [adain_reference.style_code(images.as_tensor(stripes()))])).abs().mean() < 0.02
    assert fast_out.dtype == adain_out.dtype == torch.float32


def test_to_device_on_the_cpu_is_a_plain_copy():
    image = torch.rand(1, 3, 8, 8)
    moved = runtime.to_device(image, torch.device("cpu"), torch.bfloat16)
    assert moved.dtype == torch.bfloat16 and torch.allclose(moved.float(), image, atol=1e-2)
