import pytest
import torch

from impasto.core.backbone import CAFFE, VGG, check_layers, layer_names, load_backbone, min_input_size
from impasto.core.errors import ImpastoError


def test_layer_names():
    names19, names16 = layer_names("vgg19"), layer_names("vgg16")
    assert len(names19) == 16 * 2 + 5 and len(names16) == 13 * 2 + 5
    assert names19[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names19[-1] == "pool5" and "conv5_4" in names19 and "conv5_4" not in names16
    # torchvision's features.N indices follow the same order
    assert names19.index("conv4_2") == 21 and names16.index("conv4_2") == 19


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ImpastoError, match="unknown layer 'relu9_9'"):
        check_layers(["relu1_1", "relu9_9"])
    with pytest.raises(ImpastoError, match="conv5_4"):  # vgg16 has no conv5_4
        check_layers(["conv5_4"], "vgg16")


def test_default_weights_give_known_shapes(vgg):
    x = torch.rand(1, 3, 64, 96)
    feats = vgg(x, ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"])
    assert feats["relu1_1"].shape == (1, 64, 64, 96)
    assert feats["relu2_1"].shape == (1, 128, 32, 48)
    assert feats["relu3_1"].shape == (1, 256, 16, 24)
    assert feats["relu4_1"].shape == (1, 512, 8, 12)
    assert feats["relu4_2"].shape == (1, 512, 8, 12)
    assert feats["relu5_1"].shape == (1, 512, 4, 6)
    assert all((f >= 0).all() for f in feats.values())  # after ReLU
    assert feats["relu4_2"].abs().sum() > 0


def test_default_weights_are_the_dequantised_caffe_file(vgg):
    from impasto.core.backbone import default_weights_path

    state = torch.load(default_weights_path(), weights_only=True)
    expected = state["block3_conv2_W_table"][state["block3_conv2_W_q"].long()]
    conv = vgg.layers[vgg.names.index("conv3_2")]
    assert torch.equal(conv.weight, expected)
    assert torch.equal(conv.bias, state["block3_conv2_b"])


def test_weights_frozen_and_truncated():
    model = load_backbone(last_layer="relu4_2")
    assert model.names[-1] == "relu4_2"
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ImpastoError, match="not computed"):
        model(torch.rand(1, 3, 32, 32), ["relu5_1"])


def test_caffe_convention_is_applied_inside():
    model = VGG(convention=CAFFE, last_layer="relu1_1")
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    x = model.normalize(red)
    # BGR order, 0..255, minus the Caffe mean: red ends up in channel 2
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_only_needed_layers_are_computed(vgg, monkeypatch):
    calls = []
    for i, layer in enumerate(vgg.layers):
        layer.register_forward_hook(lambda m, inp, out, i=i: calls.append(i))
    try:
        vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])
    finally:
        for layer in vgg.layers:
            layer._forward_hooks.clear()
    assert max(calls) == vgg.names.index("relu2_1")


def test_min_input_size(vgg):
    assert min_input_size(vgg, ["relu1_1"]) == 1
    assert min_input_size(vgg, ["relu3_1"]) == 4
    assert min_input_size(vgg, ["relu5_1", "relu1_1"]) == 16


def _torchvision_state(model: VGG, arch: str) -> dict:
    """A torchvision-format state dict (features.N.*) built from another model's weights."""
    names = layer_names(arch)
    state = {}
    for name, module in zip(model.names, model.layers):
        if name.startswith("conv"):
            state[f"features.{names.index(name)}.weight"] = module.weight.detach().clone()
            state[f"features.{names.index(name)}.bias"] = module.bias.detach().clone()
    state["classifier.0.weight"] = torch.zeros(4, 4)  # ignored
    return state


def test_torchvision_state_dict_loads_with_its_normalisation(vgg, tmp_path):
    path = tmp_path / "vgg19.pth"
    torch.save(_torchvision_state(vgg, "vgg19"), path)
    model = load_backbone("vgg19", path, last_layer="relu3_1")
    assert model.convention.bgr is False and model.convention.scale == 1.0
    conv = model.layers[model.names.index("conv3_1")]
    assert torch.equal(conv.weight, vgg.layers[vgg.names.index("conv3_1")].weight)
    red = torch.zeros(1, 3, 1, 1)
    red[:, 0] = 1.0
    assert torch.allclose(model.normalize(red).flatten(), torch.tensor([(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225]))


def test_vgg16_state_dict(tmp_path):
    source = VGG("vgg16", last_layer="pool5")
    for module in source.layers:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.01)
    path = tmp_path / "vgg16.pth"
    torch.save(_torchvision_state(source, "vgg16"), path)
    model = load_backbone("vgg16", path)
    feats = model(torch.rand(1, 3, 32, 32), ["relu5_3"])
    assert feats["relu5_3"].shape == (1, 512, 2, 2)


def test_wrong_shape_weights_are_a_clear_error(vgg, tmp_path):
    state = _torchvision_state(vgg, "vgg19")
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ImpastoError, match=r"wrong shape for features\.2"):
        load_backbone("vgg19", path)


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ImpastoError, match="not a readable PyTorch weights file"):
        load_backbone("vgg19", path)
    with pytest.raises(ImpastoError, match="weights file not found"):
        load_backbone("vgg19", tmp_path / "missing.pth")


def test_torchvision_weights_found_in_hub_cache(vgg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.save(_torchvision_state(vgg, "vgg19"), tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth")
    model = load_backbone("vgg19", "torchvision", last_layer="relu1_1")
    assert model.convention.bgr is False


def test_torchvision_weights_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(ImpastoError, match="could not be downloaded"):
        load_backbone("vgg16", "torchvision")


def test_avg_pooling_option():
    model = load_backbone(pooling="avg", last_layer="pool1")
    assert isinstance(model.layers[-1], torch.nn.AvgPool2d)
    with pytest.raises(ImpastoError):
        load_backbone(pooling="median")
