"""How good a stylized image is: content error and a style distance that no method optimises directly.

Training and the optimisation method minimise Gram (or mean/std) losses, so scoring them with
the same losses would flatter whichever method optimises that loss hardest.  The measures here
are independent of every training objective:

* **content error**: mean squared difference of the relu4_2 features of the output and the photo,
  divided by the photo's mean squared feature (0 = the photo's structure kept exactly, 1 = as far
  from it as a blank image is);
* **style distance**: the sliced Wasserstein distance between the output's and the style image's
  feature distributions (Heitz et al. 2021; fixed random projections, whole sorted distributions,
  not two moments), on relu1_1 ... relu4_1, each layer divided by the style's mean squared feature
  so that colour (relu1_1) counts as much as texture (relu3_1, relu4_1).  Averaged over layers.

Both are unitless and comparable across sizes; lower is better.  The backbone is the same frozen
VGG-19 every method uses, run in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .losses import _resample
from .runtime import get_backbone

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
DIRECTIONS = 128


@dataclass
class Score:
    content: float  # content error (relative; lower keeps more of the photo)
    style: float  # style distance to the style image (relative; lower looks more like it)
    per_layer: dict[str, float]


def _projections(channels: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed + channels)
    raw = torch.randn(channels, DIRECTIONS, generator=generator)
    return raw / raw.norm(dim=0, keepdim=True)


def sliced_wasserstein(features: torch.Tensor, target: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Squared sliced Wasserstein distance between two ``(1, C, H, W)`` feature maps' distributions.

    The two maps may have different sizes: the target's sorted projections are resampled to the
    number of positions of ``features``.
    """
    c = features.shape[1]
    projection = _projections(c, seed).to(features.device)
    ours = features.float().flatten(2).transpose(1, 2) @ projection  # (1, positions, directions)
    theirs = target.float().flatten(2).transpose(1, 2) @ projection
    ours = torch.sort(ours, dim=1).values
    theirs = _resample(torch.sort(theirs, dim=1).values, ours.shape[1])
    return torch.mean((ours - theirs) ** 2)


@torch.no_grad()
def score(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
          device: torch.device | str = "cpu") -> Score:
    """Score ``output`` (``(1, 3, H, W)`` in [0, 1]) against its photo (same size) and style image."""
    device = torch.device(device)
    if output.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"output {tuple(output.shape[-2:])} and photo {tuple(content.shape[-2:])} differ in size")
    encoder = get_backbone("vgg19", "caffe", "max", [CONTENT_LAYER, *STYLE_LAYERS], device)
    layers = [CONTENT_LAYER, *STYLE_LAYERS]
    out_f = encoder(output.float().clamp(0, 1).to(device), layers)
    content_f = encoder(content.float().to(device), [CONTENT_LAYER])[CONTENT_LAYER].float()
    style_f = encoder(style.float().to(device), list(STYLE_LAYERS))
    content_error = torch.mean((out_f[CONTENT_LAYER].float() - content_f) ** 2) / torch.mean(content_f ** 2)
    per_layer = {}
    for name in STYLE_LAYERS:
        target = style_f[name].float()
        per_layer[name] = float(sliced_wasserstein(out_f[name], target) / torch.mean(target ** 2))
    return Score(content=float(content_error), style=sum(per_layer.values()) / len(per_layer), per_layer=per_layer)
