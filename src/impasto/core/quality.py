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

from impasto.core.edges import side_bands
from impasto.core.losses import resample_quantiles, shift_consistency
from impasto.core.runtime import default_encoder

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


# ------------------------------------------------------------------ machine marks (stripes, frames, colour)
#
# Measured on the picture as a viewer sees it: 8-bit grey levels 0..255 (ITU-R 601 weights, rounded
# as Pillow's "L" conversion rounds them), so that the figures read the same as on a saved file.

#: The lattice periods :func:`lattice_peak` looks at, in pixels (2: a column or row pattern, one
#: pixel on and one off; 4 and 8: what two and three 2x upsamplings can leave).
LATTICE_PERIODS = (2, 4, 8)
#: The side of the spectral neighbourhood whose median a lattice frequency is compared with.
LATTICE_NEIGHBOURHOOD = 13
#: The band width of :func:`frame_sides`, in pixels.
FRAME_BAND = 8


def _grey255(image: torch.Tensor) -> torch.Tensor:
    """``(1, 3, H, W)`` (or ``(1, 1, H, W)``) in [0, 1] -> ``(H, W)`` float64 grey levels 0..255: the
    8-bit values, and their grey in Pillow's fixed point (``(19595 R + 38470 G + 7471 B + 2^15) >> 16``)."""
    levels = (image.detach().cpu().double().clamp(0, 1) * 255.0).round().long()
    if levels.shape[1] == 1:
        return levels[0, 0].double()
    r, g, b = levels[0, :3]
    return ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16).double()


def lattice_peak(image: torch.Tensor) -> float:
    """The strongest spectral peak at the pixel-lattice frequencies of ``image`` (``(1, C, H, W)`` in
    [0, 1]): periods 2, 4 and 8 px along x, along y and along the diagonal, in the spectrum of the
    Hann-windowed grey image, each relative to the median of its 13 x 13 spectral neighbourhood.

    A photo scores about 2; a regular stripe, grid or checkerboard tied to the pixel grid 5 and
    more (a 2 px column pattern a viewer notices at 4x zoom: 8 and more).  Unlike :func:`grid`,
    which averages the power over a whole 8 px lattice's frequencies, this reads the single
    strongest one, so one stripe direction is enough to show."""
    grey = _grey255(image)
    h, w = grey.shape
    if min(h, w) < 2 * LATTICE_NEIGHBOURHOOD:
        return 1.0
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64),
                         torch.hann_window(w, periodic=False, dtype=torch.float64))
    spectrum = torch.fft.fft2((grey - grey.mean()) * window).abs()
    half = LATTICE_NEIGHBOURHOOD // 2
    offsets = torch.arange(-half, half + 1)

    def peak(fy: float, fx: float) -> float:
        iy, ix = round(fy * h) % h, round(fx * w) % w
        around = spectrum[((iy + offsets) % h)[:, None], ((ix + offsets) % w)[None, :]]
        return float(spectrum[iy, ix] / around.median().clamp_min(1e-12))

    frequencies = [1.0 / period for period in LATTICE_PERIODS]
    return max([peak(0.0, f) for f in frequencies] + [peak(f, 0.0) for f in frequencies]
               + [peak(f, f) for f in frequencies])


def frame_sides(image: torch.Tensor, band: int = FRAME_BAND) -> dict[str, float]:
    """Per side (top, bottom, left, right): the mean grey level (0..255) of the outer ``band`` px
    rows or columns minus that of the next ``band`` px inward (negative: a dark frame; the corners
    left out: :func:`impasto.core.edges.side_bands`)."""
    return dict(zip(("top", "bottom", "left", "right"), side_bands(_grey255(image), band).tolist()))


def frame_score(image: torch.Tensor, band: int = FRAME_BAND) -> float:
    """How much of a frame ``image`` has: the mean over its four sides of the absolute difference
    (grey levels 0..255) between the outer ``band`` px rows or columns and the next ``band`` px
    inward (:func:`frame_sides`).  A photo's own light falls off a little towards its edges (a few
    levels); a network that paints a dark or light frame scores well above 5."""
    return sum(abs(value) for value in frame_sides(image, band).values()) / 4.0


def saturation(image: torch.Tensor) -> float:
    """Mean HSV saturation, 0..255 ((max - min) / max of each pixel's channels)."""
    rgb = image.detach().cpu().double().clamp(0, 1)[0, :3]
    high, low = rgb.max(dim=0).values, rgb.min(dim=0).values
    return float(torch.where(high > 0, (high - low) / high.clamp_min(1e-12), torch.zeros_like(high)).mean() * 255.0)


def brightness_spread(image: torch.Tensor) -> float:
    """Standard deviation of the grey levels (0..255): the picture's contrast."""
    return float(_grey255(image).std(unbiased=False))


#: Directions the colour distance projects the pixels on: the three channels, grey and the two
#: colour differences, so each counts alike and the figure reads in levels of one of them.
_COLOUR_DIRECTIONS = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.299, 0.587, 0.114],
                                   [1, -1, 0], [0.5, 0.5, -1]], dtype=torch.float64)


def colour_distance(image: torch.Tensor, painting: torch.Tensor, quantiles: int = 256) -> float:
    """How far ``image``'s colours are from ``painting``'s, as distributions (palette and contrast,
    not where the colours are): the mean over six directions in RGB (R, G, B, grey, red-green,
    blue-yellow) of the mean absolute difference between the two images' sorted values there,
    8-bit levels (0 for the same palette; each image may be any size)."""
    def sorted_projections(picture: torch.Tensor) -> torch.Tensor:
        pixels = (picture.detach().cpu().double().clamp(0, 1)[0, :3] * 255.0).round().flatten(1).T
        projected = torch.sort(pixels @ _COLOUR_DIRECTIONS.T, dim=0).values
        index = torch.linspace(0, projected.shape[0] - 1, quantiles, dtype=torch.float64).round().long()
        return projected[index]

    return float((sorted_projections(image) - sorted_projections(painting)).abs().mean())
