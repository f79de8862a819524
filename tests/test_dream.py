"""DeepDream: gradient ascent on chosen layers, octaves, guide, masks, tiles, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from helpers import gradient_photo, stripes
from impasto.core import images
from impasto.engines.dream import DreamSettings, Dreamer, dream, layer_energy, octave_sizes
from impasto.core.errors import ImpastoError
from impasto.core.losses import gram_matrix
from impasto.core.runtime import default_encoder

PHOTO = images.pil_to_tensor(gradient_photo(96, 72))
QUICK = dict(octaves=2, iterations=4, jitter=4)


def _features(image, layers):
    with torch.no_grad():
        return default_encoder(list(layers), torch.device("cpu"))(image, layers)


def test_dreaming_raises_the_chosen_layers_activation_energy():
    layers = {"relu3_1": 1.0}
    result = dream(PHOTO, DreamSettings(layers=layers, octaves=2, iterations=8, jitter=4), precision="fp32")
    before = float(layer_energy(_features(PHOTO, layers), layers))
    after = float(layer_energy(_features(result.image, layers), layers))  # about 2.2x
    assert result.stop_reason == "iterations" and result.iterations == 16
    assert result.image.shape == PHOTO.shape
    assert after > 1.5 * before, (before, after)


def test_octaves_put_the_pattern_at_a_coarser_scale():
    photo = images.pil_to_tensor(gradient_photo(160, 120))

    def coarse_share(octaves: int) -> float:
        """The share of the change's energy left after an 8 px blur."""
        change = dream(photo, DreamSettings(layers={"relu2_1": 1.0}, octaves=octaves, iterations=5, jitter=2,
                                            octave_scale=1.8), precision="fp32").image - photo
        coarse = F.interpolate(F.avg_pool2d(change, 8), size=change.shape[-2:], mode="bilinear")
        return float(coarse.pow(2).sum() / change.pow(2).sum())

    assert coarse_share(3) > 1.3 * coarse_share(1)  # about 0.28 against 0.18


def test_the_octave_sizes_end_at_the_image_and_grow_by_the_scale():
    sizes = octave_sizes(300, 400, 4, 2.0)
    assert sizes == [(38, 50), (75, 100), (150, 200), (300, 400)]
    assert octave_sizes(40, 40, 4, 2.0) == [(40, 40)]  # none below 32 px


def test_a_guide_moves_the_features_toward_the_guides():
    guide = images.pil_to_tensor(stripes(96))
    layers = {"relu3_1": 1.0}
    settings = DreamSettings(layers=layers, octaves=1, iterations=8, jitter=0)
    guided = dream(PHOTO, settings, guide=guide, precision="fp32").image
    plain = dream(PHOTO, settings, precision="fp32").image

    def gram_distance(image):
        target = gram_matrix(_features(guide, layers)["relu3_1"])
        return float((gram_matrix(_features(image, layers)["relu3_1"]) - target).pow(2).sum() / target.pow(2).sum())

    assert gram_distance(guided) < 0.9 * gram_distance(PHOTO)  # about 0.76 against 0.92
    assert gram_distance(guided) < 0.95 * gram_distance(plain)  # a plain dream: 0.86


def test_a_mask_keeps_the_dream_inside_it():
    mask = torch.zeros(1, 3, 72, 96)
    mask[..., :, :40] = 1
    result = dream(PHOTO, DreamSettings(layers={"relu2_1": 1.0}, **QUICK), masks=[mask], precision="fp32").image
    change = (result - PHOTO).abs().mean(1)[0]
    assert float(change[:, :30].mean()) > 0.02
    assert float(change[:, 60:].max()) < 0.01


def test_tiles_give_the_gradient_of_the_whole_image():
    image = images.pil_to_tensor(gradient_photo(200, 150))
    whole, _ = Dreamer(DreamSettings(layers={"relu2_1": 1.0}, tile=1024), precision="fp32").gradient(image)
    tiled, _ = Dreamer(DreamSettings(layers={"relu2_1": 1.0}, tile=128), precision="fp32").gradient(image)
    assert float(F.cosine_similarity(whole.flatten(), tiled.flatten(), dim=0)) > 0.95


def test_step_size_zero_is_the_photo_and_a_stop_keeps_the_dream_so_far():
    still = dream(PHOTO, DreamSettings(step_size=0.0, **QUICK), precision="fp32").image
    assert torch.allclose(still, PHOTO, atol=2e-2)

    def stop_at_three(progress):
        if progress.iteration == 3:
            raise KeyboardInterrupt

    result = dream(PHOTO, DreamSettings(layers={"relu2_1": 1.0}, **QUICK), on_step=stop_at_three, precision="fp32")
    assert result.stop_reason == "interrupted" and result.iterations == 3
    assert result.image.shape == PHOTO.shape and float((result.image - PHOTO).abs().mean()) > 0.005


@pytest.mark.parametrize("settings, parameter", [
    (DreamSettings(layers={}), "layers"), (DreamSettings(layers={"relu9_9": 1.0}), None),
    (DreamSettings(octave_scale=1.0), "octave_scale"), (DreamSettings(tile=32), "tile"),
    (DreamSettings(layers={"relu3_1": float("nan")}), "layers"),
])
def test_bad_settings_are_one_clear_error(settings, parameter):
    with pytest.raises(ImpastoError) as info:
        settings.check()
    assert info.value.parameter == parameter


@pytest.mark.slow
def test_the_command_writes_the_dream_and_refuses_bad_layers(tmp_path):
    gradient_photo(64, 48).save(tmp_path / "photo.png")
    run = [sys.executable, "-m", "impasto", "dream", str(tmp_path / "photo.png")]
    done = subprocess.run([*run, "-o", str(tmp_path / "out.png"), "--octaves", "2", "-n", "2", "--layers",
                           "relu2_1:1,relu3_1:0.5", "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert images.read_image(tmp_path / "out.png").shape == (1, 3, 48, 64)
    bad = subprocess.run([*run, "-o", str(tmp_path / "bad.png"), "--layers", "relu9_1"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "relu9_1" in bad.stderr
    assert not (tmp_path / "bad.png").exists()


def test_an_image_too_small_for_the_layer_is_one_clear_error_and_octaves_stay_above_it():
    tiny = images.pil_to_tensor(gradient_photo(8, 8))
    with pytest.raises(ImpastoError, match="needs at least"):
        dream(tiny, DreamSettings(layers={"relu5_1": 1.0}, **QUICK))
    small = images.pil_to_tensor(gradient_photo(40, 40))  # octaves below the layer's minimum are skipped
    assert dream(small, DreamSettings(layers={"relu5_1": 1.0}, octaves=4, iterations=1)).image.shape == small.shape


def test_a_mask_of_another_shape_is_refused():
    with pytest.raises(ImpastoError, match=r"<mask>: the mask is 37x11 but the photo <photo> is 96x72"):
        dream(PHOTO, DreamSettings(layers={"relu2_1": 1.0}, **QUICK), masks=[torch.ones(1, 1, 11, 37)])


def test_the_command_takes_a_mask_and_a_built_in_painting_as_guide(tmp_path):
    from PIL import Image

    gradient_photo(64, 48).save(tmp_path / "photo.png")
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 24, 48))
    mask.save(tmp_path / "mask.png")
    done = subprocess.run([sys.executable, "-m", "impasto", "dream", str(tmp_path / "photo.png"), "-o",
                           str(tmp_path / "out.png"), "--octaves", "1", "-n", "3", "--layers", "relu2_1", "--mask",
                           str(tmp_path / "mask.png"), "--guide", "starry_night", "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    change = (images.read_image(tmp_path / "out.png") - images.read_image(tmp_path / "photo.png")).abs().mean(1)[0]
    assert float(change[:, :16].mean()) > 0.01 and float(change[:, 40:].max()) < 0.02
