import pytest
import torch
from PIL import Image

from impasto.core.backbone import load_backbone
from impasto.core.errors import ImpastoError
from impasto.core.images import as_tensor
from impasto.core.losses import GramLoss, MeanStdLoss, SlicedWassersteinLoss, gram_matrix, mean_std
from impasto.engines.optimize import StyleSettings, get_backbone, run

from helpers import gradient_photo, stripes

FAST = dict(precision="fp32", device="cpu")


def half_mask(width: int = 96, height: int = 72, left: bool = True) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (0, 0, width // 2, height) if left else (width // 2, 0, width, height))
    return mask


def test_masked_gram_is_the_gram_of_the_region():
    f = torch.rand(1, 4, 6, 6)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., :, :3] = 1
    region = f[..., :, :3]
    assert torch.allclose(gram_matrix(f, mask), gram_matrix(region), atol=1e-6)
    mean, std = mean_std(f, mask=mask)
    assert torch.allclose(mean, region.mean(dim=(2, 3), keepdim=True), atol=1e-6)


@pytest.mark.parametrize("loss", [GramLoss(), MeanStdLoss(), SlicedWassersteinLoss(directions=8)])
def test_style_losses_are_zero_on_their_target_and_positive_elsewhere(loss):
    style, other = torch.rand(1, 16, 8, 8), torch.rand(1, 16, 8, 8) * 3
    target = loss.target(style, "relu1_1")
    assert loss(style, target, "relu1_1").item() == pytest.approx(0.0, abs=1e-6)
    assert loss(other, target, "relu1_1").item() > 1e-3


def test_sliced_wasserstein_ignores_positions_but_not_values():
    loss = SlicedWassersteinLoss(directions=8)
    style = torch.rand(1, 8, 6, 6)
    shuffled = style.flatten(2)[..., torch.randperm(36)].reshape(1, 8, 6, 6)
    target = loss.target(style, "relu2_1")
    assert loss(shuffled, target, "relu2_1").item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("style_loss", ["gram", "mean_std", "swd"])
def test_every_style_loss_stylizes(style_loss):
    result = run(gradient_photo(), [stripes()], StyleSettings(size=48, iterations=10, style_loss=style_loss, **FAST))
    assert result.history[-1] < 0.7 * result.history[0]


@pytest.mark.slow
def test_mask_confines_the_change_to_its_region():
    content = gradient_photo(96, 72)
    style = stripes(96, colours=((20, 20, 20), (250, 250, 250)), period=6)
    settings = StyleSettings(size=96, iterations=30, masks=[half_mask()], style_weight=300, **FAST)
    out = run(content, [style], settings).image
    change = (out - as_tensor(content)).abs().mean(dim=(0, 1))
    left, right = change[:, :32].mean(), change[:, 64:].mean()  # away from the border between them
    assert left > 0.05
    assert right < 0.3 * left


@pytest.mark.slow
def test_regional_styles_land_in_their_regions():
    content = Image.new("RGB", (96, 72), (128, 128, 128))
    red = stripes(96, colours=((240, 30, 30), (150, 0, 0)), period=6)
    blue = stripes(96, colours=((30, 30, 240), (0, 0, 150)), period=6, vertical=False)
    settings = StyleSettings(size=96, iterations=30, masks=[half_mask(left=True), half_mask(left=False)],
                             style_weight=300, **FAST)
    out = run(content, [red, blue], settings).image[0]
    redness = out[0] - out[2]
    assert redness[:, :32].mean() - redness[:, 64:].mean() > 0.05  # red left, blue right
    single = run(content, [red], StyleSettings(size=96, iterations=30, masks=[half_mask(left=True)],
                                               style_weight=300, **FAST)).image[0]
    assert (single[0] - single[2])[:, :32].mean() > (single[0] - single[2])[:, 64:].mean() + 0.02


def test_masks_of_another_size_are_resized():
    result = run(gradient_photo(), [stripes()], StyleSettings(size=48, iterations=2, masks=[half_mask(200, 50)], **FAST))
    assert result.image.shape == (1, 3, 36, 48)


def test_mask_errors(tmp_path):
    with pytest.raises(ImpastoError, match="1 masks given for 2 style images"):
        run(gradient_photo(), [stripes(), stripes()], StyleSettings(size=48, masks=[half_mask()], **FAST))
    black = tmp_path / "black.png"
    Image.new("L", (10, 10), 0).save(black)
    with pytest.raises(ImpastoError, match="black.png: mask is empty"):
        run(gradient_photo(), [stripes()], StyleSettings(size=48, masks=[black], **FAST))
    text = tmp_path / "mask.png"
    text.write_text("no")
    with pytest.raises(ImpastoError, match="mask.png: not an image"):
        run(gradient_photo(), [stripes()], StyleSettings(size=48, masks=[text], **FAST))


def test_strength_maps_onto_style_weight():
    assert StyleSettings(strength=0.5).resolved_style_weight() == pytest.approx(30.0)
    assert StyleSettings(strength=1.0).resolved_style_weight() > StyleSettings(strength=0.5).resolved_style_weight()
    assert StyleSettings(strength=0.0).resolved_style_weight() == 0.0
    assert StyleSettings(strength=0.5, style_loss="swd").resolved_style_weight() == pytest.approx(3000.0)
    photo = gradient_photo()
    untouched = run(photo, [stripes()], StyleSettings(size=64, iterations=5, strength=0.0, **FAST)).image
    assert (untouched - as_tensor(photo)).abs().max() < 1e-4
    with pytest.raises(ImpastoError, match="strength must be between 0 and 1"):
        run(photo, [stripes()], StyleSettings(size=48, strength=1.5, **FAST))


def test_stronger_strength_means_more_style():
    content, style = gradient_photo(), stripes()
    weak = run(content, [style], StyleSettings(size=64, iterations=15, strength=0.2, **FAST)).image
    strong = run(content, [style], StyleSettings(size=64, iterations=15, strength=0.9, **FAST)).image
    assert (strong - as_tensor(content)).abs().mean() > (weak - as_tensor(content)).abs().mean()


def test_replicate_padding_on_the_first_layer():
    model = get_backbone("vgg19", "caffe", "max", ["relu1_1"], torch.device("cpu"), padding="replicate")
    assert model.layers[0].padding_mode == "replicate"
    plain = load_backbone(last_layer="relu1_1")
    x = torch.rand(1, 3, 16, 16)
    a, b = model(x, ["relu1_1"])["relu1_1"], plain(x, ["relu1_1"])["relu1_1"]
    assert torch.allclose(a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2], atol=1e-4)  # same inside
    assert not torch.allclose(a[..., 0, :], b[..., 0, :])  # different at the border
    result = run(gradient_photo(), [stripes()], StyleSettings(size=48, iterations=2, padding="replicate", **FAST))
    assert result.image.shape == (1, 3, 36, 48)


def test_adam_ema_returns_the_average_of_iterates():
    seen = []
    settings = StyleSettings(size=48, iterations=6, optimizer="adam", ema=0.5, **FAST)
    result = run(gradient_photo(), [stripes()], settings, lambda p: seen.append(p.image.clone()))
    average, weight = torch.zeros_like(seen[0]), 0.0
    for image in seen:
        average = 0.5 * average + 0.5 * image
        weight = 0.5 * weight + 0.5
    assert torch.allclose(result.image, (average / weight).clamp(0, 1), atol=1e-5)
    assert not torch.allclose(result.image, seen[-1].clamp(0, 1), atol=1e-3)
    assert StyleSettings(optimizer="adam").resolved_ema() == 0.9
    assert StyleSettings(optimizer="lbfgs", ema=0.9).resolved_ema() is None
