"""Feed-forward networks: shapes, training, conditional normalisation, files, export, command line."""

from __future__ import annotations

import random

import pytest
import torch

from helpers import gradient_photo, image_folder, stripes
from impasto.networks import fast, transformer
from impasto.networks import fast_training
from impasto.networks import export
from impasto.core import images
from impasto.cli import main
from impasto.core.errors import ImpastoError
from impasto.networks.fast import FastModel
from impasto.networks.fast_training import FastTask
from impasto.networks.transformer import TransformerNet
from impasto.core.images import as_tensor
from impasto.core.modelfile import ModelFile, load_model, save_model


def through_margin(network, x, *arguments, margin=fast.MARGIN):
    """What FastModel.stylize paints: ``network`` sees the photo through its mirrored margin, its
    nearest upsampling's lattice is taken out, the margin cropped off."""
    padded, (top, left, h, w) = images.pad_around(x, margin, transformer.MULTIPLE, minimum=2 * transformer.MULTIPLE)
    out = transformer.without_lattice(network(padded, *arguments), network.upsample)
    return out[..., top:top + h, left:left + w].clamp(0, 1)
from impasto.networks.training import ImageFolder, TrainSettings, train


def _model_file(path, styles=1, width=0.25, seed=0):
    torch.manual_seed(seed)
    net = TransformerNet(styles, width, output="residual")  # the 0.2 format: no "output" in the config
    with torch.no_grad():  # give every style distinct normalisation parameters, and the output a change
        torch.nn.init.normal_(net.out.weight, std=0.05)
        for module in net.modules():
            if isinstance(module, transformer.ConditionalInstanceNorm):
                module.scale.add_(0.3 * torch.randn_like(module.scale))
                module.shift.add_(0.3 * torch.randn_like(module.shift))
    config = {"styles": styles, "width": width, "residual_blocks": 5, "style_names": [f"s{i}" for i in range(styles)]}
    save_model(path, ModelFile(kind="fast", config=config, state_dict=net.state_dict()))
    return path


@pytest.fixture(scope="module")
def two_style_file(tmp_path_factory):
    return _model_file(tmp_path_factory.mktemp("fast") / "two.pt", styles=2)


@pytest.mark.parametrize("size", [(37, 53), (5, 9), (64, 31)])
def test_any_size_comes_back_the_same_size(two_style_file, size):
    model = FastModel(two_style_file, device="cpu", precision="fp32")
    out = model.stylize(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size) and 0 <= out.min() and out.max() <= 1


def test_a_residual_network_starts_as_the_identity():
    x = torch.rand(1, 3, 20, 28)
    torch.testing.assert_close(TransformerNet(2, 0.25, output="residual")(x), x)


def test_a_direct_network_paints_every_pixel_itself():
    """The default output is the network's own image (a sigmoid), not a change over the photo."""
    net = TransformerNet(1, 0.25)
    x = torch.rand(1, 3, 20, 28)
    out = net(x)
    assert out.shape == x.shape and 0 < out.min() and out.max() < 1
    assert not torch.allclose(out, x, atol=0.05)
    with pytest.raises(ImpastoError, match="network output"):
        TransformerNet(1, 0.25, output="blend")


def test_models_without_an_output_setting_load_as_residual(two_style_file):
    assert FastModel(two_style_file, device="cpu", precision="fp32").network.output == "residual"


def test_relative_losses_weigh_every_layer_alike():
    """Scaling a layer's features (as deeper VGG layers are scaled) leaves its relative losses unchanged."""
    from impasto.core.losses import gram_matrix, relative_content_loss, relative_gram_loss

    features, target = torch.rand(2, 8, 6, 6), torch.rand(2, 8, 6, 6)
    gram = gram_matrix(target)
    for scale in (0.01, 30.0):
        torch.testing.assert_close(relative_gram_loss(scale * features, scale ** 2 * gram),
                                   relative_gram_loss(features, gram))
        torch.testing.assert_close(relative_content_loss(scale * features, scale * target),
                                   relative_content_loss(features, target))
    assert float(relative_gram_loss(target, gram)) == pytest.approx(0.0, abs=1e-6)


def test_width_makes_a_smaller_network():
    full = sum(p.numel() for p in TransformerNet(1, 1.0).parameters())
    half = sum(p.numel() for p in TransformerNet(1, 0.5).parameters())
    assert 0.2 < half / full < 0.3


def test_style_mix_blends_the_normalisation_parameters(two_style_file):
    model = FastModel(two_style_file, device="cpu", precision="fp32")
    blended = TransformerNet(1, 0.25, output="residual")
    state = model.network.state_dict()
    mixed = {k: (0.7 * v[0:1] + 0.3 * v[1:2]) if k.endswith((".scale", ".shift")) else v for k, v in state.items()}
    blended.load_state_dict(mixed)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = through_margin(blended.eval(), x)
    torch.testing.assert_close(model.stylize(x, [0.7, 0.3]), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.stylize(x, [7, 3]), expected, atol=1e-5, rtol=1e-4)  # normalised
    assert not torch.allclose(model.stylize(x, [1, 0]), model.stylize(x, [0, 1]), atol=1e-3)
    with pytest.raises(ImpastoError, match="2 style"):
        model.mix([1, 2, 3])


def test_cpu_inference_norm_is_instance_norm_and_keeps_the_layout():
    """Inference on a CPU normalises channels-last maps without layout copies: the same numbers as
    instance norm plus the blend's affine, per image, in channels-last, whatever the thread count
    (a cluster's workers write the same files as one machine)."""
    x = (3 * torch.randn(3, 8, 12, 16) + 1).contiguous(memory_format=torch.channels_last)
    norm = transformer.ConditionalInstanceNorm(8, styles=2)
    with torch.no_grad():
        norm.scale.copy_(torch.rand(2, 8) + 0.5)
        norm.shift.copy_(torch.randn(2, 8))
    mix = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.25, 0.75]])
    with torch.no_grad():
        got = norm(x, mix)
    scale, shift = mix @ norm.scale.detach(), mix @ norm.shift.detach()
    expected = torch.nn.functional.instance_norm(x, eps=1e-5) * scale[:, :, None, None] + shift[:, :, None, None]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            assert torch.equal(norm(x, mix), got)
    finally:
        torch.set_num_threads(threads)
    trained = norm(x.clone().requires_grad_(True), mix)  # training keeps PyTorch's instance norm
    torch.testing.assert_close(trained.detach(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("padding_mode, kernel, out_channels", [("reflect", 9, 3), ("zeros", 5, 4), ("replicate", 3, 2)])
def test_the_last_convolution_on_pixel_blocks_is_the_convolution(padding_mode, kernel, out_channels):
    conv = torch.nn.Conv2d(6, out_channels, kernel, padding=kernel // 2, padding_mode=padding_mode)
    x = torch.randn(2, 6, 20, 14)
    with torch.no_grad():
        torch.testing.assert_close(transformer.space_to_depth_conv(conv, x), conv(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_inference_paints_what_training_paints(dtype, monkeypatch):
    """The CPU inference paths (channels-last norms; in bf16 the blocked last convolution) against
    PyTorch's own kernels in float32, which training uses, on a whole network."""
    torch.manual_seed(0)
    network = TransformerNet(2, width=0.25, upsample="nearest").eval()
    image = torch.rand(2, 3, 36, 44)
    mix = torch.tensor([[0.3, 0.7], [1.0, 0.0]])
    reference = network(image.clone().requires_grad_(True), mix).detach()
    blocked = []
    original = transformer.space_to_depth_conv
    monkeypatch.setattr(transformer, "space_to_depth_conv", lambda *a: blocked.append(1) or original(*a))
    network.to(dtype=dtype, memory_format=torch.channels_last)
    with torch.no_grad():
        painted = network(image.to(dtype).contiguous(memory_format=torch.channels_last), mix)
    assert bool(blocked) == (dtype == torch.bfloat16)
    if dtype == torch.float32:
        torch.testing.assert_close(painted, reference, atol=1e-5, rtol=1e-4)
    else:  # bf16 rounding only
        assert (painted - reference).abs().mean() < 0.006 and (painted - reference).abs().max() < 0.05


def _task(tmp_path, styles=1):
    photos = ImageFolder(image_folder(tmp_path / "photos", 4), crop=32, shorter_side=40)
    style_images = [as_tensor(stripes(48, ((200, 30, 30), (240, 230, 50)))),
                    as_tensor(stripes(48, ((20, 30, 200), (30, 200, 60)), vertical=False))][:styles]
    return FastTask(photos, style_images, [f"style{i}" for i in range(styles)], width=0.25)


@pytest.mark.train
def test_training_lowers_the_loss_and_the_file_round_trips(tmp_path):
    task = _task(tmp_path, styles=2)

    def loss() -> float:
        with torch.no_grad():
            return float(task.losses(task.network, 4, random.Random(5), torch.device("cpu"), None)["total"])

    before = loss()
    report = train(task, TrainSettings(steps=40, batch_size=2, learning_rate=5e-3, precision="fp32",
                                       checkpoint_every=20), tmp_path / "m.pt")
    assert loss() < 0.8 * before
    model = FastModel(report.model_path, device="cpu", precision="fp32")
    assert model.style_names == ["style0", "style1"]
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        direct = through_margin(task.network.eval(), x, torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(model.stylize(x, [0, 1]), direct, atol=2e-2, rtol=0)  # fp16 weights
    record = load_model(report.model_path, "fast")
    assert record.version and record.training["steps_done"] == 40 and record.training["style_images"] == ["style0", "style1"]
    assert record.training["learning_rate"] == 5e-3 and "hardware" in record.training


def test_resume_continues_from_the_saved_step(tmp_path):
    settings = dict(batch_size=1, learning_rate=1e-3, precision="fp32", checkpoint_every=2)
    train(_task(tmp_path), TrainSettings(steps=2, **settings), tmp_path / "m.pt")
    report = train(_task(tmp_path), TrainSettings(steps=4, resume=True, **settings), tmp_path / "m.pt")
    assert report.steps == 4
    history = torch.load(report.checkpoint_path, weights_only=True)["history"]
    assert [h["step"] for h in history] == [2, 4]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".ts", ".onnx"])
def test_export_gives_the_same_output(tmp_path, two_style_file, suffix):
    if suffix == ".onnx":
        pytest.importorskip("onnxscript")
        ort = pytest.importorskip("onnxruntime")
    exported = export.export(two_style_file, tmp_path / f"model{suffix}", size=32)
    model = FastModel(two_style_file, device="cpu", precision="fp32")
    x = torch.rand(2, 3, 40, 28)
    mix = torch.tensor([0.25, 0.75])
    with torch.no_grad():  # an exported file is the network alone: its user adds the mirrored margin
        expected = model.network(x, mix).clamp(0, 1)
    if suffix == ".ts":
        got = torch.jit.load(exported)(x, mix)
    else:
        session = ort.InferenceSession(str(exported))
        got = torch.from_numpy(session.run(None, {"image": x.numpy(), "mix": mix.numpy()})[0])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_cli_train_then_stylize_a_folder(tmp_path, capsys):
    photos = image_folder(tmp_path / "photos", 3)
    style = tmp_path / "style.png"
    stripes(48).save(style)
    model = tmp_path / "model.pt"
    assert main(["train", "fast", "--style", str(style), "--data", str(photos), "-o", str(model), "--crop", "32",
                 "--batch-size", "2", "--steps", "2", "--width", "0.25", "--precision", "fp32", "-q"]) == 0
    out = tmp_path / "out"
    assert main(["stylize", "--model", str(model), str(photos), "-o", str(out), "-s", "40", "-q"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo_00.png", "photo_01.png", "photo_02.png"]
    (out / "photo_01.png").unlink()
    stamp = (out / "photo_00.png").stat().st_mtime_ns
    assert main(["stylize", "--model", str(model), str(photos), "-o", str(out), "-s", "40", "--skip-existing"]) == 0
    assert "1 image(s)" in capsys.readouterr().err and (out / "photo_01.png").exists()
    assert (out / "photo_00.png").stat().st_mtime_ns == stamp
    single = tmp_path / "one.jpg"
    assert main(["stylize", "--model", str(model), str(photos / "photo_00.png"), "-o", str(single),
                 "--preserve-color", "luminance", "-q"]) == 0
    assert single.exists()
    onnx = tmp_path / "m.ts"
    assert main(["export", str(model), "-o", str(onnx)]) == 0 and onnx.exists()


@pytest.mark.parametrize("make_args, fragment", [
    (lambda t, m: ["stylize", "--model", str(m), str(t / "p.png"), "-o", str(t / "o.png"), "--style-blend", "1,1,1"],
     "3 style blend weights given for a model with 2"),
    (lambda t, m: ["stylize", "--model", "no-such-model", str(t / "p.png"), "-o", str(t / "o.png")],
     "no model file or model named"),
    (lambda t, m: ["stylize", "--model", str(t / "p.png"), str(t / "p.png"), "-o", str(t / "o.png")],
     "not a valid impasto model file"),
    (lambda t, m: ["stylize", "--model", str(m), str(t / "p.png"), str(t / "p.png"), "-o", str(t / "o.png")],
     "several inputs need a folder"),
    (lambda t, m: ["stylize", "--model", str(m), str(t / "missing.png"), "-o", str(t / "o.png")],
     "file not found"),
    (lambda t, m: ["export", str(m), "-o", str(t / "m.zip")], "unknown export format"),
    (lambda t, m: ["train", "fast", "--style", str(t / "p.png"), "--data", str(t / "empty"), "-o", str(t / "x.pt")],
     "no readable content photos"),
])
def test_cli_mistakes_are_one_line(tmp_path, two_style_file, capsys, make_args, fragment):
    gradient_photo(32, 32).save(tmp_path / "p.png")
    (tmp_path / "empty").mkdir()
    code = main(make_args(tmp_path, two_style_file))
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_models_command_lists_what_ships(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    from impasto.core.modelfile import SHIPPED_DIR

    for path in SHIPPED_DIR.glob("*.pt"):
        assert path.stem in out


def test_every_shipped_model_loads_and_runs():
    from impasto.networks.adain import AdaIN
    from impasto.core.modelfile import shipped_models

    models = shipped_models()
    assert {m.kind for m in models} <= {"fast", "adain-decoder", "arbitrary"}
    for model in models:
        record = model.training
        assert record["steps_done"] > 0 and record["final_losses"] and record["hardware"], model.path
        x = torch.rand(1, 3, 40, 56)
        if model.kind == "fast":
            engine = FastModel(model.path, device="cpu")
            out = engine.stylize(x, [1.0] * engine.network.styles)
        elif model.kind == "arbitrary":
            from impasto.networks.arbitrary import ArbitraryModel

            engine = ArbitraryModel(model.path, device="cpu")
            out = engine.stylize(x, [engine.style_code(torch.rand(1, 3, 48, 48))])
        else:
            engine = AdaIN(model.path, device="cpu")
            out = engine.stylize(x, [engine.style_code(torch.rand(1, 3, 48, 48))])
        assert out.shape == x.shape and not torch.allclose(out, x, atol=1e-2)


def test_bilinear_upsampling_round_trips_through_the_model_file(tmp_path):
    torch.manual_seed(0)
    net = TransformerNet(1, 0.25, upsample="bilinear")
    config = {"styles": 1, "width": 0.25, "residual_blocks": 5, "output": "direct", "upsample": "bilinear",
              "style_names": ["s"]}
    path = save_model(tmp_path / "b.pt", ModelFile(kind="fast", config=config, state_dict=net.state_dict()))
    model = FastModel(path, device="cpu", precision="fp32")
    assert model.network.upsample == "bilinear"
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.stylize(x), through_margin(net.eval(), x), atol=2e-2, rtol=0)  # fp16 weights
    nearest = TransformerNet(1, 0.25, upsample="nearest").eval()
    nearest.load_state_dict(net.state_dict())  # same weights, other upsampling: another image
    with torch.no_grad():
        assert not torch.allclose(nearest(x), net(x), atol=1e-4)
    with pytest.raises(ImpastoError, match="upsampling"):
        TransformerNet(1, 0.25, upsample="cubic")


@pytest.mark.slow
def test_a_compiled_network_paints_what_the_eager_one_does(two_style_file):
    photo = images.pil_to_tensor(gradient_photo(64, 48))
    eager = fast.FastModel(two_style_file, "cpu", "fp32")
    compiled = fast.cached_model(two_style_file, "cpu", "fp32", compile=True)
    assert compiled is not eager and compiled is fast.cached_model(two_style_file, "cpu", "fp32", compile=True)
    assert torch.allclose(compiled.stylize(photo, [0.3, 0.7]), eager.stylize(photo, [0.3, 0.7]), atol=1e-4)


def test_shift_consistency_costs_a_pattern_tied_to_the_pixel_grid():
    from impasto.core.losses import SHIFTS, random_shift, shift_consistency

    photo = torch.rand(2, 3, 48, 48)
    lattice = torch.zeros(1, 3, 48, 48)
    lattice[..., ::4, ::4] = 0.3  # a 4 px lattice fixed to the grid, whatever the picture

    def follows_the_picture(image):
        return 0.5 * image + 0.25 * image.roll(1, dims=-1)

    def tied_to_the_grid(image):
        return 0.5 * image + lattice[..., :image.shape[-2], :image.shape[-1]]

    shifts = {random_shift(random.Random(seed)) for seed in range(200)}
    assert all(0 < max(s) < 8 and max(s) % transformer.MULTIPLE for s in shifts) and len(shifts) == 3 * len(SHIFTS)
    for shift in shifts:
        follows = shift_consistency(follows_the_picture, photo, follows_the_picture(photo), shift)
        tied = shift_consistency(tied_to_the_grid, photo, tied_to_the_grid(photo), shift)
        assert float(follows) < 1e-10 and float(tied) > 1e-3


def test_edge_consistency_costs_a_frame_along_the_sides():
    from impasto.core.edges import edge_consistency

    photo = torch.rand(2, 3, 128, 96)

    def follows_the_picture(image):
        return 0.5 * image + 0.25 * image.roll(1, dims=-1)

    def paints_a_frame(image):  # a dark band along every side, whatever the picture
        out = follows_the_picture(image).clone()
        out[..., :4, :] *= 0.5
        out[..., -4:, :] *= 0.5
        out[..., :, :4] *= 0.5
        out[..., :, -4:] *= 0.5
        return out

    assert float(edge_consistency(follows_the_picture, photo, follows_the_picture(photo))) < 1e-3
    assert float(edge_consistency(paints_a_frame, photo, paints_a_frame(photo))) > 1e-2
    small = torch.rand(1, 3, 32, 32)  # cut less deep: 8 px in, a 4 px band
    assert float(edge_consistency(paints_a_frame, small, paints_a_frame(small))) > 1e-2


@pytest.mark.parametrize("term, weight", [("edge", 100.0), ("frame", 1000.0)])
def test_the_edge_and_frame_terms_train_the_network_only_when_asked(tmp_path, term, weight):
    task = _task(tmp_path)
    if term == "frame":  # its side bands need crops over 48 px
        task.content = ImageFolder(image_folder(tmp_path / "larger", 4, size=80), crop=64, shorter_side=80)
    with torch.no_grad():
        assert term not in task.losses(task.network, 2, random.Random(0), torch.device("cpu"), None)
    setattr(task, f"{term}_weight", weight)
    terms = task.losses(task.network, 2, random.Random(0), torch.device("cpu"), None)
    assert float(terms[term]) > 0 and task.describe()[f"{term}_weight"] == weight
    terms["total"].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in task.network.parameters())


def test_frame_light_costs_only_a_frame_beyond_the_photos_own():
    from impasto.core import quality
    from impasto.core.edges import frame_light

    ramp = torch.linspace(0.3, 0.7, 128).view(1, 1, 1, 128).expand(2, 3, 96, 128).clone()
    photo = ramp + 0.05 * torch.rand(2, 3, 96, 128)
    dark_sides = photo.clone()
    for side in (dark_sides[..., :8, :], dark_sides[..., -8:, :], dark_sides[..., :, :8], dark_sides[..., :, -8:]):
        side *= 0.7
    flatter = 0.5 + 0.5 * (photo - 0.5)  # less contrast than the photo, its light at the edges included
    assert float(frame_light(photo, photo)) == 0.0
    assert float(frame_light(flatter, photo)) == 0.0
    assert float(frame_light(dark_sides, photo)) > 1e-3
    # the same arithmetic as the measure of the benchmarks: a frame it sees costs, one it does not, not
    assert quality.frame_score(dark_sides[:1]) > 5 > quality.frame_score(photo[:1])


def test_the_shift_term_is_part_of_training_unless_switched_off(tmp_path):
    task = _task(tmp_path)
    with torch.no_grad():
        terms = task.losses(task.network, 2, random.Random(0), torch.device("cpu"), None)
    assert float(terms["shift"]) > 0 and task.describe()["shift_weight"] == fast_training.DEFAULT_SHIFT_WEIGHT
    task.shift_weight = 0.0
    with torch.no_grad():
        assert "shift" not in task.losses(task.network, 2, random.Random(0), torch.device("cpu"), None)


@pytest.mark.parametrize("share, painted_again", [(1.0, 4), (0.5, 2), (0.25, 1), (0.1, 1)])
def test_the_shift_pass_paints_its_share_of_the_batch(tmp_path, share, painted_again):
    task = FastTask(_task(tmp_path).content, [as_tensor(stripes(48))], ["s"], width=0.25, shift_share=share)
    batches = []
    task.network.register_forward_hook(lambda module, inputs, output: batches.append(inputs[0].shape[0]))
    with torch.no_grad():
        terms = task.losses(task.network, 4, random.Random(0), torch.device("cpu"), None)
    assert batches == [4, painted_again] and float(terms["shift"]) > 0
    assert task.describe()["shift_share"] == share


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_shift_share_outside_zero_to_one_is_refused(tmp_path, share):
    with pytest.raises(ImpastoError, match="shift share"):
        FastTask(_task(tmp_path).content, [as_tensor(stripes(48))], ["s"], width=0.25, shift_share=share)


def test_a_multi_style_batch_scores_each_image_against_its_own_painting(tmp_path):
    """The style term of a batch painted with several styles is the mean of each image's loss
    against the painting it was painted with (the images of one style scored together)."""
    import random

    from impasto.core.losses import gram_matrix, relative_gram_loss
    from impasto.core.runtime import default_encoder

    task = _task(tmp_path, styles=2)
    device = torch.device("cpu")
    targets = task._style_targets(device, None)
    features = {name: torch.rand(4, targets[0][name].shape[-1], 6, 6) for name in fast_training.STYLE_LAYERS}
    chosen = [0, 1, 1, 0]
    term = task._style_term(features, chosen, random.Random(0), device, None)
    expected = sum(relative_gram_loss(features[name][i: i + 1], targets[style][name])
                   for i, style in enumerate(chosen) for name in fast_training.STYLE_LAYERS) / 4
    torch.testing.assert_close(term, expected, rtol=1e-5, atol=0)
    encoder = default_encoder(["relu1_1"], device)
    with torch.no_grad():
        own = gram_matrix(encoder(task.style_images[1], ["relu1_1"])["relu1_1"])
    torch.testing.assert_close(targets[1]["relu1_1"], own)  # the second painting's Gram matrices


def test_a_model_adapted_from_the_arbitrary_network_sees_the_edge_as_that_network_does(tmp_path):
    """No mirrored margin for a model the arbitrary network's adaptation made (it trained on its own
    reflection-padded edges; a mirror folds its strokes into a frame); one trained alone keeps it."""
    _model_file(tmp_path / "alone.pt")
    record = load_model(tmp_path / "alone.pt")
    save_model(tmp_path / "adapted.pt", ModelFile(kind="fast", config=record.config, state_dict=record.state_dict,
                                                  training={"from_arbitrary": "arbitrary.pt"}))
    x = as_tensor(gradient_photo(40, 36))
    for name, margin in (("alone.pt", fast.MARGIN), ("adapted.pt", 0)):
        model = FastModel(tmp_path / name, device="cpu", precision="fp32")
        assert model.margin == margin
        torch.testing.assert_close(model.stylize(x), through_margin(model.network.eval(), x, margin=margin),
                                   atol=1e-5, rtol=0)
    assert not torch.allclose(FastModel(tmp_path / "alone.pt", device="cpu", precision="fp32").stylize(x),
                              FastModel(tmp_path / "adapted.pt", device="cpu", precision="fp32").stylize(x), atol=1e-3)
