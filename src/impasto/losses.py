"""Loss functions on backbone features, shared by every method (optimisation, feed-forward, AdaIN).

Every loss is a mean, never a sum, so that the same weights behave the same at any image size:
the content loss is the mean squared feature difference, the Gram matrix is normalised by the
number of feature elements (C*H*W, as in jcjohnson/neural-style), and the style loss is the
mean squared difference of Gram matrices.  Features are promoted to float32 before any
reduction so that bf16 autocast only speeds up the convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from .errors import ImpastoError


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)`` channel correlations, divided by C*H*W.

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
    flat = features.permute(0, 2, 3, 1).reshape(n, h * w, c)
    return torch.bmm(flat.transpose(1, 2), flat).float() / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between feature maps."""
    return torch.mean((features.float() - target.float()) ** 2)


def gram_style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the Gram matrix of ``features`` and a target Gram matrix."""
    return torch.mean((gram_matrix(features) - target_gram) ** 2)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and standard deviation over the spatial dimensions, shaped ``(N, C, 1, 1)``."""
    flat = features.float().flatten(2)
    mean = flat.mean(dim=2)
    std = (flat.var(dim=2, unbiased=False) + eps).sqrt()
    return mean[..., None, None], std[..., None, None]


def mean_std_loss(features: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of channel-wise statistics (the AdaIN style loss)."""
    mean, std = mean_std(features)
    return torch.mean((mean - target_mean) ** 2) + torch.mean((std - target_std) ** 2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels (smoothness prior)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return torch.mean(dx.float() ** 2) + torch.mean(dy.float() ** 2)


def normalised(weights: Sequence[float], what: str) -> list[float]:
    """Non-negative weights scaled to sum to one (blend weights of several styles)."""
    weights = [float(w) for w in weights]
    if any(w < 0 or w != w for w in weights) or sum(weights) <= 0:
        raise ImpastoError(f"{what} must be non-negative and not all zero, got {weights}")
    total = sum(weights)
    return [w / total for w in weights]


@dataclass
class StyleObjective:
    """alpha * content + beta * style + tv, with per-layer weights, against fixed targets.

    ``content_targets`` maps layer -> feature map of the content image; ``style_grams`` maps
    layer -> (blended) Gram matrix of the style image(s).
    """

    content_targets: Mapping[str, torch.Tensor]
    style_grams: Mapping[str, torch.Tensor]
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 0.0
    content_layer_weights: Mapping[str, float] = field(default_factory=dict)
    style_layer_weights: Mapping[str, float] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([*self.content_targets, *self.style_grams]))

    def terms(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The weighted loss terms (content, style, tv) and their sum (total)."""
        zero = image.new_zeros((), dtype=torch.float32)
        content = sum(
            (self.content_layer_weights.get(name, 1.0) * content_loss(features[name], target)
             for name, target in self.content_targets.items()),
            zero,
        )
        style = sum(
            (self.style_layer_weights.get(name, 1.0) * gram_style_loss(features[name], target)
             for name, target in self.style_grams.items()),
            zero,
        )
        tv = total_variation(image) if self.tv_weight else zero
        terms = {
            "content": self.content_weight * content,
            "style": self.style_weight * style,
            "tv": self.tv_weight * tv,
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
