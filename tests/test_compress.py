"""Compression of feed-forward models: pruned channels (then distilled) and int8."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from helpers import gradient_photo, stripes
from impasto.networks import compress as compress_module
from impasto.networks import int8 as int8_module
from impasto.networks import fast, transformer
from impasto.networks import export
from impasto.core import images, quality
from impasto.networks.compress import DISTILL_SETTINGS, DistillTask, calibrate_int8, compress, conv_macs, prune
from impasto.networks.int8 import INT8_RECIPE, FrozenNet, load_int8
from impasto.networks.int8_graph import _pad_channels_last
from impasto.core.errors import ImpastoError
from impasto.core.modelfile import ModelFile, load_model, save_model

PHOTO = images.pil_to_tensor(gradient_photo(96, 72))


def _trained_like(styles: int = 1, width: float = 0.5, seed: int = 0) -> transformer.TransformerNet:
    """A network with varied norm scales (as training leaves them), so channel importance differs."""
    torch.manual_seed(seed)
    net = transformer.TransformerNet(styles, width, output="direct")
    for module in net.modules():
        if isinstance(module, transformer.ConditionalInstanceNorm):
            module.scale.data = torch.rand_like(module.scale) * 2
            module.shift.data = torch.randn_like(module.shift) * 0.2
    net.out.weight.data *= 3
    return net


def _no_timing(float_model, int8_file, mix, **_):
    """In place of compress's timing (fresh processes, seconds): a record that chooses int8 here."""
    return {"cpu": int8_module.cpu_kind(), "float_precision": int8_module.float_precision(), "side": 512,
            "float_start_s": 1.0, "float_s": 0.2, "int8_start_s": 0.9, "int8_s": 0.1, "choice": "int8"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "small.pt"
    net = _trained_like(styles=2)
    config = {"styles": 2, "width": 0.5, "residual_blocks": 5, "output": "direct", "upsample": "nearest",
              "style_names": ["a", "b"]}
    save_model(path, ModelFile(kind="fast", config=config, state_dict=net.state_dict()))
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for k in range(6):
        gradient_photo(120 + 8 * k, 96).rotate(60 * k).save(folder / f"p{k}.png")
    stripes(96).save(folder / "stripes.png")
    return folder


@pytest.mark.slow
def test_pruning_keeps_the_most_important_channels_and_cuts_the_work():
    net = _trained_like().eval()
    half = prune(net, 0.7).eval()
    assert conv_macs(half, 64, 64) < 0.55 * conv_macs(net, 64, 64)
    assert half(PHOTO).shape == PHOTO.shape
    everything = prune(net, 1.0).eval()  # keeping every channel is the same network
    with torch.no_grad():
        assert torch.allclose(everything(PHOTO), net(PHOTO), atol=1e-5)
    important = net.blocks[0].first.norm.scale.detach().abs().mean(0)
    kept = prune(net, 0.5).blocks[0].first.norm.scale.detach().abs().mean(0)
    assert float(kept.min()) >= float(torch.sort(important).values[len(important) // 2 - 1])


@pytest.mark.train
def test_a_pruned_model_is_distilled_toward_the_original_and_is_an_ordinary_model(model_file, photos, tmp_path):
    import dataclasses

    teacher = fast.FastModel(model_file, precision="fp32")
    settings = dataclasses.replace(DISTILL_SETTINGS, steps=1, checkpoint_every=1000)
    untrained, _ = compress(model_file, tmp_path / "one.pt", photos, remove=0.5, settings=settings, texture_weight=0)
    trained, how = compress(model_file, tmp_path / "half.pt", photos, remove=0.5,
                            settings=dataclasses.replace(settings, steps=150), crop=64, texture_weight=0)
    assert how == "done" and not (tmp_path / "half.pt.ckpt").exists()  # finished: no checkpoint left
    reference = teacher.stylize(PHOTO)

    def error(path) -> float:
        return float((fast.FastModel(path, precision="fp32").stylize(PHOTO) - reference).abs().mean())

    assert error(trained) < 0.8 * error(untrained)
    small = fast.FastModel(trained, precision="fp32")
    assert conv_macs(small.network.float(), 64, 64) <= 0.55 * conv_macs(teacher.network.float(), 64, 64)
    export.export(trained, tmp_path / "half.onnx", size=64)  # an ordinary model: it exports
    assert (tmp_path / "half.onnx").stat().st_size > 0


def test_the_distillation_texture_term_compares_the_two_paintings_features():
    import random

    from impasto.networks.training import ImageFolder

    teacher = _trained_like(styles=1)
    folder = ImageFolder.__new__(ImageFolder)  # two fixed photos instead of a folder
    photos = torch.stack([PHOTO[0, :, :64, :64], PHOTO[0, :, 8:72, 16:80]])
    folder.sample = lambda count, rng: photos[:count]
    cpu = torch.device("cpu")

    def terms(student: transformer.TransformerNet) -> dict[str, torch.Tensor]:
        task = DistillTask(teacher, student, folder, {}, "teacher", texture_weight=0.3)
        return task.losses(student, 2, random.Random(0), cpu, None)

    same = terms(copy.deepcopy(teacher).requires_grad_(True))
    assert float(same["l1"]) < 1e-6 and float(same["texture"]) < 1e-6  # the original's own painting: nothing to learn
    student = prune(teacher, 0.5)
    other = terms(student)
    assert float(other["texture"]) > 0 and float(other["total"].detach()) > float(other["l1"])
    other["total"].backward()
    assert student.down[0].conv.weight.grad.abs().sum() > 0
    assert "texture" not in DistillTask(teacher, student, folder, {}, "t", texture_weight=0).losses(student, 2, random.Random(0), cpu, None)


@pytest.mark.slow
def test_int8_stays_close_to_the_float_model_in_style(model_file, photos, tmp_path, monkeypatch):
    monkeypatch.setattr(compress_module, "measure_startup", _no_timing)
    path, how = compress(model_file, tmp_path / "int8.pt", photos, int8=True, weights=[0.0, 1.0])
    assert how == "done"
    monkeypatch.setattr(int8_module, "int8_pays", lambda config: True)  # the int8 network, whatever this CPU
    small = fast.FastModel(path)
    assert small.quantized and small.int8
    float_model = fast.FastModel(model_file, precision="fp32")
    ours, theirs = small.stylize(PHOTO, [0.0, 1.0]), float_model.stylize(PHOTO, [0.0, 1.0])
    assert ours.shape == PHOTO.shape and float((ours - theirs).abs().mean()) < 0.1  # a real model: ~0.045
    style = images.pil_to_tensor(stripes(96))
    distance = quality.score(ours, PHOTO, style).style
    assert abs(distance - quality.score(theirs, PHOTO, style).style) < 0.1 * quality.score(theirs, PHOTO, style).style
    with pytest.raises(ImpastoError, match="blend built in"):
        small.stylize(PHOTO, [1.0, 0.0])
    with pytest.raises(ImpastoError, match="int8 -o SMALL.onnx"):
        export.export(path, tmp_path / "int8.onnx")


@pytest.mark.slow
def test_int8_keeps_the_full_resolution_ends_in_float_and_loads_the_older_all_int8_files(photos):
    net = _trained_like(styles=1).eval()
    files = sorted(photos.iterdir())
    config = {"styles": 1, "width": 0.5, "residual_blocks": 5, "output": "direct", "upsample": "nearest"}
    engine = torch.backends.quantized.engine
    mixed, _ = load_int8(net, calibrate_int8(net, [1.0], files), {**config, "quantized": INT8_RECIPE}, None)
    assert torch.backends.quantized.engine == engine  # the engine is only borrowed while weights are packed
    kinds = {name: type(module) for name, module in mixed.named_modules()}
    assert kinds["down.0.0"] is torch.nn.Conv2d and kinds["up.1.2.norm"] is torch.nn.InstanceNorm2d  # float
    assert kinds["down.1.0"] is not torch.nn.Conv2d and kinds["up.1.1"] is not torch.nn.Conv2d  # int8
    assert kinds["blocks.0.0.1"] is not torch.nn.InstanceNorm2d and kinds["out"] is not torch.nn.Conv2d
    older, _ = load_int8(net, calibrate_int8(net, [1.0], files, recipe="int8-x86"),
                         {**config, "quantized": "int8-x86"}, None)
    assert type(dict(older.named_modules())["down.0.0"]) is not torch.nn.Conv2d  # every layer int8
    with torch.no_grad():
        reference = FrozenNet(net, [1.0])(PHOTO)
        for network in (mixed, older):
            assert float((network(PHOTO) - reference).abs().mean()) < 0.1
    with pytest.raises(ImpastoError, match="unknown quantisation 'int4'"):
        load_int8(net, {}, {**config, "quantized": "int4"}, None)


@pytest.mark.parametrize("pad", [1, 4])
def test_int8_padding_is_the_reflection_pad_written_channels_last(pad):
    torch.manual_seed(pad)
    image = torch.quantize_per_tensor(torch.rand(1, 8, 11, 13), 1 / 255, 0, torch.quint8)
    padded = _pad_channels_last(image, pad)
    assert padded.is_contiguous(memory_format=torch.channels_last) and padded.q_scale() == image.q_scale()
    assert torch.equal(padded.int_repr(), torch.nn.functional.pad(image.int_repr().float(), (pad,) * 4,
                                                                 mode="reflect").to(torch.uint8))


def test_the_frozen_network_is_the_original_with_its_blend():
    net = _trained_like(styles=2).eval()
    with torch.no_grad():
        assert torch.allclose(FrozenNet(net, [0.25, 0.75])(PHOTO), net(PHOTO, torch.tensor([0.25, 0.75])), atol=1e-5)


@pytest.mark.slow
def test_the_command_compresses_and_the_result_runs_from_stylize(model_file, photos, tmp_path):
    small = tmp_path / "small8.pt"
    run = subprocess.run([sys.executable, "-m", "impasto", "compress", str(model_file), "-o", str(small), "--int8",
                          "--photos", str(photos)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "int8" in run.stderr
    timing = load_model(small).config["int8_timing"]  # both timed in fresh processes, as stylize runs them
    assert timing["cpu"] == int8_module.cpu_kind() and timing["float_precision"] == int8_module.float_precision()
    assert all(timing[key] > 0 for key in ("int8_s", "float_s", "int8_start_s", "float_start_s"))
    margin = timing["margin"]  # int8 only where clearly faster, for one photo and per photo after it
    assert margin == compress_module.INT8_MARGIN
    assert timing["choice"] == ("int8" if timing["int8_s"] <= margin * timing["float_s"]
                                and timing["int8_start_s"] <= margin * timing["float_start_s"] else "float")
    assert fast.FastModel(small, device="cpu").int8 == (timing["choice"] == "int8")
    gradient_photo(64, 48).save(tmp_path / "photo.png")
    styled = subprocess.run([sys.executable, "-m", "impasto", "stylize", "--model", str(small),
                             str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png")], capture_output=True, text=True)
    assert styled.returncode == 0, styled.stderr
    nothing = subprocess.run([sys.executable, "-m", "impasto", "compress", str(model_file), "-o", str(tmp_path / "x.pt"),
                              "--photos", str(photos)], capture_output=True, text=True)
    assert nothing.returncode == 2 and "choose --int8" in nothing.stderr and nothing.stderr.count("\n") == 1


@pytest.mark.slow
def test_your_own_int8_model_is_used_by_name_in_video_and_the_studio(model_file, photos, tmp_path, monkeypatch):
    from test_video import make_clip, moving_frames

    from impasto.cli import main
    from impasto.core.modelfile import resolve_model
    from impasto.studio import Studio, model_previews

    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv("IMPASTO_MODELS", str(mine))
    monkeypatch.setattr(compress_module, "measure_startup", _no_timing)
    compress(model_file, mine / "tiny-int8.pt", photos, int8=True)
    assert resolve_model("tiny-int8") == mine / "tiny-int8.pt"
    labels = [label for _, label in model_previews(Studio(tmp_path / "studio"))]
    assert any(label.startswith("tiny-int8") for label in labels)
    clip = make_clip(tmp_path / "clip.mp4", moving_frames(4, 64, 48), audio=False)
    assert main(["video", str(clip), "-o", str(tmp_path / "out"), "--model", "tiny-int8", "-q"]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


@pytest.mark.slow
def test_int8_for_onnx_runtime_is_written_when_the_output_is_onnx(model_file, photos, tmp_path):
    import numpy as np

    ort = pytest.importorskip("onnxruntime")
    path, how = compress(model_file, tmp_path / "tiny-int8.onnx", photos, int8=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert any(node.op_type == "QuantizeLinear" for node in __import__("onnx").load(str(path)).graph.node)
    out = session.run(None, {"image": PHOTO.numpy(), "mix": np.array([1.0, 0.0], dtype=np.float32)})[0]
    reference = fast.FastModel(model_file, precision="fp32").stylize(PHOTO)
    assert out.shape == tuple(PHOTO.shape) and float(np.abs(out - reference.numpy()).mean()) < 0.1
