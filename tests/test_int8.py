"""int8 files: converted once by compress (loading repeats none of it), the choice recorded in the
file (start-up included, against the float model as stylize runs it), float where int8 is slower."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from helpers import gradient_photo
from impasto.core import images
from impasto.core.modelfile import ModelFile, load_model, save_model
from impasto.networks import compress as compress_module
from impasto.networks import fast, transformer
from impasto.networks import int8_graph
from impasto.networks import int8 as int8_module
from impasto.networks.compress import calibrate_int8, compress
from impasto.networks.int8 import FrozenNet, describe, freeze_int8, load_int8

from test_compress import _trained_like

PHOTO = images.pil_to_tensor(gradient_photo(96, 72))
CONFIG = {"styles": 2, "width": 0.5, "residual_blocks": 5, "output": "direct", "upsample": "nearest",
          "style_names": ["a", "b"]}


def _record(choice: str, **figures: float) -> dict:
    """What :func:`compress.measure_startup` records on this CPU, with made-up figures."""
    return {"cpu": int8_module.cpu_kind(), "float_precision": int8_module.float_precision(), "side": 512,
            "threads": 1, "rounds": 0, "float_start_s": 1.0, "float_s": 0.2, "int8_start_s": 0.9, "int8_s": 0.1,
            **figures, "choice": choice}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny float model, photos, and its int8 file made by compress (the timing left out: made up)."""
    folder = tmp_path_factory.mktemp("int8")
    source = folder / "small.pt"
    save_model(source, ModelFile(kind="fast", config=dict(CONFIG), state_dict=_trained_like(styles=2).state_dict()))
    photos = folder / "photos"
    photos.mkdir()
    for k in range(4):
        gradient_photo(120 + 8 * k, 96).rotate(60 * k).save(photos / f"p{k}.png")
    asked = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compress_module, "measure_startup",
                      lambda float_model, int8_file, mix, **_: asked.append((float_model, mix)) or _record("int8"))
        path, how = compress(source, folder / "small-int8.pt", photos, int8=True, weights=[0.0, 1.0])
    assert how == "done" and asked == [(source, [0.0, 1.0])]  # against the float model, with the file's blend
    return {"source": source, "int8": path, "photos": photos, "folder": folder}


def _with_timing(made, name: str, timing: dict | None) -> str:
    """A copy of the int8 file with another record (None: none)."""
    model = load_model(made["int8"])
    config = {key: value for key, value in model.config.items() if key != "int8_timing"}
    if timing is not None:
        config["int8_timing"] = timing
    path = made["folder"] / name
    save_model(path, dataclasses.replace(model, config=config), half=False)
    return path


def test_the_file_records_its_choice_and_holds_the_converted_network(made):
    model = load_model(made["int8"])
    assert model.config["int8_timing"]["choice"] == "int8" and model.config["int8_timing"]["cpu"] == int8_module.cpu_kind()
    graph = model.config["int8_graph"]
    assert {op for op, *_ in graph["nodes"]} <= {"input", "attr", "module", "function", "method", "output"}
    assert set(graph["modules"].values()) == {"conv", "instance_norm"}
    from impasto.networks.int8_graph import INT8_PACKED, int8_tensors

    assert model.state_dict[INT8_PACKED].dtype == torch.uint8  # one blob: a file running float skips it
    assert not any(key.startswith("int8.") for key in model.state_dict)
    assert any(value.dtype == torch.qint8 for value in int8_tensors(model.state_dict).values())
    assert not any("activation_post_process" in key for key in model.state_dict)  # no observers: nothing to convert
    assert "int8 measured no slower" in describe(made["int8"]) and describe(made["source"]) == "a float model"


def test_a_file_with_its_int8_tensors_unpacked_paints_the_same(made):
    """Files written before the packed form kept each int8 tensor under ``int8.``: they still load."""
    from impasto.networks.int8_graph import INT8_PACKED, int8_tensors

    model = load_model(made["int8"])
    state = {key: value for key, value in model.state_dict.items() if key != INT8_PACKED}
    state.update({"int8." + key: value for key, value in int8_tensors(model.state_dict).items()})
    old = made["folder"] / "unpacked-int8.pt"
    save_model(old, dataclasses.replace(model, state_dict=state), half=False)
    packed, unpacked = fast.FastModel(made["int8"], device="cpu"), fast.FastModel(old, device="cpu")
    assert packed.int8 and unpacked.int8
    assert torch.equal(packed.stylize(PHOTO, [0.0, 1.0]), unpacked.stylize(PHOTO, [0.0, 1.0]))


def test_loading_repeats_no_calibration_preparation_tracing_or_conversion(made, monkeypatch):
    import torch.ao.quantization.quantize_fx as quantize_fx

    calls = []

    def refuse(name):
        return lambda *args, **kwargs: calls.append(name) or pytest.fail(f"loading called {name}")

    for module, name in ((int8_module, "prepare_int8"), (int8_module, "convert_int8"),
                         (compress_module, "calibrate_int8"), (quantize_fx, "prepare_fx"),
                         (quantize_fx, "convert_fx"), (torch.fx.Tracer, "trace")):
        monkeypatch.setattr(module, name, refuse(name))
    small = fast.FastModel(made["int8"], device="cpu")
    assert small.int8 and calls == []
    assert small.stylize(PHOTO, [0.0, 1.0]).shape == PHOTO.shape and calls == []


@pytest.mark.parametrize("output, upsample, recipe", [
    ("direct", "nearest", "int8-onednn"),
    pytest.param("residual", "bilinear", "int8-onednn", marks=pytest.mark.slow),
    pytest.param("direct", "nearest", "int8-x86", marks=pytest.mark.slow),  # the first int8 files' recipe
])
def test_the_stored_graph_paints_exactly_what_pytorchs_conversion_paints(made, output, upsample, recipe):
    torch.manual_seed(1)
    net = _trained_like(styles=1).eval()
    if output != "direct" or upsample != "nearest":
        net = transformer.TransformerNet(1, 0.5, output=output, upsample=upsample).eval()
    config = {"styles": 1, "width": 0.5, "residual_blocks": 5, "output": output, "upsample": upsample,
              "quantized": recipe}
    photos = sorted(made["photos"].iterdir())
    calibrated = calibrate_int8(net, [1.0], photos, recipe=recipe)
    converted, _ = load_int8(net, calibrated, config, None)  # an older file: FX's conversion at every load
    state, graph = freeze_int8(net, [1.0], calibrated, recipe)
    stored, _ = load_int8(net, state, {**config, "int8_graph": graph}, None)
    assert isinstance(stored, int8_graph.Int8Graph)
    with torch.no_grad():
        assert torch.equal(stored(PHOTO), converted(PHOTO))
        float_net, _ = load_int8(net, state, {**config, "int8_graph": graph}, None, int8=False)
        torch.testing.assert_close(float_net(PHOTO), FrozenNet(net, [1.0])(PHOTO), atol=1e-5, rtol=0)


def test_an_int8_file_runs_int8_where_it_chose_int8_and_stays_close_to_the_float_model(made):
    small = fast.FastModel(made["int8"], device="cpu")
    assert small.int8 and isinstance(small.network, int8_graph.Int8Graph)
    reference = fast.FastModel(made["source"], device="cpu", precision="fp32").stylize(PHOTO, [0.0, 1.0])
    assert float((small.stylize(PHOTO, [0.0, 1.0]) - reference).abs().mean()) < 0.1


def test_where_the_file_chose_float_stylize_runs_its_float_network_and_says_so_once(made, tmp_path, capsys):
    from impasto.cli import main

    path = _with_timing(made, "chose-float.pt", _record("float", int8_start_s=1.5))
    model = fast.FastModel(path, device="cpu")
    assert model.quantized and not model.int8
    assert not any("quantized" in type(m).__module__ for m in model.network.modules())
    fast.FastModel(path, device="cpu")
    said = capsys.readouterr().err
    assert said.count("runs its float network here") == 1 and "int8 measured not clearly faster" in said
    assert "runs its float network on this CPU: int8 measured not clearly faster" in describe(path)
    gradient_photo(64, 48).save(tmp_path / "photo.png")
    for name, model_path in (("int8", path), ("float", made["source"])):
        assert main(["stylize", "--model", str(model_path), str(tmp_path / "photo.png"), "-o",
                     str(tmp_path / f"{name}.png"), "--style-blend", "0,1", "-q"]) == 0
    painted = [images.read_image(tmp_path / f"{name}.png") for name in ("int8", "float")]
    assert float((painted[0] - painted[1]).abs().max()) <= 1 / 255 + 1e-6  # the float model's picture


def test_without_a_record_for_this_cpu_the_rule_decides_and_older_files_run_float(made, monkeypatch):
    elsewhere = _with_timing(made, "elsewhere.pt", {**_record("int8"), "cpu": "SOMEWHERE"})
    config = load_model(elsewhere).config
    rule = int8_module.cpu_kind() in int8_module.INT8_PAYS_ON and int8_module.float_precision() == "fp32"
    assert int8_module.int8_pays(config) == rule and "not on this kind of CPU" in describe(elsewhere)
    monkeypatch.setattr(int8_module, "cpu_kind", lambda: "AVX2")
    monkeypatch.setattr(int8_module, "float_precision", lambda: "fp32")
    assert int8_module.int8_pays(config)  # an AVX2 CPU without bf16: int8
    monkeypatch.setattr(int8_module, "float_precision", lambda: "bf16")
    assert not int8_module.int8_pays(config)  # a CPU with bf16 floats: float
    older = dict(config)
    older.pop("int8_graph")
    assert not int8_module.int8_pays({**older, "int8_timing": _record("int8")})  # slow to load as int8: float
    assert "older impasto" in int8_module.int8_choice(older)[1]


@pytest.mark.parametrize("float_start, int8_start, float_s, int8_s, ran_int8, choice", [
    (1.0, 0.9, 0.5, 0.3, True, "int8"),
    (1.0, 1.2, 0.5, 0.3, True, "float"),  # faster per image, slower to the first: float (one photo)
    (1.0, 0.9, 0.3, 0.5, True, "float"),  # slower per image: float (many photos)
    (1.0, 0.95, 0.5, 0.3, True, "float"),  # faster by less than the margin noise can make: float
    (1.0, 0.8, 0.5, 0.47, True, "float"),
    (1.0, 0.9, 0.5, 0.3, False, "float"),  # the int8 file did not run int8 there
])
def test_the_choice_counts_start_up_and_the_images_after_it(monkeypatch, float_start, int8_start, float_s, int8_s,
                                                            ran_int8, choice):
    seen = []

    def run(path, side, mix):
        seen.append(path)
        if path == "float.pt":
            return {"start_s": float_start, "next_s": float_s, "int8": False}
        return {"start_s": int8_start, "next_s": int8_s, "int8": ran_int8}

    monkeypatch.setattr(compress_module, "time_in_fresh_process", run)
    timing = compress_module.measure_startup("float.pt", "int8.pt", [1.0], rounds=2)
    assert seen == ["float.pt", "int8.pt"] * 2  # alternated
    assert timing["choice"] == choice and timing["float_precision"] in ("fp32", "bf16")
    assert (timing["int8_start_s"], timing["float_s"]) == (int8_start, float_s)
