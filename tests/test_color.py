import pytest
import torch

from impasto.core.color import match_histogram, rgb_to_ycbcr, transfer_luminance, ycbcr_to_rgb
from impasto.core.images import as_tensor
from impasto.engines.optimize import StyleSettings, run

from helpers import gradient_photo, stripes

FAST = dict(size=64, precision="fp32", device="cpu", iterations=15)


def test_ycbcr_round_trip():
    x = torch.rand(1, 3, 5, 7)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5)
    gray = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(rgb_to_ycbcr(gray)[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6)


def test_transfer_luminance_keeps_content_chroma():
    content, stylized = torch.rand(1, 3, 8, 8) * 0.5 + 0.25, torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    out = transfer_luminance(stylized, content)
    assert torch.allclose(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(content)[:, 1:], atol=1e-4)
    assert torch.allclose(rgb_to_ycbcr(out)[:, :1], rgb_to_ycbcr(stylized)[:, :1], atol=1e-4)


def test_match_histogram_gives_content_statistics():
    style = torch.rand(1, 3, 50, 50) ** 2 * torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    style[:, 1] += 0.3 * style[:, 0]  # correlated channels
    content = torch.rand(1, 3, 40, 40) * torch.tensor([0.3, 0.6, 0.9]).view(1, 3, 1, 1) + 0.05
    out = match_histogram(style, content)
    flat_out, flat_content = out[0].reshape(3, -1), content[0].reshape(3, -1)
    assert torch.allclose(flat_out.mean(1), flat_content.mean(1), atol=0.02)
    assert torch.allclose(torch.cov(flat_out), torch.cov(flat_content), atol=0.01)


def _mean_chroma(image: torch.Tensor) -> torch.Tensor:
    return rgb_to_ycbcr(image)[:, 1:].mean(dim=(2, 3))


@pytest.mark.slow
def test_preserve_color_keeps_chroma_close_to_content_and_far_from_style():
    content = as_tensor(gradient_photo())
    style = stripes(colours=((30, 200, 40), (10, 120, 20)))  # strongly green
    plain = run(content, [style], StyleSettings(**FAST)).image
    for method in ("luminance", "histogram"):
        kept = run(content, [style], StyleSettings(preserve_color=method, **FAST)).image
        to_content = (_mean_chroma(kept) - _mean_chroma(content)).abs().sum()
        to_style = (_mean_chroma(kept) - _mean_chroma(as_tensor(style))).abs().sum()
        plain_to_content = (_mean_chroma(plain) - _mean_chroma(content)).abs().sum()
        assert to_content < (0.5 if method == "luminance" else 0.8) * plain_to_content, method
        assert to_content < 0.5 * to_style, method
    luminance = run(content, [style], StyleSettings(preserve_color="luminance", **FAST)).image
    assert (rgb_to_ycbcr(luminance)[:, 1:] - rgb_to_ycbcr(content)[:, 1:]).abs().mean() < 0.02
