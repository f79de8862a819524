"""AdaIN: the normalisation itself, the controls, the engine, training and the command line."""

from __future__ import annotations

import pytest
import torch

from helpers import gradient_photo, image_folder, stripes
from impasto.networks import adain
from impasto.networks.adain import AdaIN, Decoder, StyleCode, adain_to, transfer
from impasto.networks.adain_training import AdainTask
from impasto.cli import main
from impasto.core.errors import ImpastoError
from impasto.core.images import as_tensor, pad_around
from impasto.core.lattice import remove_lattice
from impasto.core.losses import mean_std
from impasto.core.modelfile import ModelFile, save_model
from impasto.networks.training import ImageFolder


@pytest.fixture(scope="module")
def decoder_file(tmp_path_factory):
    """An untrained (randomly initialised) decoder saved as a model file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "decoder.pt"
    save_model(path, ModelFile(kind="adain-decoder", config={}, state_dict=Decoder().state_dict()))
    return path


@pytest.fixture(scope="module")
def engine(decoder_file):
    return AdaIN(decoder_file, device="cpu", precision="fp32")


def _code(features):
    return StyleCode(*mean_std(features))


def test_adain_gives_the_style_statistics():
    content = torch.randn(2, 16, 12, 10) * 3 + 1
    style = torch.randn(2, 16, 9, 7) * 0.5 - 2
    out = adain.adain(content, style)
    mean_out, std_out = mean_std(out)
    mean_style, std_style = mean_std(style)
    torch.testing.assert_close(mean_out, mean_style, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std_out, std_style, atol=1e-3, rtol=1e-3)


def test_interpolation_weights_are_normalised():
    features = torch.randn(1, 8, 6, 6)
    a, b = _code(torch.randn(1, 8, 5, 5) + 2), _code(torch.randn(1, 8, 5, 5) * 3)
    torch.testing.assert_close(transfer(features, [a, b], [2, 2]), transfer(features, [a, b], [0.5, 0.5]))
    torch.testing.assert_close(transfer(features, [a, b], [3, 0]), adain_to(features, a.mean, a.std))
    mixed = transfer(features, [a, b], [1, 3])
    expected = 0.25 * adain_to(features, a.mean, a.std) + 0.75 * adain_to(features, b.mean, b.std)
    torch.testing.assert_close(mixed, expected)
    with pytest.raises(ImpastoError):
        transfer(features, [a, b], [1])


def test_masks_give_each_region_its_own_style():
    features = torch.randn(1, 8, 6, 8)
    a, b = _code(torch.randn(1, 8, 5, 5) + 5), _code(torch.randn(1, 8, 5, 5) - 5)
    left = torch.zeros(1, 1, 6, 8)
    left[..., :4] = 1
    out = transfer(features, [a, b], masks=[left, 1 - left])
    mean_left, _ = mean_std(out[..., :4])
    mean_right, _ = mean_std(out[..., 4:])
    torch.testing.assert_close(mean_left, a.mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mean_right, b.mean, atol=1e-4, rtol=1e-4)
    # a single mask: the uncovered region keeps the content features
    only = transfer(features, [a], masks=[left])
    torch.testing.assert_close(only[..., 4:], features[..., 4:])


@pytest.mark.slow
def test_alpha_zero_reconstructs_and_one_transfers(engine):
    content = as_tensor(gradient_photo(72, 48))
    style = as_tensor(stripes(48))
    code = engine.style_code(style)
    # the engine sees the photo through a mirrored margin (no frame at the edges) and crops it off
    padded, (top, left, h, w) = pad_around(content, adain.MARGIN, adain.MULTIPLE)
    assert (top, left, h, w) == (adain.MARGIN, adain.MARGIN, 48, 72)
    torch.testing.assert_close(padded[..., top: top + h, left: left + w], content)
    torch.testing.assert_close(padded[..., top - 3, left: left + w], content[..., 3, :])  # mirrored
    features = engine.encode(padded)

    def decoded(target):  # the decoder's picture without the pattern of its 8 px cells, cropped
        return remove_lattice(engine.decoder(target), adain.CELL)[..., top: top + h, left: left + w].clamp(0, 1)

    with torch.no_grad():
        reconstruction = decoded(features)
        transferred = decoded(adain_to(features, code.mean, code.std))
    torch.testing.assert_close(engine.stylize(content, [code], alpha=0.0), reconstruction, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(engine.stylize(content, [code], alpha=1.0), transferred, atol=1e-5, rtol=1e-4)
    half = engine.stylize(content, [code], alpha=0.5)
    assert not torch.allclose(half, reconstruction) and not torch.allclose(half, transferred)


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (61, 17)])
def test_any_input_size_comes_back_the_same_size(engine, size):
    content = torch.rand(1, 3, *size)
    out = engine.stylize(content, [engine.style_code(torch.rand(1, 3, 32, 32))])
    assert out.shape == (1, 3, *size)


def test_no_shipped_decoder_says_how_to_train_one(monkeypatch, tmp_path):
    monkeypatch.setattr(adain, "DEFAULT_DECODER", tmp_path / "absent.pt")
    with pytest.raises(ImpastoError, match="impasto train adain"):
        AdaIN(None)


def test_wrong_or_corrupt_model_file_is_a_clear_error(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"definitely not a model")
    with pytest.raises(ImpastoError, match="not a valid impasto model file"):
        AdaIN(corrupt)
    other = tmp_path / "other.pt"
    save_model(other, ModelFile(kind="fast", config={}, state_dict={}))
    with pytest.raises(ImpastoError, match="not a 'adain-decoder' model"):
        AdaIN(other)
    wrong = tmp_path / "wrong.pt"
    save_model(wrong, ModelFile(kind="adain-decoder", config={}, state_dict={"layers.0.weight": torch.zeros(1)}))
    with pytest.raises(ImpastoError, match="do not fit"):
        AdaIN(wrong)


@pytest.mark.slow
def test_cli_adain_with_controls(tmp_path, decoder_file, capsys):
    content = tmp_path / "photo.png"
    gradient_photo(48, 40).save(content)
    style_a, style_b = tmp_path / "a.png", tmp_path / "b.png"
    stripes(48).save(style_a)
    stripes(48, ((10, 10, 200), (20, 220, 20))).save(style_b)
    mask = tmp_path / "mask.png"
    from PIL import Image

    half = Image.new("L", (48, 40), 0)  # the left half: a mask has its photo's shape
    half.paste(255, (0, 0, 24, 40))
    half.save(mask)
    out = tmp_path / "out.png"
    args = ["stylize", "--method", "adain", "--model", str(decoder_file), str(content), str(style_a), str(style_b),
            "-o", str(out), "--device", "cpu", "--strength", "0.8", "--style-blend", "1,3", "--preserve-color",
            "luminance", "-s", "48", "-q"]
    assert main(args) == 0
    assert as_tensor(out).shape == (1, 3, 40, 48)
    regional = tmp_path / "regional.png"
    mask_b = tmp_path / "mask_b.png"
    Image.new("L", (48, 40), 0).save(mask_b)
    Image.new("L", (48, 40), 255).save(mask_b)
    assert main(["stylize", "--model", str(decoder_file), str(content), str(style_a), str(style_b),
                 "-o", str(regional), "--mask", str(mask), "--mask", str(mask_b), "-s", "48", "-q"]) == 0
    assert regional.exists()


@pytest.mark.parametrize("extra, fragment", [
    (["--strength", "2"], "strength must be between 0 and 1"),
    (["--method", "fast"], "not usable with the fast method"),
])
def test_cli_adain_mistakes_are_one_line(tmp_path, decoder_file, capsys, extra, fragment):
    content = tmp_path / "photo.png"
    gradient_photo(32, 32).save(content)
    code = main(["stylize", "--model", str(decoder_file), str(content), str(content), "-o",
                 str(tmp_path / "o.png"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


@pytest.mark.train
def test_cli_train_adain_then_stylize_with_it(tmp_path, capsys):
    photos = image_folder(tmp_path / "photos", 3)
    (photos / "bad.jpg").write_bytes(b"junk")
    paintings = image_folder(tmp_path / "paintings", 3, "painting")
    model = tmp_path / "trained.pt"
    args = ["train", "adain", "--content", str(photos), "--style", str(paintings), "-o", str(model),
            "--crop", "32", "--batch-size", "2", "--steps", "2", "--checkpoint-every", "1", "--precision", "fp32",
            "--hold-out", "painting_00.png"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable file" in err and "bad.jpg" in err
    assert (tmp_path / "trained-previews" / "step-000002.png").exists()
    assert main(args) == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--steps", "3", "--resume", "-q"]) == 0
    photo = photos / "photo_00.png"
    assert main(["stylize", "--model", str(model), str(photo), str(paintings / "painting_00.png"),
                 "-o", str(tmp_path / "x.jpg"), "-q"]) == 0
    from impasto.core.modelfile import load_model

    record = load_model(model, "adain-decoder").training
    assert record["steps_done"] == 3 and record["held_out_styles"] == ["painting_00.png"]


def test_bilinear_decoder_round_trips_and_unknown_upsampling_is_refused(tmp_path):
    torch.manual_seed(0)
    decoder = Decoder("bilinear")
    path = save_model(tmp_path / "bilinear.pt", ModelFile(kind="adain-decoder", config={"upsample": "bilinear"},
                                                          state_dict=decoder.state_dict()))
    engine = AdaIN(path, device="cpu", precision="fp32")
    assert engine.decoder.upsample == "bilinear"
    features = torch.rand(1, 512, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(engine.decoder(features), decoder(features), atol=2e-2, rtol=0)  # fp16 weights
    bad = save_model(tmp_path / "bad.pt", ModelFile(kind="adain-decoder", config={"upsample": "cubic"},
                                                    state_dict=decoder.state_dict()))
    with pytest.raises(ImpastoError, match="bad.pt: unknown upsampling"):
        AdaIN(bad, device="cpu", precision="fp32")


@pytest.mark.slow
def test_a_compiled_adain_paints_what_the_eager_one_does(decoder_file):
    photo = as_tensor(gradient_photo(64, 48))
    eager = adain.cached_engine(decoder_file, "cpu", "fp32")
    compiled = adain.cached_engine(decoder_file, "cpu", "fp32", compile=True)
    assert compiled is not eager
    code = eager.style_code(as_tensor(stripes(64)))
    assert torch.allclose(compiled.stylize(photo, [code]), eager.stylize(photo, [code]), atol=1e-4)


def test_training_preview_paints_as_stylize_does(tmp_path, engine):
    """The preview goes through the same mirrored margin as stylize (no dark band along its edges)."""
    folder = ImageFolder(image_folder(tmp_path / "photos", 1), crop=32)
    content, style = torch.rand(1, 3, 40, 48), torch.rand(1, 3, 40, 40)
    task = AdainTask(folder, folder, preview=(content, style))
    preview = task.preview(engine.decoder, torch.device("cpu"))
    expected = engine.stylize(content, [engine.style_code(style)])
    assert torch.allclose(preview[..., -48:], expected, atol=1e-5)


def test_a_paintings_code_is_made_once_for_every_painter_of_the_engine(monkeypatch):
    """Painters with other strengths or weights (a studio's slider, a clip driven by its sound)
    reuse the code the engine made for the same painting at the same size."""
    from impasto import methods
    from impasto.methods.style_codes import forget_codes

    forget_codes()
    method = methods.get("adain")
    style, photo = as_tensor(stripes(48)), as_tensor(gradient_photo(32, 24))
    first = method.prepare([style], methods.Request(size=32, device="cpu", strength=1.0))
    made = []
    real = first.engine.style_code
    monkeypatch.setattr(first.engine, "style_code", lambda image: made.append(image.shape) or real(image))
    a = first.paint(photo).image
    b = method.prepare([style], methods.Request(size=32, device="cpu", strength=0.5)).paint(photo).image
    method.prepare([as_tensor(stripes(48, period=4))], methods.Request(size=32, device="cpu")).paint(photo)
    assert len(made) == 2 and not torch.equal(a, b)  # the second painting is new; the strengths differ
    forget_codes()
    first.paint(photo)
    assert len(made) == 2  # a painter keeps its own codes
