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

Artefact measures, for the decoders and networks that upsample:

* **frame**: how much lighter the outermost 4 px of the image are than the band just inside
  (luminance in 0..1); a network that sees zero padding paints a light or dark frame;
* **grid**: the spectral power at the frequencies of an 8 px lattice (what three 2x nearest
  upsamplings leave on flat areas; its harmonics cover 4 and 2 px lattices) against the power just
  beside them, in luminance or a colour difference, whichever is strongest; about 1 for a photo,
  well above 1 for a visible grid;
* **cell edges**: how much larger the steps between neighbouring pixels are at the strongest
  position of an 8 px cell than on average over its positions (rows or columns, luminance or a
  colour difference, whichever stands out most); about 1.1 for a picture without cells (a JPEG's
  own 8 px compression blocks raise it).  A decoder that paints each cell of its 8 px feature grid
  on its own (short strokes, a cell's choice) has the cells' edges standing out even when no
  single pattern repeats, which the grid measure, reading the lattice's exact frequencies, can
  miss;
* **moved**: how much a painting changes when its photo moves by a few pixels, beyond the move
  itself (root mean square, 0..1 per channel): a pattern tied to the pixel grid instead of to the
  picture, which on video shows as shimmer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .losses import resample_quantiles, shift_consistency
from .runtime import default_encoder

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
    theirs = resample_quantiles(torch.sort(theirs, dim=1).values, ours.shape[1])
    return torch.mean((ours - theirs) ** 2)


@torch.no_grad()
def score(output: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
          device: torch.device | str = "cpu") -> Score:
    """Score ``output`` (``(1, 3, H, W)`` in [0, 1]) against its photo (same size) and style image."""
    device = torch.device(device)
    if output.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"output {tuple(output.shape[-2:])} and photo {tuple(content.shape[-2:])} differ in size")
    encoder = default_encoder([CONTENT_LAYER, *STYLE_LAYERS], device)
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


def _luminance(image: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)
    return (image.float().cpu() * weights).sum(dim=1)[0]


def frame(image: torch.Tensor, band: int = 4) -> float:
    """Mean luminance of the outer ``band`` px minus that of the next ``band`` px inwards."""
    lum = _luminance(image)
    h, w = lum.shape
    if min(h, w) <= 4 * band:
        return 0.0
    outer = torch.ones_like(lum, dtype=torch.bool)
    outer[band:-band, band:-band] = False
    inner = torch.zeros_like(lum, dtype=torch.bool)
    inner[band:-band, band:-band] = True
    inner[2 * band:-2 * band, 2 * band:-2 * band] = False
    return float(lum[outer].mean() - lum[inner].mean())


def _opponent_channels(image: torch.Tensor) -> list[torch.Tensor]:
    """Luminance and two colour differences (red-green, blue-yellow) of ``(1, 3, H, W)``."""
    r, g, b = image.float().cpu()[0]
    return [_luminance(image), r - g, b - (r + g) / 2]


def grid(image: torch.Tensor, period: int = 8) -> float:
    """Power at the ``period`` px lattice's frequencies over the mean power two bins beside them, in
    luminance or either colour difference, whichever is strongest (a lattice can be colour only)."""
    return max(_lattice_peak(channel, period) for channel in _opponent_channels(image))


def _lattice_peak(plane: torch.Tensor, period: int) -> float:
    h, w = plane.shape
    h, w = h - h % period, w - w % period
    if h < 4 * period or w < 4 * period:
        return 1.0
    power = torch.fft.fft2(plane[:h, :w] - plane[:h, :w].mean()).abs() ** 2
    fy, fx = h // period, w // period
    peaks, beside = [], []
    for ky in range(period):
        for kx in range(period):
            if ky == 0 and kx == 0:
                continue
            y, x = ky * fy, kx * fx
            peaks.append(power[y, x])
            beside.extend(power[(y + dy) % h, (x + dx) % w] for dy, dx in ((0, 2), (0, -2), (2, 0), (-2, 0)))
    return float(torch.stack(peaks).mean() / torch.stack(beside).mean().clamp_min(1e-12))


def cell_edges(image: torch.Tensor, period: int = 8) -> float:
    """Mean step between neighbouring pixels at the strongest position of a ``period`` px cell over
    the mean step at all its positions; across columns and rows, in luminance or either colour
    difference, whichever is largest."""
    ratios = []
    for plane in _opponent_channels(image):
        across_columns = (plane[:, 1:] - plane[:, :-1]).abs().mean(dim=0)
        across_rows = (plane[1:, :] - plane[:-1, :]).abs().mean(dim=1)
        for steps in (across_columns, across_rows):
            usable = steps.shape[0] - steps.shape[0] % period
            if usable < 4 * period:
                continue
            per_position = steps[:usable].reshape(-1, period).mean(dim=0)
            ratios.append(float(per_position.max() / per_position.mean().clamp_min(1e-12)))
    return max(ratios, default=1.0)


#: The moves of :func:`moved`: diagonal, down and right, none a multiple of a 4 px stride.
MOVES = ((1, 1), (2, 0), (0, 3))


@torch.no_grad()
def moved(paint: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor) -> float:
    """Root mean square change of ``paint``'s result when ``photo`` moves by each of :data:`MOVES`."""
    painted = paint(photo)
    return float(torch.stack([shift_consistency(paint, photo, painted, move) for move in MOVES]).mean().sqrt())
