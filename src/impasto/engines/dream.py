"""DeepDream: gradient ascent on the backbone's own activations (Mordvintsev et al., 2015).

Style transfer's closest relative: the same VGG-19, the same pixels-as-parameters, but instead of
matching a style the image is pushed to excite chosen layers more -- shallow layers grow strokes
and ripples, deep ones eyes, arches and animal parts.  The classic recipe:

- **octaves**: work from a small copy of the photo up to full size; what each octave added (the
  "detail") is scaled up and laid on the next, larger copy, so the patterns have every scale;
- **jitter**: the image is rolled by a random offset before each step (and back after), so the
  patterns do not lock onto the pixel grid or the tile seams;
- **normalised gradient**: each step moves the pixels by ``step`` on average, whatever the layer;
- **guide**: instead of the activations' energy, maximise each feature's best match in a guide
  image's features, so the dream grows the guide's motifs;
- **masks** limit the dream to the painted area; large images are worked in tiles (the gradient of
  each tile computed with context around it) so memory stays bounded.

Ctrl-C (or a studio's Stop) keeps the image as it is, laid on the full-size photo.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from impasto.core import images, runtime
from impasto.engines import tiling
from impasto.core.backbone import check_layers, min_input_size
from impasto.core.errors import ImpastoError
from impasto.core.fields import setting
from impasto.core.masks import load_masks
from impasto.core.masks import check_fits
from impasto.engines.solver import LevelOutcome, LevelReport, coarse_to_fine
from impasto.core.results import Progress, Result

#: The layers dreamt on by default, with their weights: mid-depth VGG-19 (swirls, eyes, arches).
DEFAULT_LAYERS = {"relu4_2": 1.0}
BASE_STEP = 0.01  # mean pixel change per iteration at step size 1 (pixels in [0, 1])
MATCH_CHUNK = 1 << 24  # image x guide feature products held at once in guided mode


@dataclass
class DreamSettings:
    """How to dream; every field is a flag of ``impasto dream``."""

    layers: dict[str, float] = setting(default_factory=lambda: dict(DEFAULT_LAYERS), check="layer_weights",
                                       metavar="NAME[:W],...", default_text=",".join(f"{name}:{weight:g}" for name, weight in DEFAULT_LAYERS.items()),
                                       help="layers whose activations grow, with weights (names: `impasto layers`)")
    octaves: int = setting(4, check="positive", help="scales, coarse to fine")
    octave_scale: float = setting(1.4, check="positive", help="size ratio between octaves, > 1")
    iterations: int = setting(10, short="-n", check="positive", help="steps per octave")
    step_size: float = setting(1.0, check="non_negative", old=("--strength",),
                               help="how far each step moves the pixels")
    jitter: int = setting(32, check="positive", help="px of random shift per step")
    tile: int = setting(1024, flag="--tile-size", check="positive",
                        help="octaves larger than this are worked in tiles, to bound memory")
    seed: int = setting(0, check="seed", help="seed of the jitter")

    def check(self) -> None:
        if not self.layers:
            raise ImpastoError("choose at least one layer to dream on", parameter="layers")
        check_layers(self.layers)
        for name, weight in self.layers.items():
            if not math.isfinite(weight) or weight < 0:
                raise ImpastoError(f"layer weight for {name} must be a finite number >= 0", parameter="layers")
        if self.octaves < 1 or self.iterations < 1:
            raise ImpastoError("octaves and iterations must be at least 1", parameter="octaves")
        if not (self.octave_scale > 1.0 and math.isfinite(self.octave_scale)):
            raise ImpastoError("the octave scale must be greater than 1", parameter="octave_scale")
        if not (self.step_size >= 0 and math.isfinite(self.step_size)):
            raise ImpastoError("the step size must be a finite number >= 0", parameter="step_size")
        if self.jitter < 0:
            raise ImpastoError("the jitter must be >= 0 px", parameter="jitter")
        if self.tile < 64:
            raise ImpastoError("the tile must be at least 64 px", parameter="tile")


def octave_sizes(height: int, width: int, octaves: int, scale: float, smallest: int = 32) -> list[tuple[int, int]]:
    """The image sizes worked at, smallest first, ending at (height, width); none below ``smallest`` px."""
    sizes = []
    for k in range(octaves - 1, -1, -1):
        factor = scale ** k
        h, w = round(height / factor), round(width / factor)
        if min(h, w) >= smallest or k == 0:
            sizes.append((h, w))
    return sizes


def layer_energy(features: dict[str, torch.Tensor], layers: dict[str, float]) -> torch.Tensor:
    """The plain dream's objective: the weighted mean square activation of each layer."""
    return sum(weight * features[name].float().pow(2).mean() for name, weight in layers.items())


def guide_match(features: dict[str, torch.Tensor], guide: dict[str, torch.Tensor],
                layers: dict[str, float]) -> torch.Tensor:
    """The guided objective: each image feature's dot product with its best-matching guide feature
    (the match chosen without gradient), averaged over positions and weighted per layer."""
    total = torch.zeros((), device=next(iter(features.values())).device)
    for name, weight in layers.items():
        x = features[name].float().flatten(2)[0]  # C x N
        g = guide[name]  # C x M
        chunk = max(1, MATCH_CHUNK // max(1, g.shape[1]))
        with torch.no_grad():
            best = torch.cat([(x[:, i:i + chunk].T @ g).argmax(1) for i in range(0, x.shape[1], chunk)])
        total = total + weight * (x * g[:, best]).sum(0).mean()
    return total


class Dreamer:
    """The backbone and the objective for one set of settings (and guide), reused across images."""

    def __init__(self, settings: DreamSettings | None = None, guide: images.ImageLike | None = None,
                 guide_size: int = 384, device: str = "auto", precision: str = "auto",
                 max_pixels: int = images.DEFAULT_MAX_PIXELS) -> None:
        self.settings = settings or DreamSettings()
        self.settings.check()
        self.device = runtime.resolve_device(device)
        self.dtype = runtime.resolve_precision(precision, self.device)
        self.layers = dict(self.settings.layers)
        self.encoder = runtime.default_encoder(list(self.layers), self.device)
        self.guide = None
        if guide is not None:
            picture = images.resize_max_side(images.as_tensor(guide, max_pixels), guide_size).to(self.device)
            with torch.no_grad(), runtime.autocast(self.device, self.dtype):
                found = self.encoder(picture, self.layers)
            self.guide = {name: found[name].float().flatten(2)[0] for name in self.layers}

    def objective(self, image: torch.Tensor) -> torch.Tensor:
        with runtime.autocast(self.device, self.dtype):
            features = self.encoder(image, self.layers)
        if self.guide is None:
            return layer_energy(features, self.layers)
        return guide_match(features, self.guide, self.layers)

    def gradient(self, image: torch.Tensor) -> tuple[torch.Tensor, float]:
        """d objective / d pixels, tile by tile when the image is larger than a tile; and the objective."""
        height, width = image.shape[-2:]
        tile = self.settings.tile
        if max(height, width) <= tile:
            return self._window_gradient(image)
        context = min(64, tile // 8)  # px around each tile, so its gradient near the edges sees the neighbourhood
        grad = torch.zeros_like(image)
        total = 0.0
        boxes = tiling.tile_boxes(height, width, tile - 2 * context, 0)
        for box in boxes:
            window = tiling.expand(box, height, width, context)
            piece_grad, value = self._window_gradient(tiling.crop(image, window))
            top, left, h, w = tiling.inner_box(box, window)
            grad[..., box[0]:box[0] + h, box[1]:box[1] + w] = piece_grad[..., top:top + h, left:left + w]
            total += value * (box[2] * box[3]) / (height * width)
        return grad, total

    def _window_gradient(self, image: torch.Tensor) -> tuple[torch.Tensor, float]:
        runtime.check_cancelled()
        pixels = image.detach().requires_grad_(True)
        value = self.objective(pixels)
        (grad,) = torch.autograd.grad(value, pixels)
        return grad, float(value.detach())

    def dream(self, photo: images.ImageLike, size: int | None = None,
              masks: Sequence[images.ImageLike] = (), on_step: Callable[[Progress], None] | None = None,
              max_pixels: int = images.DEFAULT_MAX_PIXELS) -> Result:
        """Dream on ``photo`` (long side ``size``, or its own); ``masks``: where the dream may go."""
        started = time.perf_counter()
        s = self.settings
        original = images.as_tensor(photo, max_pixels)
        shown = (original.shape[-1], original.shape[-2])  # what a mask is drawn on
        base = images.resize_max_side(original, size).to(self.device)
        del original
        height, width = base.shape[-2:]
        smallest = min_input_size(self.encoder, self.layers)
        if min(height, width) < smallest:
            raise ImpastoError(f"the image is {width}x{height}; dreaming on {', '.join(self.layers)} needs at least "
                               f"{smallest} px a side (a larger --size, or a shallower layer)",
                               images.source_label(photo, "photo"))
        region = None
        if masks:
            loaded = load_masks(masks, max_pixels)
            for mask, weights in zip(masks, loaded):
                check_fits(mask, (weights.shape[-1], weights.shape[-2]), photo, shown)
            region = torch.stack([F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)
                                  for m in loaded]).amax(0).to(self.device)
        sizes = octave_sizes(height, width, s.octaves, s.octave_scale, smallest=max(32, smallest))
        generator = torch.Generator().manual_seed(s.seed)
        step = BASE_STEP * s.step_size
        detail = torch.zeros(1, 3, *sizes[0], device=self.device)
        image, value = base, 0.0

        def dream_octave(level: int, size: tuple[int, int], report: LevelReport) -> LevelOutcome:
            """One octave: the photo at this size plus what the smaller octaves added, dreamt on."""
            nonlocal detail, image, value
            h, w = size
            shrunk = images.resize(base, (h, w)) if (h, w) != (height, width) else base
            detail = images.resize(detail, (h, w)) if detail.shape[-2:] != (h, w) else detail
            where = None if region is None else images.resize(region, (h, w))
            image = (shrunk + detail).clamp(0, 1)
            done = 0
            try:
                for _ in range(s.iterations):
                    dy, dx = (torch.randint(-s.jitter, s.jitter + 1, (2,), generator=generator).tolist()
                              if s.jitter else (0, 0))
                    grad, value = self.gradient(torch.roll(image, (dy, dx), (-2, -1)))
                    grad = torch.roll(grad, (-dy, -dx), (-2, -1))
                    grad = grad / grad.abs().mean().clamp_min(1e-12)
                    if where is not None:
                        grad = grad * where
                    image = (image + step * grad).clamp(0, 1)
                    done += 1
                    report(done, done, {"objective": value}, image)
            except KeyboardInterrupt:
                detail = image - images.resize(base, tuple(image.shape[-2:]))
                return LevelOutcome(done, done, {"objective": value}, "interrupted")
            detail = image - shrunk
            return LevelOutcome(done, done, {"objective": value}, "iterations")

        total = coarse_to_fine(sizes, dream_octave, len(sizes) * s.iterations, on_step)
        if detail.shape[-2:] != (height, width):
            detail = images.resize(detail, (height, width))
        out = (base + detail).clamp(0, 1).float().cpu()
        return Result(out, total.iterations, total.iterations, {"objective": value}, total.stop_reason,
                      time.perf_counter() - started)


def dream(photo: images.ImageLike, settings: DreamSettings | None = None, *, size: int | None = None,
          guide: images.ImageLike | None = None, masks: Sequence[images.ImageLike] = (),
          on_step: Callable[[Progress], None] | None = None, device: str = "auto", precision: str = "auto",
          max_pixels: int = images.DEFAULT_MAX_PIXELS) -> Result:
    """DeepDream ``photo`` with ``settings`` (see :class:`DreamSettings`); the result as a :class:`Result`."""
    dreamer = Dreamer(settings, guide, device=device, precision=precision, max_pixels=max_pixels)
    return dreamer.dream(photo, size, masks, on_step, max_pixels)
