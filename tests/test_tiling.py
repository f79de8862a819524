import numpy as np
import pytest
import torch
from PIL import Image

from impasto.engines.optimize import StyleSettings, run
from impasto.engines.tiling import blend_weight, paste, tile_boxes

FAST = dict(precision="fp32", device="cpu", pyramid=1)


def test_tiles_cover_the_image_with_overlap():
    boxes = tile_boxes(300, 500, 128, 32)
    covered = torch.zeros(300, 500)
    for top, left, h, w in boxes:
        assert h <= 128 and w <= 128
        covered[top:top + h, left:left + w] += 1
    assert covered.min() >= 1
    lefts = sorted({b[1] for b in boxes})
    assert all(b - a <= 128 - 32 for a, b in zip(lefts, lefts[1:]))  # neighbours overlap by at least 32
    assert tile_boxes(100, 90, 128, 32) == [(0, 0, 100, 90)]


def test_blending_in_raster_order_keeps_a_constant_constant():
    height, width, tile, overlap = 90, 140, 64, 20
    canvas = torch.zeros(1, 3, height, width)
    for box in tile_boxes(height, width, tile, overlap):
        paste(canvas, torch.ones(1, 3, box[2], box[3]), box, blend_weight(box, height, width, tile, overlap))
    assert torch.allclose(canvas, torch.ones_like(canvas), atol=1e-6)


def test_blend_weight_ramps_only_towards_earlier_tiles():
    boxes = tile_boxes(64, 160, 64, 32)
    first = blend_weight(boxes[0], 64, 160, 64, 32)
    second = blend_weight(boxes[1], 64, 160, 64, 32)
    assert torch.all(first == 1)
    assert second[0, 0, 0, 0] < 0.1 and second[0, 0, 0, -1] == 1
    assert torch.all(second[0, 0, 0, 1:] >= second[0, 0, 0, :-1])


def _noise_style(size: int = 96) -> Image.Image:
    rng = np.random.default_rng(0)
    blobs = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    return Image.fromarray(blobs).resize((size, size), Image.NEAREST)


def _border_and_inside(jumps: torch.Tensor, edges: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    at_border = torch.tensor([float(jumps[e - 1]) for e in edges])
    keep = torch.ones_like(jumps, dtype=torch.bool)
    for e in edges:
        keep[max(0, e - 3):e + 2] = False
    keep[:8] = False  # the image's own border has a frame of its own, in tiled and untiled runs alike
    keep[-8:] = False
    return at_border, jumps[keep]


@pytest.mark.slow
def test_tiled_flat_image_has_no_seams():
    """A flat-coloured photo, stylized coarse to fine with the last level in 6 tiles: no seams."""
    content = Image.new("RGB", (256, 192), (120, 140, 160))
    settings = StyleSettings(size=256, iterations=20, pyramid=2, tile_size=128, tile_overlap=48, style_weight=300,
                             precision="fp32", device="cpu")
    seen = set()
    out = run(content, [_noise_style()], settings, lambda p: seen.add((p.level, tuple(p.image.shape[-2:])))).image
    assert out.shape == (1, 3, 192, 256)
    assert all(max(shape) <= 128 for level, shape in seen if level == 2)  # really optimised in tiles
    assert (out - out.mean()).abs().mean() > 0.02  # and stylized
    boxes = tile_boxes(192, 256, 128, 48)
    for axis, length in ((3, 256), (2, 192)):
        if axis == 3:
            jumps = (out[0, :, :, 1:] - out[0, :, :, :-1]).abs().mean(dim=(0, 1))
            edges = {b[1] for b in boxes if b[1] > 0} | {b[1] + b[3] for b in boxes if b[1] + b[3] < length}
        else:
            jumps = (out[0, :, 1:, :] - out[0, :, :-1, :]).abs().mean(dim=(0, 2))
            edges = {b[0] for b in boxes if b[0] > 0} | {b[0] + b[2] for b in boxes if b[0] + b[2] < length}
        at_border, inside = _border_and_inside(jumps, sorted(edges))
        # no border jump is larger than the jumps inside the tiles, and on average they are alike
        assert at_border.max() <= inside.max(), (axis, at_border, inside.max())
        assert at_border.mean() <= 1.5 * inside.mean(), (axis, at_border, inside.mean())


@pytest.mark.slow
def test_tiles_with_regional_masks():
    content = Image.new("RGB", (128, 96), (128, 128, 128))
    mask = Image.new("L", (128, 96), 0)
    mask.paste(255, (0, 0, 64, 96))
    settings = StyleSettings(size=128, iterations=5, tile_size=64, tile_overlap=16, masks=[mask], **FAST)
    out = run(content, [_noise_style()], settings).image
    assert out.shape == (1, 3, 96, 128)
    assert (out[..., 100:] - 128 / 255).abs().mean() < (out[..., :40] - 128 / 255).abs().mean()
