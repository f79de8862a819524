"""The machine-mark measures of impasto.core.quality: the pixel-lattice peak (stripes, grids),
the frame score, saturation and brightness spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from impasto.core import quality


def photo_like(height: int = 192, width: int = 256, seed: int = 0) -> torch.Tensor:
    """A colour image with a photo's 1/f spectrum: no frequency stands out."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(height, width))
    channels = []
    for _ in range(3):
        phase = np.exp(2j * np.pi * rng.random((height, width)))
        field = np.real(np.fft.ifft2(amplitude * phase))
        channels.append(0.5 + 0.18 * (field - field.mean()) / field.std())
    return torch.from_numpy(np.stack(channels)).float().clamp(0, 1)[None]


def test_a_photo_like_image_scores_low_and_a_2px_column_pattern_high():
    photo = photo_like()
    assert quality.lattice_peak(photo) < 3.0
    columns = torch.zeros_like(photo)
    columns[..., ::2] = 4.0 / 255  # every other column 4 grey levels lighter
    assert quality.lattice_peak((photo + columns).clamp(0, 1)) > 8.0


@pytest.mark.parametrize("period", [4, 8])
def test_a_coarser_lattice_and_a_diagonal_grating_are_seen(period):
    photo = photo_like(seed=1)
    y, x = torch.meshgrid(torch.arange(photo.shape[-2]), torch.arange(photo.shape[-1]), indexing="ij")
    grating = 3.0 / 255 * torch.cos(2 * torch.pi * (x + y) / period)
    assert quality.lattice_peak((photo + grating).clamp(0, 1)) > 5.0


def test_lattice_peak_reads_the_8_bit_grey_a_saved_file_has():
    photo = photo_like(seed=2)
    saved = (photo * 255).round() / 255
    assert quality.lattice_peak(photo) == pytest.approx(quality.lattice_peak(saved))
    assert quality.lattice_peak(torch.rand(1, 3, 10, 10)) == 1.0  # too small to have a neighbourhood


def test_a_dark_border_is_a_frame_and_a_photo_is_not():
    photo = photo_like(seed=3)
    assert quality.frame_score(photo) < 5.0
    framed = photo.clone()
    framed[..., :3, :] *= 0.4  # a dark line along the top
    framed[..., :, 3:6] *= 0.5  # a dark double line a few pixels from the left edge
    sides = quality.frame_sides(framed)
    assert sides["top"] < -5 and sides["left"] < -5
    assert abs(sides["right"]) < 5
    assert quality.frame_score(framed) > 5.0
    light = photo.clone()
    light[..., :, -8:] = (light[..., :, -8:] + 0.3).clamp(0, 1)
    assert quality.frame_sides(light)["right"] > 30


def test_saturation_and_brightness_spread_in_grey_levels():
    grey = torch.full((1, 3, 32, 32), 0.5)
    assert quality.saturation(grey) == 0.0
    assert quality.brightness_spread(grey) == 0.0
    red = torch.zeros(1, 3, 32, 32)
    red[:, 0] = 1.0
    assert quality.saturation(red) == pytest.approx(255.0)
    halves = torch.zeros(1, 3, 32, 32)
    halves[..., 16:] = 1.0  # half black, half white: grey levels 0 and 255
    assert quality.brightness_spread(halves) == pytest.approx(127.5)


# ------------------------------------------------------------------ impasto.core.lattice: taking the pattern out


@pytest.mark.parametrize("period", [2, 4, 8])
def test_a_pattern_repeating_with_the_cell_is_taken_out_and_the_picture_kept(period):
    from impasto.core import lattice

    photo = photo_like(seed=4)
    cell = torch.rand(1, 3, period, period, generator=torch.Generator().manual_seed(period)) - 0.5
    pattern = (16.0 / 255) * cell.repeat(1, 1, photo.shape[-2] // period, photo.shape[-1] // period)
    marked = photo + pattern
    assert quality.lattice_peak(marked.clamp(0, 1)) > 8.0
    cleaned = lattice.remove_lattice(marked, period)
    assert quality.lattice_peak(cleaned.clamp(0, 1)) < 3.0
    removed = marked - cleaned
    assert float((removed * pattern).sum() / (pattern * pattern).sum()) == pytest.approx(1.0, abs=0.2)
    # beside the pattern, only the photo's own detail at the cell's frequencies goes
    assert (removed - pattern).abs().mean() < 0.7 * pattern.abs().mean()


def test_a_picture_without_a_lattice_and_a_slope_stay_as_they_are():
    from impasto.core import lattice

    photo = photo_like(seed=5)
    assert (lattice.remove_lattice(photo, 8) - photo).abs().mean() < 3.0 / 255
    y, x = torch.meshgrid(torch.arange(96.0), torch.arange(128.0), indexing="ij")
    slope = (0.2 + 0.004 * x + 0.002 * y).expand(1, 3, -1, -1)  # a gradient is no sawtooth
    assert (lattice.remove_lattice(slope, 8) - slope).abs().mean() < 0.5 / 255
    odd = photo[..., :101, :77]  # sides that are not a multiple of the cell
    assert lattice.remove_lattice(odd, 8).shape == odd.shape
    tiny = torch.rand(1, 3, 6, 6)
    assert torch.equal(lattice.remove_lattice(tiny, 8), tiny)


def test_colour_distance_reads_the_palette_not_the_layout():
    photo = photo_like(seed=6)
    flipped = photo.flip(-1).flip(-2)  # the same colours elsewhere
    assert quality.colour_distance(flipped, photo) == pytest.approx(0.0, abs=1e-9)
    assert quality.colour_distance(photo[..., :96, :], photo) < 10  # a part of it, another size
    darker = photo * 0.8
    assert quality.colour_distance(darker, photo) > 10
    grey = photo.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    assert quality.colour_distance(grey, photo) > quality.colour_distance(photo * 0.97, photo)


def test_a_nearest_upsampling_networks_4px_lattice_is_taken_out_and_a_bilinear_ones_painting_kept():
    from impasto.core.modelfile import resolve_model
    from impasto.networks.arbitrary import ArbitraryModel
    from impasto.networks.transformer import NEAREST_CELL, without_lattice

    photo = photo_like()
    tile = 0.06 * (torch.rand(1, 3, NEAREST_CELL, NEAREST_CELL, generator=torch.Generator().manual_seed(1)) - 0.5)
    striped = (photo + tile.repeat(1, 1, photo.shape[-2] // NEAREST_CELL, photo.shape[-1] // NEAREST_CELL)).clamp(0, 1)
    assert quality.lattice_peak(striped) > 5.0
    cleaned = without_lattice(striped, "nearest").clamp(0, 1)
    assert quality.lattice_peak(cleaned) < 3.0
    assert (cleaned - photo).abs().mean() < 0.01
    assert torch.equal(without_lattice(striped, "bilinear"), striped)
    # the shipped network (nearest upsampling) paints without its 2 px columns
    model = ArbitraryModel(resolve_model("arbitrary"), "cpu", "fp32")
    painted = model.stylize(photo, [model.style_code(photo_like(seed=3))])
    assert quality.lattice_peak(painted) < 3.0
