"""The image transformation network of the one-pass methods (Johnson et al. 2016; Ulyanov et al.
2016; Dumoulin et al. 2017), shared by trained-style models (:mod:`impasto.networks.fast`), the any-painting
network (:mod:`impasto.networks.arbitrary`) and their compressed forms (:mod:`impasto.networks.compress`, :mod:`impasto.networks.int8`).

9x9 conv, two stride-2 convs, residual blocks, two upsample + conv stages (no transposed convs, so
no checkerboard artefacts), 9x9 conv out; reflection padding; conditional instance normalisation
(one scale/shift per style: a single-style network is the case N = 1, and a multi-style network
blends styles at inference by mixing the styles' normalisation parameters).
"""

from __future__ import annotations

import functools
import itertools
import os
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.core.errors import ImpastoError
from impasto.core.losses import channel_moments, widened

#: Two stride-2 stages: inputs are padded to a multiple of 4.
MULTIPLE = 4
#: How the network makes its image.  "direct" (Johnson et al.): a sigmoid of the last convolution,
#: so every pixel is painted.  "residual" (impasto 0.2): a change added to the photo, starting as
#: the identity; trained against a Gram loss it learns to keep the photo and paste sparse strong
#: patches over it (the recipe experiments, docs/archive/benchmarks-history.md), so it is kept only
#: to load old models.
OUTPUTS = ("direct", "residual")
#: The two 2x upsamplings: nearest (Johnson et al.'s resize-convolution) or bilinear (smoother inputs
#: to the convolution after it, against a 4 px lattice; see docs/archive/benchmarks-history.md).
UPSAMPLING = ("nearest", "bilinear")
#: A network with nearest upsampling paints each 4 x 4 cell of its output from one feature of its
#: last low-resolution stage, and leaves a pattern that repeats with that cell (2 px stripes, a 4 px
#: grid); :func:`without_lattice` takes it out.
NEAREST_CELL = 4


def without_lattice(painted: torch.Tensor, upsample: str) -> torch.Tensor:
    """A painting ``(N, 3, H, W)`` (cells counted from its top-left pixel, as the network saw it)
    without the pattern its nearest upsampling ties to the pixel grid (:mod:`impasto.core.lattice`);
    as it is for bilinear upsampling.  Float, not clamped."""
    from impasto.core import lattice

    return lattice.remove_lattice(painted, NEAREST_CELL) if upsample == "nearest" else painted.float()


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with a learned scale and shift per style; ``mix`` (N, styles) blends them."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(styles, channels))
        self.shift = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        scale = mix @ self.scale.to(mix.dtype)
        shift = mix @ self.shift.to(mix.dtype)
        if cpu_inference(x):
            return channels_last_instance_norm(x, scale, shift)
        x = F.instance_norm(x, eps=1e-5)
        return x * scale[:, :, None, None].to(x.dtype) + shift[:, :, None, None].to(x.dtype)


def cpu_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` takes the CPU inference paths below: a channels-last map on the CPU, outside
    training (autograd keeps PyTorch's kernels), compiled and traced graphs (the compiler fuses its
    own; ONNX has the operators; a trace must not fix the batch size)."""
    return (x.device.type == "cpu" and x.is_contiguous(memory_format=torch.channels_last)
            and not (x.requires_grad or torch.compiler.is_compiling() or torch.jit.is_tracing()))


def channels_last_instance_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                                eps: float = 1e-5) -> torch.Tensor:
    """Instance norm plus each image's scale and shift, on a channels-last map seen as (N, pixels, C).

    PyTorch's CPU instance norm copies a channels-last map to NCHW, and the next convolution copies
    it back: a third of the feed-forward network's CPU time.  Here the statistics are
    :func:`channel_moments` and the norm and the affine one multiply-add on widened rows, in the
    input's layout.  For inference only (:func:`cpu_inference`)."""
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view of a channels-last map
    mean, variance = channel_moments(x)
    gain = (scale * torch.rsqrt(variance + eps))[:, None, :]
    offset = shift[:, None, :] - mean[:, None, :] * gain
    wide, k = widened(pixels)
    out = torch.addcmul(offset.to(x.dtype).repeat(1, 1, k), wide, gain.to(x.dtype).repeat(1, 1, k))
    return out.reshape(n, h, w, c).permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=8)
def _half_grid_taps(kernel: int) -> torch.Tensor:
    """Where each tap of a ``kernel`` x ``kernel`` convolution lands when the image is cut into
    2x2 pixel blocks (:func:`space_to_depth_conv`): an index into the flattened kernel, with
    ``kernel ** 2`` (a zero appended to it) where an output pixel's block needs no tap."""
    taps = kernel // 2 + 1
    index = torch.full((2, 2, 2, 2, taps, taps), kernel * kernel, dtype=torch.long)
    for row, column, block_row, block_column, i, j in itertools.product(range(2), range(2), range(2), range(2),
                                                                         range(taps), range(taps)):
        u, v = 2 * i + block_row - row, 2 * j + block_column - column
        if 0 <= u < kernel and 0 <= v < kernel:
            index[row, column, block_row, block_column, i, j] = u * kernel + v
    return index


def space_to_depth_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a same-size convolution with few output channels (the 9x9 convolution that
    makes the image: 3 outputs), computed on 2x2 pixel blocks: 4x the input channels, 4x the
    outputs (one per pixel of a block), a (k/2 + 1)-wide kernel at half the resolution.  The
    CPU's convolution is poor at 3 outputs, and this form of it is faster in bf16.  Taken in
    bf16/fp16 only: in float32 the extra pass over the map cost more at 1080p than it saved (the
    measurements: docs/archive/benchmarks-history.md).  The same numbers up to rounding; H and W
    even."""
    kernel = conv.kernel_size[0]
    out_channels, in_channels = conv.weight.shape[:2]
    pad = kernel // 2
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    blocks = F.pixel_unshuffle(F.pad(x, (pad, pad, pad, pad), mode=mode), 2)
    flat = torch.cat([conv.weight.reshape(out_channels, in_channels, -1),
                      conv.weight.new_zeros(out_channels, in_channels, 1)], dim=2)
    taps = kernel // 2 + 1
    weight = flat[:, :, _half_grid_taps(kernel)]  # (out, in, row, column, block row, block column, i, j)
    weight = weight.permute(0, 2, 3, 1, 4, 5, 6, 7).reshape(4 * out_channels, 4 * in_channels, taps, taps)
    bias = conv.bias.repeat_interleave(4) if conv.bias is not None else None
    out = F.conv2d(blocks, weight.contiguous(memory_format=torch.channels_last), bias)
    return F.pixel_shuffle(out, 2)


class ConvNorm(nn.Module):
    """(optional 2x nearest upsample) -> reflection-padded conv -> conditional instance norm -> (ReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, styles: int, stride: int = 1,
                 upsample: str | None = None, relu: bool = True) -> None:
        super().__init__()
        self.upsample = upsample  # None, "nearest" or "bilinear"
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect")
        self.norm = ConditionalInstanceNorm(cout, styles)
        self.relu = relu

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        if self.upsample == "bilinear":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        elif self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.norm(self.conv(x), mix)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    """x + conv-norm-relu-conv-norm(x); ``inner`` channels between the two convolutions (pruning
    narrows them)."""

    def __init__(self, channels: int, styles: int, inner: int | None = None) -> None:
        super().__init__()
        inner = inner or channels
        self.first = ConvNorm(channels, inner, 3, styles)
        self.second = ConvNorm(inner, channels, 3, styles, relu=False)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x, mix), mix)


class TransformerNet(nn.Module):
    """The image transformation network; ``width`` scales every channel count (0.5 = 4x fewer FLOPs).

    ``channels`` (the three stages' widths) and ``inner`` (each residual block's middle width), when
    given, replace what ``width`` implies: a pruned network (:mod:`impasto.networks.compress`) has its own."""

    def __init__(self, styles: int = 1, width: float = 1.0, residual_blocks: int = 5, output: str = "direct",
                 upsample: str = "nearest", channels: Sequence[int] | None = None,
                 inner: Sequence[int] | None = None) -> None:
        super().__init__()
        if styles < 1:
            raise ImpastoError("a network needs at least one style")
        if not 0.125 <= width <= 4:
            raise ImpastoError(f"width must be between 0.125 and 4, got {width}")
        if output not in OUTPUTS:
            raise ImpastoError(f"unknown network output {output!r}; choose {' or '.join(OUTPUTS)}")
        if upsample not in UPSAMPLING:
            raise ImpastoError(f"unknown upsampling {upsample!r}; choose {' or '.join(UPSAMPLING)}")
        self.output = output
        self.upsample = upsample
        c1, c2, c3 = channels or [max(4, round(c * width)) for c in (32, 64, 128)]
        inner = list(inner or [c3] * residual_blocks)
        if len(inner) != residual_blocks:
            raise ImpastoError(f"{len(inner)} inner widths for {residual_blocks} residual blocks")
        self.styles = styles
        self.down = nn.ModuleList([
            ConvNorm(3, c1, 9, styles), ConvNorm(c1, c2, 3, styles, stride=2), ConvNorm(c2, c3, 3, styles, stride=2),
        ])
        self.blocks = nn.ModuleList([Residual(c3, styles, width) for width in inner])
        self.up = nn.ModuleList([
            ConvNorm(c3, c2, 3, styles, upsample=upsample), ConvNorm(c2, c1, 3, styles, upsample=upsample),
        ])
        self.out = nn.Conv2d(c1, 3, 9, padding=4, padding_mode="reflect")
        if output == "residual":  # zero-initialised: starts as the identity (the photo)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, image: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        """``image`` (N, 3, H, W) in [0, 1], H and W multiples of 4; ``mix`` (N, styles) or (styles,)."""
        n = image.shape[0]
        if mix is None:
            mix = torch.zeros(n, self.styles, device=image.device)
            mix[:, 0] = 1.0
        elif mix.dim() == 1:
            mix = mix.unsqueeze(0).expand(n, -1)
        mix = mix.to(device=image.device, dtype=torch.float32)
        x = image
        for layer in self.down:
            x = layer(x, mix)
        for block in self.blocks:
            x = block(x, mix)
        for layer in self.up:
            x = layer(x, mix)
        if cpu_inference(x) and x.dtype != torch.float32 and image.shape[-1] % 2 == 0 == image.shape[-2] % 2:
            x = space_to_depth_conv(self.out, x)
        else:
            x = self.out(x)
        if self.output == "residual":
            return image + x
        return torch.sigmoid(x.float())


def network_from_config(config: dict[str, Any], path: str | os.PathLike | None = None) -> TransformerNet:
    """The (untrained) network a model file's configuration describes."""
    try:
        return TransformerNet(int(config["styles"]), float(config["width"]), int(config.get("residual_blocks", 5)),
                              str(config.get("output", "residual")), str(config.get("upsample", "nearest")),
                              config.get("channels"), config.get("inner"))
    except (KeyError, TypeError, ValueError):
        raise ImpastoError("model file has an incomplete configuration", path) from None
