"""Fast style transfer (Johnson et al. 2016; Ulyanov et al. 2016; Dumoulin et al. 2017): a trained
model per style (or per set of styles).

The image transformation network (:mod:`impasto.networks.transformer`) is trained once against the
optimisation method's own objective (the same backbone, content, Gram style and TV losses, via
:class:`impasto.core.losses.StyleObjective`), then stylizes any image in one forward pass.  Here: the
loaded model (:class:`FastModel`; an int8 file through :mod:`impasto.networks.int8`); its training task
is :mod:`impasto.networks.fast_training`'s, its export :mod:`impasto.networks.export`'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.losses import normalised
from impasto.core.modelfile import load_model, load_weights
from impasto.core.runtime import (autocast, cached_engine, resolve_device, resolve_precision, to_device, weights_in_compute_dtype)
from impasto.networks.transformer import MULTIPLE, network_from_config, without_lattice

KIND = "fast"
#: Mirrored border (px) the photo is seen through, cropped off the painting: at the image's own edge
#: the shipped networks paint a dark or light frame (mosaic's dark line along the top and double line
#: near the left, rain_princess's dark sides), which the mirrored margin moves out of the picture
#: (measured: docs/figures.md, "Machine marks").
MARGIN = 32
# ------------------------------------------------------------------------------------- inference


class FastModel:
    """A loaded feed-forward model on a device."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", precision: str = "auto",
                 compile: bool = False) -> None:
        path = Path(path)
        model = load_model(path, KIND)
        config = model.config
        self.network = network_from_config(config, path)
        self.quantized = config.get("quantized")
        self.device = resolve_device(device)
        #: an int8 file runs int8 only on a CPU where that is not slower, start-up included; elsewhere its
        #: float network (a GPU, or a CPU where int8 measured no clear gain: int8.int8_choice; said once)
        self.int8 = False
        if self.quantized:
            from impasto.networks import int8

            self.int8 = self.device.type == "cpu" and int8.int8_pays(config)
            if self.device.type == "cpu" and not self.int8:
                int8.say_float_once(path, config)
            self.network, self.frozen_mix = int8.load_int8(self.network, model.state_dict, config, path,
                                                           int8=self.int8)
        else:
            load_weights(self.network, model.state_dict, path)
        #: a model adapted from the arbitrary network paints as that network does, its edges seen through
        #: its own reflection padding (as it trained): through a mirrored margin its strokes fold over at
        #: the edge and draw a frame there; a model trained on its own sees the margin (docs/figures.md)
        records = [model.training, *(model.training.get("lineage") or [])]  # itself, and what it was trained from
        self.margin = 0 if any(isinstance(r, dict) and r.get("from_arbitrary") for r in records) else MARGIN
        self.dtype = resolve_precision(precision, self.device)  # autocast's, or None
        self.weights_dtype = torch.float32
        self.network.eval().requires_grad_(False)
        if self.int8:
            self.dtype = None  # its own arithmetic; no autocast
        else:
            self.network.to(self.device, memory_format=torch.channels_last)
            if weights_in_compute_dtype(self.device, self.dtype):  # a GPU: bf16/fp16 weights, no autocast
                self.network.to(self.dtype)
                self.weights_dtype, self.dtype = self.dtype, None
            if compile:  # fused kernels for this machine, made once per image size (seconds): for clips and batches
                self.network = torch.compile(self.network, dynamic=False)
        self.styles = int(config["styles"])
        self.config = config
        self.style_names: list[str] = list(config.get("style_names", [])) or [path.stem]
        self.training = model.training
        self.path = path

    def mix(self, weights: Sequence[float] | None) -> torch.Tensor:
        """Normalised style weights as a vector; None = the first style."""
        count = self.styles
        if weights is None:
            weights = [1.0] + [0.0] * (count - 1)
        if self.quantized and list(normalised(weights, "blend weights")) != list(self.frozen_mix):
            raise ImpastoError("an int8 model has its style blend built in at compression time; "
                               "compress the float model again with that --style-blend", self.path,
                               parameter="style_blend")
        if len(weights) != count:
            raise ImpastoError(f"{len(weights)} style blend weights given for a model with {count} style(s) "
                               f"({', '.join(self.style_names)})", self.path, parameter="style_blend")
        return torch.tensor(normalised(weights, "blend weights"))

    @torch.no_grad()
    def stylize(self, content: torch.Tensor, weights: Sequence[float] | None = None) -> torch.Tensor:
        """``(N, 3, H, W)`` in [0, 1] -> stylized, same size, clamped, on the CPU."""
        padded, (top, left, h, w) = images.pad_around(content, self.margin, MULTIPLE, minimum=2 * MULTIPLE)
        mix = self.mix(weights)
        upsample = self.config.get("upsample", "nearest")
        if self.int8:
            out = without_lattice(self.network(padded.float()), upsample)
            return out[..., top:top + h, left:left + w].clamp(0, 1)
        arguments = () if self.quantized else (mix,)  # an int8 file's float network has its blend built in
        with autocast(self.device, self.dtype):
            out = self.network(to_device(padded, self.device, self.weights_dtype).contiguous(
                memory_format=torch.channels_last), *arguments)
        out = without_lattice(out.float(), upsample)
        return out[..., top:top + h, left:left + w].clamp(0, 1).cpu()


def cached_model(path: str | os.PathLike, device: str = "auto", precision: str = "auto",
                 compile: bool = False) -> FastModel:
    return cached_engine(FastModel, path, device, precision, compile=compile)
