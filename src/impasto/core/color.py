"""Colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving color in neural
artistic style transfer"): keep the photo's colours and take only the brushwork from the style.

Two methods:

* ``luminance``: stylize, then keep the result's luminance and the content's chroma (YCbCr,
  BT.601).  The style's luminance is first matched in mean and spread to the content's, so
  that a dark painting does not darken the photo.
* ``histogram``: before stylizing, recolour the style image so that its colour mean and
  covariance match the content's (a linear map through the matrix square roots of the two
  covariances), then stylize as usual.

One policy for every method (:func:`styles_for` before painting, :func:`finish` after): a method
that learns from style images sees them recoloured (``histogram``) or brightness-matched
(``luminance``) to the photo, so those modes make the paintings depend on the photo; a model with
its styles built in has no image to recolour and keeps the photo's colours by ``luminance`` alone
(:func:`for_model`).

All functions take and return ``(1, 3, H, W)`` float tensors in [0, 1].
"""

from __future__ import annotations

from typing import Sequence

import torch

METHODS = ("none", "luminance", "histogram")

_RGB_TO_YCBCR = torch.tensor([
    [0.299, 0.587, 0.114],
    [-0.168736, -0.331264, 0.5],
    [0.5, -0.418688, -0.081312],
])
_YCBCR_TO_RGB = torch.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> Y in [0, 1], Cb and Cr centred on 0."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YCBCR.to(image), image)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", _YCBCR_TO_RGB.to(image), image)


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Shift and scale the style's luminance to the content's mean and standard deviation."""
    s, c = rgb_to_ycbcr(style), rgb_to_ycbcr(content)
    y_s, y_c = s[:, :1], c[:, :1]
    y = (y_s - y_s.mean()) / y_s.std().clamp_min(1e-6) * y_c.std() + y_c.mean()
    return ycbcr_to_rgb(torch.cat([y, s[:, 1:]], dim=1)).clamp(0, 1)


def transfer_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylized image's luminance with the content's chroma."""
    if stylized.shape[-2:] != content.shape[-2:]:
        content = torch.nn.functional.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    y = rgb_to_ycbcr(stylized)[:, :1]
    chroma = rgb_to_ycbcr(content)[:, 1:]
    return ycbcr_to_rgb(torch.cat([y, chroma], dim=1)).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-8)
    power = -0.5 if inverse else 0.5
    return vectors @ torch.diag(values ** power) @ vectors.T


def match_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Recolour ``style`` so that its RGB mean and covariance equal the content's."""
    s = style[0].reshape(3, -1).double()
    c = content[0].reshape(3, -1).double()
    mu_s, mu_c = s.mean(dim=1, keepdim=True), c.mean(dim=1, keepdim=True)
    cov_s = torch.cov(s) + 1e-5 * torch.eye(3, dtype=s.dtype)
    cov_c = torch.cov(c) + 1e-5 * torch.eye(3, dtype=c.dtype)
    transform = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    out = transform @ (s - mu_s) + mu_c
    return out.reshape_as(style[0]).unsqueeze(0).float().clamp(0, 1)


def styles_for(mode: str, styles: Sequence[torch.Tensor], content: torch.Tensor) -> list[torch.Tensor]:
    """The style images as a method should learn from them under ``mode``: recoloured to the photo
    (``histogram``), their luminance matched to the photo's (``luminance``: a dark painting does not
    darken the photo), or as given (``none``)."""
    if mode == "histogram":
        return [match_histogram(style, content) for style in styles]
    if mode == "luminance":
        return [match_luminance(style, content) for style in styles]
    return list(styles)


def finish(mode: str, stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result under ``mode``: for ``luminance``, the result's brightness with the photo's colours."""
    return transfer_luminance(stylized, content) if mode == "luminance" else stylized


def depends_on_photo(mode: str) -> bool:
    """Whether the style images a method learns from change with the photo under ``mode``."""
    return mode != "none"


def for_model(mode: str) -> str:
    """The mode for a model with its styles built in: no image to recolour, so any mode but
    ``none`` keeps the photo's colours by ``luminance``."""
    return "none" if mode == "none" else "luminance"
