"""Quality measures (content error, style distance, frame, grid) and the one-pass quality harness."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from helpers import gradient_photo, stripes
from impasto.core import quality
from impasto.networks.adain import Decoder
from impasto.networks.transformer import TransformerNet
from impasto.core.images import as_tensor, resize
from impasto.core.modelfile import ModelFile, save_model

ROOT = Path(__file__).resolve().parents[1]


def test_content_error_and_style_distance_order_images_sensibly():
    photo = as_tensor(gradient_photo(64, 48))
    style = as_tensor(stripes(64, period=8))
    same = quality.score(photo, photo, style)
    assert same.content == 0.0
    striped = resize(style, (48, 64))
    towards_style = quality.score(0.5 * photo + 0.5 * striped, photo, style)
    assert towards_style.style < same.style  # halfway to the painting: closer in style
    assert towards_style.content > 0.0
    assert quality.score(striped, photo, style).style < 0.2 * same.style
    assert set(same.per_layer) == set(quality.STYLE_LAYERS)


def test_style_distance_compares_distributions_of_any_size():
    a = torch.rand(1, 8, 10, 12)
    assert float(quality.sliced_wasserstein(a, a)) < 1e-10
    bigger = torch.nn.functional.interpolate(a, scale_factor=2, mode="nearest")  # same distribution, 4x positions
    assert float(quality.sliced_wasserstein(a, bigger)) < 1e-3
    assert float(quality.sliced_wasserstein(a, a + 1.0)) > 0.5


def test_frame_measures_a_light_border():
    image = torch.full((1, 3, 64, 64), 0.4)
    assert abs(quality.frame(image)) < 1e-6
    framed = image.clone()
    framed[..., :4, :] = framed[..., -4:, :] = framed[..., :, :4] = framed[..., :, -4:] = 0.8
    assert quality.frame(framed) > 0.2


def test_grid_finds_an_eight_pixel_lattice():
    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 140, 140), 13, stride=1)[..., :128, :128]
    lattice = smooth.clone()
    lattice[..., ::8, :] += 0.05
    lattice[..., :, ::8] += 0.05
    assert quality.grid(smooth) < 5
    assert quality.grid(lattice) > 10 * quality.grid(smooth)
    colour_only = smooth.clone()  # a red-green checker at 4 px that leaves luminance nearly flat
    colour_only[..., 0, ::4, ::4] += 0.05
    colour_only[..., 1, ::4, ::4] -= 0.05 * 0.299 / 0.587
    assert quality.grid(colour_only) > 10 * quality.grid(smooth)


def test_cell_edges_finds_cells_painted_each_on_its_own():
    """Each 8 px cell with its own stroke direction: no single pattern repeats, the cells' edges stand out."""
    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 140, 140), 13, stride=1)[..., :128, :128]
    ramp = torch.linspace(-0.1, 0.1, 8)
    cells = smooth.clone()
    for y in range(0, 128, 8):
        for x in range(0, 128, 8):
            stroke = ramp.view(1, 8) if torch.rand(()) < 0.5 else ramp.view(8, 1)
            cells[..., y:y + 8, x:x + 8] += stroke * torch.rand(())
    assert quality.cell_edges(smooth) < 1.3
    assert quality.cell_edges(cells) > 2.0
    assert quality.cell_edges(cells[..., 3:, 5:]) > 2.0  # wherever the cells start
    # taking the cells' mean pattern out leaves their edges (it is what the grid measure reads)
    mean_cell = cells.unfold(2, 8, 8).unfold(3, 8, 8).mean(dim=(2, 3))
    assert quality.cell_edges(cells - mean_cell.repeat(1, 1, 16, 16)) > 2.0


def test_moved_measures_a_pattern_that_stays_while_the_picture_moves():
    torch.manual_seed(0)
    photo = torch.rand(1, 3, 64, 64)
    lattice = torch.zeros(1, 3, 64, 64)
    lattice[..., ::4, ::4] = 0.5
    assert quality.moved(lambda image: image.flip(1), photo) < 1e-6  # a per-pixel change follows the picture
    assert quality.moved(lambda image: image + lattice[..., :image.shape[-2], :image.shape[-1]], photo) > 0.05


def _harness():
    import sys

    if str(ROOT / "benchmarks") not in sys.path:  # as when the script is run: its folder is on the path
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "benchmarks" / "bench_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_harness_runs_on_tiny_images(tmp_path):
    """The harness computes its table, JSON and contact sheet (it does not judge quality here)."""
    data = tmp_path / "data"
    (data / "content").mkdir(parents=True)
    (data / "train" / "style").mkdir(parents=True)
    gradient_photo(56, 40).save(data / "content" / "a.jpg")
    gradient_photo(40, 56).save(data / "content" / "b.jpg")
    stripes(48).save(data / "train" / "style" / "stripes.png")
    stripes(48, ((20, 30, 200), (30, 200, 60)), vertical=False).save(data / "train" / "style" / "bands.png")
    torch.manual_seed(0)
    model = save_model(tmp_path / "m.pt", ModelFile(
        kind="fast", config={"styles": 2, "width": 0.25, "residual_blocks": 5, "output": "direct",
                             "style_names": ["stripes", "bands"]},
        state_dict=TransformerNet(2, 0.25).state_dict()))
    decoder = save_model(tmp_path / "d.pt", ModelFile(kind="adain-decoder", config={}, state_dict=Decoder().state_dict()))
    harness = _harness()
    harness.main(["--model", str(model), "--decoder", str(decoder), "--size", "48", "--iterations", "2",
                  "--data", str(data), "--photos", "a.jpg,b.jpg", "--adain-styles", "bands",
                  "--sheet", str(tmp_path / "sheet.png"), "--results", str(tmp_path / "results")])
    report = json.loads(next((tmp_path / "results").glob("quality-*.json")).read_text())
    methods = {row["method"] for row in report["rows"]}
    assert methods == {"optimisation", "fast m[stripes]", "fast m[bands]", "adain d"}
    assert len(report["rows"]) == 2 * 2 * 3 + 2 * 2  # per style and photo: 3 methods; AdaIN's unseen pairs: 2
    for row in report["summary"]:
        assert row["style_ratio"] > 0 and row["content_ratio"] > 0 and "grid" in row and row["cells"] >= 1
        assert row["moved"] >= 0
    assert len(list((tmp_path / "results" / "cache").glob("*.png"))) == 4  # optimisation results cached
    assert (tmp_path / "sheet.png").stat().st_size > 0
