"""The arbitrary-style network: style codes, one pass per photo, blends in code space, masks,
training with resume, and a per-style model adapted from its prediction."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from helpers import gradient_photo, image_folder, run_cli, stripes

from impasto.networks import arbitrary
from impasto.networks import arbitrary_training
from impasto.networks.transformer import without_lattice
from impasto.core import images
from impasto import methods
from impasto.core.errors import ImpastoError
from impasto.networks.fast import KIND as FAST_KIND
from impasto.networks.fast import FastModel
from impasto.networks.fast_training import FastTask
from impasto.networks.transformer import TransformerNet
from impasto.core.modelfile import ModelFile, load_model, save_model
from impasto.networks.training import ImageFolder, TrainSettings, train

TINY = {"width": 0.125, "upsample": "nearest", "residual_blocks": 5, "hidden": 32, "code": 8}


def _tiny_network(seed: int = 0) -> arbitrary.ArbitraryNet:
    """A tiny network whose predictor is not the identity (random head), so styles differ."""
    torch.manual_seed(seed)
    network = arbitrary.network_from_config(TINY)
    torch.nn.init.normal_(network.predictor.head.weight, std=0.05)
    return network


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("arbitrary") / "tiny.pt"
    save_model(path, ModelFile(kind=arbitrary.KIND, config=TINY, state_dict=_tiny_network().state_dict()))
    return path


def _photo(width: int = 53, height: int = 37) -> torch.Tensor:
    return images.pil_to_tensor(gradient_photo(width, height))


def _painting(period: int = 6, colours=((220, 40, 30), (250, 220, 60))) -> torch.Tensor:
    return images.pil_to_tensor(stripes(64, colours, period=period))


def _request(model, **changes) -> methods.Request:
    return dataclasses.replace(methods.Request(size=None, model=model, device="cpu", precision="fp32"), **changes)


@pytest.mark.slow
def test_each_image_of_a_batch_gets_its_own_norms_and_one_row_serves_all():
    network = _tiny_network().eval()
    photos = torch.rand(3, 3, 32, 32)
    statistics = torch.rand(3, 2 * sum(arbitrary.CODE_CHANNELS))
    with torch.no_grad():
        together = network(photos, statistics)
        alone = torch.cat([network(photos[i:i + 1], statistics[i:i + 1]) for i in range(3)])
        shared = network(photos, statistics[:1])
        first = network(photos[:1], statistics[:1])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(shared[:1], first, rtol=1e-4, atol=1e-5)
    assert (together[1] - together[0]).abs().mean() > 1e-3  # the photos differ, and so do their styles
    with pytest.raises(ImpastoError, match="2 sets of norm parameters for 3 images"):
        network(photos, statistics[:2])


def test_an_untrained_predictor_paints_as_the_feed_forward_model_it_starts_from(tmp_path):
    torch.manual_seed(1)
    fast_network = TransformerNet(1, 0.125)
    for name, module in fast_network.named_modules():
        if name.endswith("norm"):
            torch.nn.init.normal_(module.scale, 1.0, 0.2)
            torch.nn.init.normal_(module.shift, 0.0, 0.2)
    path = tmp_path / "start.pt"
    save_model(path, ModelFile(kind=FAST_KIND, config={"styles": 1, "width": 0.125, "output": "direct"},
                               state_dict=fast_network.state_dict()))
    content = ImageFolder(image_folder(tmp_path / "photos", 2), crop=48)
    style = ImageFolder(image_folder(tmp_path / "paintings", 2, "painting"), crop=32)
    task = arbitrary_training.ArbitraryTask(content, style, 32, width=0.125, start_from=path, upsample="nearest")
    photo = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours = task.network.eval()(photo, torch.rand(1, 2 * sum(arbitrary.CODE_CHANNELS)))
        theirs = FastModel(path, device="cpu", precision="fp32").network(photo)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(ImpastoError, match="width 0.5"):
        arbitrary_training.ArbitraryTask(content, style, 32, width=0.5, start_from=path)


def test_the_paintings_codes_are_computed_once_per_painter(tiny_model, monkeypatch):
    painter = methods.get("arbitrary").prepare([_painting()], _request(tiny_model))
    calls = []
    original = painter.engine.style_code
    monkeypatch.setattr(painter.engine, "style_code", lambda style: calls.append(1) or original(style))
    first = painter.paint(_photo()).image
    second = painter.paint(_photo(40, 30)).image
    assert len(calls) == 1 and first.shape[-2:] == (37, 53) and second.shape[-2:] == (30, 40)
    frames = painter.frames(methods.Temporal())
    frames.paint_many([_photo(), _photo()])
    assert len(calls) == 1


@pytest.mark.slow
def test_blend_weights_mix_the_codes_in_one_pass(tiny_model):
    a, b = _painting(6), _painting(10, ((20, 40, 200), (240, 240, 240)))
    engine = methods.get("arbitrary").prepare([a], _request(tiny_model)).engine
    side = arbitrary.style_side()
    code_a, code_b = (engine.style_code(images.resize_max_side(s, side)) for s in (a, b))
    photo = _photo()
    blended = methods.get("arbitrary").prepare([a, b], _request(tiny_model, style_blend=[3, 1])).paint(photo).image
    torch.testing.assert_close(blended, engine.stylize(photo, [0.75 * code_a + 0.25 * code_b]))
    only_a = methods.get("arbitrary").prepare([a, b], _request(tiny_model, style_blend=[1, 0])).paint(photo).image
    alone = methods.get("arbitrary").prepare([a], _request(tiny_model)).paint(photo).image
    torch.testing.assert_close(only_a, alone)
    assert (blended - alone).abs().mean() > 1e-3


@pytest.mark.slow
def test_masks_paint_each_region_with_its_painting_and_leave_the_rest_to_the_photo(tiny_model):
    a, b = _painting(6), _painting(10, ((20, 40, 200), (240, 240, 240)))
    left = torch.zeros(1, 1, 37, 53)
    left[..., :20] = 1.0
    right = torch.zeros(1, 1, 37, 53)
    right[..., 33:] = 1.0
    photo = _photo()
    out = methods.get("arbitrary").prepare([a, b], _request(tiny_model, masks=[left, right])).paint(photo).image
    alone_a = methods.get("arbitrary").prepare([a], _request(tiny_model)).paint(photo).image
    alone_b = methods.get("arbitrary").prepare([b], _request(tiny_model)).paint(photo).image
    torch.testing.assert_close(out[..., :18], alone_a[..., :18])
    torch.testing.assert_close(out[..., 35:], alone_b[..., 35:])
    torch.testing.assert_close(out[..., 22:31], photo[..., 22:31])


def test_a_wrong_model_file_and_a_missing_shipped_network_are_one_line(tmp_path, tiny_model, monkeypatch):
    fast_file = tmp_path / "fast.pt"
    save_model(fast_file, ModelFile(kind=FAST_KIND, config={"styles": 1, "width": 0.125},
                                    state_dict=TransformerNet(1, 0.125).state_dict()))
    with pytest.raises(ImpastoError, match="'fast'"):
        arbitrary.ArbitraryModel(fast_file, "cpu", "fp32")
    with pytest.raises(ImpastoError, match="is a fast model, not usable with the arbitrary method"):
        methods.choose("arbitrary", fast_file)
    monkeypatch.setattr(arbitrary, "DEFAULT_MODEL", tmp_path / "absent.pt")
    with pytest.raises(ImpastoError, match="train arbitrary"):
        methods.get("arbitrary").prepare([_painting()], _request(None))


def _task(tmp_path, style_loss: str = "gram") -> arbitrary_training.ArbitraryTask:
    content = ImageFolder(image_folder(tmp_path / "photos", 4), crop=48, shorter_side=48)
    style = ImageFolder(image_folder(tmp_path / "paintings", 3, "painting"), crop=32, shorter_side=40)
    return arbitrary_training.ArbitraryTask(content, style, 32, width=0.125, procedural=2, style_loss=style_loss)


@pytest.mark.train
@pytest.mark.parametrize("style_loss", ["gram", "swd"])
def test_training_lowers_the_loss_and_resumes_exactly(tmp_path, style_loss):
    settings = dict(batch_size=2, learning_rate=2e-3, precision="fp32", checkpoint_every=3)
    torch.manual_seed(0)
    straight = _task(tmp_path, style_loss)
    device = torch.device("cpu")
    straight.setup(device, None)

    def loss(task) -> float:
        with torch.no_grad():
            return sum(float(task.losses(task.network, 2, random.Random(seed), device, None)["total"])
                       for seed in range(3))

    before = loss(straight)
    train(straight, TrainSettings(steps=6, **settings), tmp_path / "straight.pt")
    assert loss(straight) < before

    torch.manual_seed(0)
    first = _task(tmp_path, style_loss)
    assert train(first, TrainSettings(steps=3, **settings), tmp_path / "resumed.pt").steps == 3
    second = _task(tmp_path, style_loss)
    assert train(second, TrainSettings(steps=6, resume=True, **settings), tmp_path / "resumed.pt").steps == 6
    for a, b in zip(straight.network.parameters(), second.network.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    model = load_model(tmp_path / "resumed.pt", arbitrary.KIND)
    assert model.training["steps_done"] == 6 and "procedural" in model.training["style_data"]
    assert model.training["style_loss"] == style_loss
    painted = arbitrary.ArbitraryModel(tmp_path / "resumed.pt", "cpu", "fp32")
    assert painted.stylize(_photo(), [painted.style_code(_painting())]).shape == (1, 3, 37, 53)


@pytest.mark.train
@pytest.mark.parametrize("loss_kind", ["gram", "swd"])
def test_adaptation_starts_from_the_prediction_and_lowers_the_style_loss(tmp_path, tiny_model, loss_kind):
    content = ImageFolder(image_folder(tmp_path / "photos", 4), crop=32, shorter_side=40)
    painting = _painting(8)
    task = FastTask(content, [painting], ["stripes"], width=0.125, style_loss=loss_kind)
    arbitrary_training.start_adaptation(task, tiny_model)
    engine = arbitrary.ArbitraryModel(tiny_model, "cpu", "fp32")
    photo = torch.rand(1, 3, 32, 32)
    code = engine.style_code(images.resize_max_side(painting, arbitrary.STYLE_SIDE))
    with torch.no_grad():
        painted = without_lattice(task.network.eval()(photo), engine.config.get("upsample", "nearest")).clamp(0, 1)
        torch.testing.assert_close(painted, engine.stylize(photo, [code]), rtol=1e-4, atol=1e-5)
    trainable = {name for name, p in task.network.named_parameters() if p.requires_grad}
    assert trainable and all(name.endswith(("norm.scale", "norm.shift")) for name in trainable)
    convolution = task.network.down[0].conv.weight.detach().clone()
    device = torch.device("cpu")
    task.setup(device, None)

    def style_loss() -> float:
        with torch.no_grad():
            return sum(float(task.losses(task.network, 2, random.Random(seed), device, None)["style"])
                       for seed in range(3))

    before = style_loss()
    train(task, TrainSettings(steps=15, batch_size=2, learning_rate=2e-2, precision="fp32", checkpoint_every=15),
          tmp_path / "stripes.pt")
    assert style_loss() < before
    assert torch.equal(task.network.down[0].conv.weight, convolution)  # only the norms trained
    record = load_model(tmp_path / "stripes.pt", FAST_KIND).training
    assert record["from_arbitrary"] == "tiny.pt" and record["style_loss"] == loss_kind


def test_several_paintings_adapt_into_one_network_that_paints_each_as_the_prediction(tmp_path, tiny_model):
    """A multi-style model (``--style`` repeated) starts with each painting's predicted norms in its
    own row: picking a style paints what the arbitrary network paints for that painting."""
    content = ImageFolder(image_folder(tmp_path / "photos", 2), crop=32, shorter_side=40)
    paintings = [_painting(8), torch.rand(1, 3, 48, 48)]
    task = FastTask(content, paintings, ["stripes", "noise"], width=0.125)
    arbitrary_training.start_adaptation(task, tiny_model)
    engine = arbitrary.ArbitraryModel(tiny_model, "cpu", "fp32")
    photo = torch.rand(1, 3, 32, 32)
    upsample = engine.config.get("upsample", "nearest")
    with torch.no_grad():
        for row, painting in enumerate(paintings):
            mix = torch.nn.functional.one_hot(torch.tensor([row]), 2).float()
            painted = without_lattice(task.network.eval()(photo, mix), upsample).clamp(0, 1)
            code = engine.style_code(images.resize_max_side(painting, arbitrary.STYLE_SIDE))
            torch.testing.assert_close(painted, engine.stylize(photo, [code]), rtol=1e-4, atol=1e-5)
    assert task.network.down[0].norm.scale.shape[0] == 2


def test_adaptation_takes_the_networks_own_style_loss_and_weight_unless_given(tmp_path):
    from impasto.networks import training_tasks
    from impasto.networks import fast_training

    path = tmp_path / "swd.pt"
    save_model(path, ModelFile(kind=arbitrary.KIND, config=TINY, state_dict=_tiny_network().state_dict(),
                               training={"style_loss": "swd", "style_weight": 30.0}))
    photos = image_folder(tmp_path / "photos", 2)
    painting = tmp_path / "painting.png"
    stripes(48).save(painting)

    def task(**options):
        return training_tasks.fast_task(photos, [painting], crop=32, from_arbitrary=str(path), **options)

    own = task()
    assert (own.style_loss, own.style_weight) == ("swd", 30.0)
    assert task(style_weight=5.0).style_weight == 5.0
    chosen = task(style_loss="gram")
    assert (chosen.style_loss, chosen.style_weight) == ("gram", fast_training.STYLE_WEIGHTS["gram"])
    scratch = training_tasks.fast_task(photos, [painting], crop=32, width=0.125)
    assert (scratch.style_loss, scratch.style_weight) == ("gram", fast_training.STYLE_WEIGHTS["gram"])


def test_cli_adapts_for_minutes_by_default_and_trains_for_hours_otherwise(capsys, tmp_path, tiny_model, monkeypatch):
    """`train fast --from-arbitrary` takes the adaptation's steps, batch and learning rate unless
    given; a model from scratch keeps the long defaults."""
    from impasto.networks import training, training_tasks

    seen = []

    def fake_train(task, settings, output, **_):
        seen.append(settings)
        return training.TrainReport(steps=0, seconds=0.0, losses={}, model_path=output,
                                    checkpoint_path=tmp_path / "x.ckpt", stop_reason="steps")

    monkeypatch.setattr(training, "train", fake_train)
    photos = image_folder(tmp_path / "photos", 2)
    painting = tmp_path / "painting.png"
    stripes(48).save(painting)
    base = ["train", "fast", "--data", photos, "--style", painting, "--crop", 32, "-q", "-o", tmp_path / "m.pt"]
    assert run_cli(capsys, *base, "--from-arbitrary", tiny_model)[0] == 0
    assert run_cli(capsys, *base, "--from-arbitrary", tiny_model, "--steps", 7, "--lr", 0.5)[0] == 0
    assert run_cli(capsys, *base, "--width", 0.125)[0] == 0
    adapted, chosen, scratch = seen
    assert (adapted.steps, adapted.batch_size, adapted.learning_rate) == tuple(training_tasks.ADAPTATION.values())
    assert (chosen.steps, chosen.batch_size, chosen.learning_rate) == (7, training_tasks.ADAPTATION["batch_size"], 0.5)
    assert (scratch.steps, scratch.batch_size, scratch.learning_rate) == (4000, 4, 1e-3)


@pytest.mark.train
def test_cli_trains_paints_and_adapts(capsys, tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("IMPASTO_MODELS", str(tmp_path / "mine"))
    photos = image_folder(tmp_path / "photos", 3)
    paintings = image_folder(tmp_path / "paintings", 3, "painting")
    model = tmp_path / "any.pt"
    code, _, err = run_cli(capsys, "train", "arbitrary", "--content", photos, "--style", paintings, "--crop", 32,
                           "--style-crop", 32, "--style-shorter-side", 40, "--width", 0.125, "--procedural", 1,
                           "--batch-size", 2, "--steps", 2, "-q", "-o", model)
    assert code == 0, err
    photo = tmp_path / "photo.png"
    gradient_photo(40, 32).save(photo)
    painting = tmp_path / "painting.png"
    stripes(48).save(painting)
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "stylize", "--method", "arbitrary", "--model", model, photo, painting,
                           "-o", out, "-q")
    assert code == 0 and out.exists(), err
    code, _, err = run_cli(capsys, "train", "fast", "--data", photos, "--style", painting, "--from-arbitrary",
                           tiny_model, "--crop", 32, "--batch-size", 2, "--steps", 2, "-o", "stripes")
    assert code == 0 and "--model stripes" in err, err
    assert load_model(tmp_path / "mine" / "stripes.pt", FAST_KIND).training["trained"] == "norms"
    code, _, err = run_cli(capsys, "stylize", "--model", "stripes", photo, "-o", tmp_path / "mine.png", "-q")
    assert code == 0 and (tmp_path / "mine.png").exists(), err
    code, _, err = run_cli(capsys, "stylize", "--method", "arbitrary", "--model", "stripes", photo,
                           painting, "-o", tmp_path / "x.png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not usable with the arbitrary method" in err
