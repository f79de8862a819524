"""Loss functions on backbone features, shared by every method (optimisation, feed-forward, AdaIN).

Every loss is a mean, never a sum, so that the same weights behave the same at any image size:
the content loss is the mean squared feature difference, the Gram matrix is normalised by the
number of feature elements (C*H*W, as in jcjohnson/neural-style), and the style loss is the
mean squared difference of Gram matrices.  Features are promoted to float32 before any
reduction so that bf16 autocast only speeds up the convolutions.

Style losses take an optional mask (``(N, 1, h, w)`` weights in [0, 1] at the layer's
resolution): the statistics are then those of the masked region only (Gatys et al. 2017,
"Controlling perceptual factors"), which is how regions and regional styles are controlled.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from impasto.core.errors import ImpastoError


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)`` channel correlations, divided by C*H*W.

    With a mask, the correlations of the masked region, divided by C times the mask's area.
    Works on an ``(N, H*W, C)`` view so that channels-last features (as the backbone makes them)
    are not copied, and their gradient comes back in the same layout (a mismatched layout makes
    autograd's gradient accumulation several times slower).  bf16 features (from autocast) are
    multiplied in bf16 with float32 accumulation: as accurate as the features themselves, and
    the products are a third of the cost of a step at 512 px otherwise.  fp16 is promoted, since
    its range cannot hold the sums.
    """
    n, c, h, w = features.shape
    if features.dtype != torch.bfloat16:
        features = features.float()
    if mask is not None:
        # weight each position by sqrt(mask) on both sides: the Gram of the region, mask-weighted
        features = features * mask.to(features.dtype).sqrt()
        area = mask.float().sum(dim=(1, 2, 3)).clamp_min(1e-6).view(n, 1, 1)
    else:
        area = float(h * w)
    flat = features.permute(0, 2, 3, 1).reshape(n, h * w, c)
    return torch.bmm(flat.transpose(1, 2), flat).float() / (c * area)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between feature maps."""
    return torch.mean((features.float() - target.float()) ** 2)


def gram_style_loss(features: torch.Tensor, target_gram: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference between the Gram matrix of ``features`` and a target Gram matrix."""
    return torch.mean((gram_matrix(features, mask) - target_gram) ** 2)


def relative_content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Content loss divided by the target's mean square, per image: unitless, the same for every layer."""
    dims = tuple(range(1, target.dim()))
    error = torch.mean((features.float() - target.float()) ** 2, dim=dims)
    return torch.mean(error / torch.mean(target.float() ** 2, dim=dims).clamp_min(1e-8))


def relative_gram_loss(features: torch.Tensor, target_gram: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gram loss divided by the target Gram's mean square, per image.

    In raw units the layers differ by orders of magnitude (with the Caffe VGG-19, relu4_1 carries
    about 95 % of a Gram loss, relu1_1 -- colour -- almost nothing), so a network trained on the
    raw sum leaves colours alone and lowers the loss with a few strong deep-layer patches.  Divided
    by the target's own scale, every layer (colour, strokes, motifs) counts alike.
    """
    error = torch.mean((gram_matrix(features, mask) - target_gram) ** 2, dim=(1, 2))
    return torch.mean(error / torch.mean(target_gram ** 2, dim=(1, 2)).clamp_min(1e-12))


#: Elements of one piece of a map whose statistics are summed in float32 (4 MiB: in the cache).
MOMENT_PIECE = 1 << 20
#: Row width the per-channel arithmetic on a channels-last map is done at (see :func:`widened`).
WIDE_ROW = 128


def widened(pixels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(N, P, C)`` seen as ``(N, P / k, k C)`` (a view of a contiguous one): with C = 16 channels,
    a per-channel operation runs a vector 16 wide per pixel, far slower than on rows of 128."""
    n, count, c = pixels.shape
    k = 1
    while k * c < WIDE_ROW and count % (2 * k) == 0:
        k *= 2
    return pixels.reshape(n, count // k, k * c), k


def channel_moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased) variance of each image's channels, ``(N, C)`` float32 each, of a
    ``(N, C, H, W)`` map in any float dtype and either layout (read as it is stored).

    Sums in float32 piece by piece around a pivot (the first pixels' mean): no float32 copy of the
    whole map (PyTorch's ``sum(dtype=float32)`` of a bf16 map makes one, costly for a 1080p layer),
    no cancellation when the mean is large beside the spread, and plain reductions, so the same
    numbers for any thread count.  Differentiable."""
    n, c, h, w = features.shape
    count = h * w
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        pixels = features.permute(0, 2, 3, 1).reshape(n, count, c)  # a view
        rows, k = widened(pixels)  # (N, P / k, k C)
        axis, pivot = 1, pixels[:, :4096].float().mean(1)  # (N, C)
        shift = pivot.repeat(1, k)[:, None, :]
    else:
        rows, k = features.reshape(n, c, count), 1  # (N, C, P)
        axis, pivot = 2, rows[:, :, :4096].float().mean(2)
        shift = pivot[:, :, None]
    step = max(1, MOMENT_PIECE // (rows.numel() // rows.shape[axis]))
    first = second = 0.0
    for start in range(0, rows.shape[axis], step):
        part = rows.narrow(axis, start, min(step, rows.shape[axis] - start)) - shift
        first = first + part.sum(axis)
        second = second + part.square().sum(axis)
    if k > 1:
        first, second = first.view(n, k, c).sum(1), second.view(n, k, c).sum(1)
    offset = first / count
    return pivot + offset, (second / count - offset.square()).clamp_min(0.0)


def mean_std(features: torch.Tensor, eps: float = 1e-5, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and standard deviation over the spatial dimensions, shaped ``(N, C, 1, 1)``;
    without a mask from :func:`channel_moments` (the map's own layout and dtype, no copy)."""
    if mask is None:
        mean, var = channel_moments(features)
    else:
        flat = features.float().flatten(2)
        weights = mask.float().flatten(2)
        total = weights.sum(dim=2).clamp_min(1e-6)
        mean = (flat * weights).sum(dim=2) / total
        var = ((flat - mean[..., None]) ** 2 * weights).sum(dim=2) / total
    return mean[..., None, None], (var + eps).sqrt()[..., None, None]


def mean_std_loss(features: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference of channel-wise statistics (the AdaIN style loss)."""
    mean, std = mean_std(features, mask=mask)
    return torch.mean((mean - target_mean) ** 2) + torch.mean((std - target_std) ** 2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smoothness prior)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx.float() ** 2) + torch.mean(dy.float() ** 2)


#: How far the photo is moved for the shift-consistency loss: never a multiple of a network's 4 or
#: 8 px stride, so a pattern tied to the pixel grid moves against the picture and costs.
SHIFTS = (1, 2, 3, 5, 6, 7)


def shift_images(batch_size: int, share: float) -> int:
    """How many images of a batch the shift-consistency pass paints again: ``share`` of them,
    rounded up, at least one.  The extra pass is the term's whole cost; a part of the batch is
    enough to keep a lattice away (measured: docs/archive/benchmarks-history.md, "Training speed")."""
    if not 0 < share <= 1:
        raise ImpastoError(f"the shift share must be in (0, 1], got {share}")
    return max(1, math.ceil(batch_size * share))


def random_shift(rng: random.Random) -> tuple[int, int]:
    """A move of 1-7 px (:data:`SHIFTS`) down, right or both."""
    step = rng.choice(SHIFTS)
    return rng.choice(((step, 0), (0, step), (step, step)))


def shift_consistency(paint: Callable[[torch.Tensor], torch.Tensor], photo: torch.Tensor, painted: torch.Tensor,
                      shift: tuple[int, int], margin: int = 8) -> torch.Tensor:
    """Mean squared difference between the painting of the photo moved by ``shift`` (dy, dx) px and
    the photo's painting ``painted`` moved by as much.

    A network with stride-2 stages can tie a pattern to its pixel grid instead of to the picture (a
    fine colour lattice that no style loss sees, since Gram matrices ignore position); this term
    makes the painting follow the picture, which also steadies it on moving video.  The moved photo
    loses 8 px on each axis (keeping a multiple of a 4 or 8 px stride); the outer ``margin`` px are left out, their padding
    differs between the two.
    """
    dy, dx = shift
    h, w = photo.shape[-2:]
    rows, cols = slice(dy, h - 8 + dy), slice(dx, w - 8 + dx)
    moved = paint(photo[..., rows, cols]).float()
    expected = painted.float()[..., rows, cols]
    inner = (..., slice(margin, -margin), slice(margin, -margin))
    return torch.mean((moved[inner] - expected[inner]) ** 2)


def normalised(weights: Sequence[float], what: str) -> list[float]:
    """Non-negative weights scaled to sum to one (blend weights of several styles)."""
    weights = [float(w) for w in weights]
    if any(not (0 <= w < math.inf) for w in weights) or sum(weights) <= 0:
        raise ImpastoError(f"{what} must be finite, non-negative and not all zero, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A ``(N, 1, H, W)`` mask at another resolution (area-averaged when shrinking)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    if size[0] <= mask.shape[-2] and size[1] <= mask.shape[-1]:
        return F.adaptive_avg_pool2d(mask, size)
    return F.interpolate(mask, size=size, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------ style losses


class GramLoss:
    """Gatys's style loss: Gram matrices (second-order feature statistics)."""

    name = "gram"
    default_weight = 30.0

    def target(self, features: torch.Tensor, layer: str) -> Any:
        return gram_matrix(features)

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> Any:
        """The loss is quadratic in its target: a weighted sum of targets has the same minimiser."""
        return sum(w * t for w, t in zip(weights, targets))

    def __call__(self, features: torch.Tensor, target: Any, layer: str, mask: torch.Tensor | None = None) -> torch.Tensor:
        return gram_style_loss(features, target, mask)

    # the training form: relative (each layer divided by its target's scale), nothing drawn per step

    def training_target(self, features: torch.Tensor) -> torch.Tensor:
        return gram_matrix(features)

    def draw(self, rng: random.Random) -> None:
        return None

    def relative(self, features: torch.Tensor, target: torch.Tensor, drawn: None = None) -> torch.Tensor:
        return relative_gram_loss(features, target)


class MeanStdLoss:
    """Channel mean and standard deviation (Huang & Belongie's AdaIN statistics): lighter, blurrier."""

    name = "mean_std"
    default_weight = 300.0

    def target(self, features: torch.Tensor, layer: str) -> Any:
        return mean_std(features)

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> Any:
        return (sum(w * t[0] for w, t in zip(weights, targets)), sum(w * t[1] for w, t in zip(weights, targets)))

    def __call__(self, features: torch.Tensor, target: Any, layer: str, mask: torch.Tensor | None = None) -> torch.Tensor:
        return mean_std_loss(features, target[0], target[1], mask)


class SlicedWassersteinLoss:
    """Sliced Wasserstein distance between feature distributions (Heitz et al. 2021).

    Features are projected on fixed random directions (fixed so that L-BFGS sees one objective)
    and the sorted projections are compared with the style's quantiles: it matches the whole
    distribution, not only two moments, and keeps textures sharper than a Gram loss.
    """

    name = "swd"
    default_weight = 3000.0

    def __init__(self, directions: int = 64, seed: int = 0) -> None:
        self.directions = directions
        self.seed = seed
        self._projections: dict[tuple[str, int], torch.Tensor] = {}

    def projection(self, layer: str, channels: int, device: torch.device) -> torch.Tensor:
        key = (layer, channels)
        if key not in self._projections:
            generator = torch.Generator().manual_seed(self.seed + sum(map(ord, layer)))
            raw = torch.randn(channels, min(self.directions, channels), generator=generator)
            self._projections[key] = torch.linalg.qr(raw).Q  # orthonormal directions
        return self._projections[key].to(device)

    def _project(self, features: torch.Tensor, layer: str) -> torch.Tensor:
        n, c, h, w = features.shape
        flat = features.float().permute(0, 2, 3, 1).reshape(n, h * w, c)
        return flat @ self.projection(layer, c, features.device)  # (N, positions, directions)

    def target(self, features: torch.Tensor, layer: str) -> Any:
        return torch.sort(self._project(features, layer), dim=1).values

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> Any:
        return None  # not quadratic in the target: each style keeps its own term

    def __call__(self, features: torch.Tensor, target: Any, layer: str, mask: torch.Tensor | None = None) -> torch.Tensor:
        projected = self._project(features, layer)
        if mask is not None:  # the region's positions only (mask above one half)
            keep = mask.flatten(1)[0] > 0.5
            projected = projected[:, keep]
            if projected.shape[1] == 0:
                return features.new_zeros((), dtype=torch.float32)
        values = torch.sort(projected, dim=1).values
        quantiles = resample_quantiles(target, values.shape[1])
        return torch.mean((values - quantiles) ** 2) / features.shape[1]

    # the training form: fresh directions each step (drawn from the run's random stream), relative

    def training_target(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def draw(self, rng: random.Random) -> torch.Generator:
        return fresh_directions(rng)

    def relative(self, features: torch.Tensor, target: torch.Tensor, drawn: torch.Generator) -> torch.Tensor:
        return relative_sliced_wasserstein(features, target, drawn, self.directions)


def resample_quantiles(sorted_values: torch.Tensor, count: int) -> torch.Tensor:
    """Linearly interpolated quantiles of sorted ``(N, M, K)`` values at ``count`` points."""
    m = sorted_values.shape[1]
    if m == count:
        return sorted_values
    position = torch.linspace(0, m - 1, count, device=sorted_values.device)
    low = position.floor().long()
    high = (low + 1).clamp_max(m - 1)
    frac = (position - low.float()).view(1, -1, 1)
    return sorted_values[:, low] * (1 - frac) + sorted_values[:, high] * frac


#: The style terms a network can train on: Gram matrices (Johnson et al.'s), or the sliced
#: Wasserstein distance between the feature distributions (:func:`relative_sliced_wasserstein`).
TRAINING_STYLE_LOSSES = ("gram", "swd")


def training_style_loss(name: str) -> "GramLoss | SlicedWassersteinLoss":
    """The style loss a network trains on, by name (its ``training_target``, ``draw`` and
    ``relative`` are the training form of the loss the optimisation method uses), else the one-line error."""
    if name not in TRAINING_STYLE_LOSSES:
        raise ImpastoError(f"unknown style loss {name!r}; choose {' or '.join(TRAINING_STYLE_LOSSES)}",
                           parameter="style_loss")
    return STYLE_LOSSES[name]()


def fresh_directions(rng: random.Random) -> torch.Generator:
    """The random directions of one training step's sliced Wasserstein terms, drawn from the run's
    own random stream (so a resumed run draws the same ones)."""
    return torch.Generator().manual_seed(rng.randrange(2 ** 31))


def relative_sliced_wasserstein(features: torch.Tensor, target: torch.Tensor, generator: torch.Generator,
                                directions: int = 64) -> torch.Tensor:
    """Mean over images of the squared sliced Wasserstein distance between each output's and its
    painting's feature distribution (``(N, C, H, W)``, and ``(N, ...)`` or ``(1, ...)`` for one
    painting for all, any sizes: the painting is projected and sorted once), on ``directions`` random
    orthonormal directions drawn from ``generator`` (fresh ones each call: over many training steps
    every direction of the features is matched, not a fixed few), divided by the painting's mean
    square projection so that every layer counts alike (as the quality measure's distance)."""
    channels = features.shape[1]
    raw = torch.randn(channels, min(directions, channels), generator=generator)
    projection = torch.linalg.qr(raw).Q.to(features.device)

    def projected(maps: torch.Tensor) -> torch.Tensor:
        n, c, h, w = maps.shape
        return maps.float().permute(0, 2, 3, 1).reshape(n, h * w, c) @ projection

    ours = torch.sort(projected(features), dim=1).values
    theirs = resample_quantiles(torch.sort(projected(target), dim=1).values, ours.shape[1])
    error = torch.mean((ours - theirs) ** 2, dim=(1, 2))
    return torch.mean(error / torch.mean(theirs ** 2, dim=(1, 2)).clamp_min(1e-12))


STYLE_LOSSES = {"gram": GramLoss, "mean_std": MeanStdLoss, "swd": SlicedWassersteinLoss}


def make_style_loss(name: str) -> GramLoss | MeanStdLoss | SlicedWassersteinLoss:
    if name not in STYLE_LOSSES:
        raise ImpastoError(f"unknown style loss {name!r}; choose one of {', '.join(STYLE_LOSSES)}")
    return STYLE_LOSSES[name]()


# --------------------------------------------------------------------------------------- objective


@dataclass
class StyleTarget:
    """One style's statistics per layer, its weight, and (optionally) the region it applies to."""

    stats: Mapping[str, Any]
    weight: float = 1.0
    masks: Mapping[str, torch.Tensor] | None = None  # per layer, (1, 1, h, w)


@dataclass
class TemporalTarget:
    """Ruder et al. 2016: stay close to an earlier output warped into this frame, where the flow is reliable.

    ``image`` (1, 3, H, W) in [0, 1] and ``reliable`` (1, 1, H, W) weights in [0, 1] are at the
    size of the image being optimised.  The loss is the mean over all pixels of
    reliable * (output - image)^2 in 0-255 units (as in the paper), times ``weight``.
    """

    image: torch.Tensor
    reliable: torch.Tensor
    weight: float = 1.0

    def loss(self, image: torch.Tensor) -> torch.Tensor:
        difference = (image.float() - self.image.to(image.device)) * 255.0
        return torch.mean(self.reliable.to(image.device) * difference ** 2)


@dataclass
class StyleObjective:
    """alpha * content + beta * style + tv, with per-layer weights, against fixed targets."""

    content_targets: Mapping[str, torch.Tensor]
    style_targets: Sequence[StyleTarget]
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 0.0
    content_layer_weights: Mapping[str, float] = field(default_factory=dict)
    style_layer_weights: Mapping[str, float] = field(default_factory=dict)
    style_loss: Any = field(default_factory=GramLoss)
    temporal: Sequence[TemporalTarget] = ()

    @property
    def layers(self) -> list[str]:
        style_layers = [name for target in self.style_targets for name in target.stats]
        return list(dict.fromkeys([*self.content_targets, *style_layers]))

    def terms(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weighted loss terms (content, style, tv) and their sum (total)."""
        zero = image.new_zeros((), dtype=torch.float32)
        content = sum(
            (self.content_layer_weights.get(name, 1.0) * content_loss(features[name], target)
             for name, target in self.content_targets.items()),
            zero,
        )
        style = zero
        for target in self.style_targets:
            for name, stat in target.stats.items():
                mask = target.masks[name] if target.masks is not None else None
                layer_weight = self.style_layer_weights.get(name, 1.0)
                style = style + target.weight * layer_weight * self.style_loss(features[name], stat, name, mask)
        tv = total_variation(image) if self.tv_weight else zero
        terms = {
            "content": self.content_weight * content,
            "style": self.style_weight * style,
            "tv": self.tv_weight * tv,
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        if self.temporal:
            terms["temporal"] = sum((target.weight * target.loss(image) for target in self.temporal), zero)
            terms["total"] = terms["total"] + terms["temporal"]
        return terms


def mask_pyramid(mask: torch.Tensor, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mask at the resolution of each layer's feature map."""
    return {name: resize_mask(mask, tuple(f.shape[-2:])) for name, f in features.items()}

