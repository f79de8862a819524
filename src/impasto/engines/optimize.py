"""The optimisation method (Gatys et al. 2015): the output pixels are the parameters.

``run`` prepares the images, computes the fixed content and style targets once, then lets an
optimiser (L-BFGS by default, with a strong-Wolfe line search) move the pixels to lower
alpha * content + beta * style + tv.  It stops after a number of iterations, when the relative
loss change stays under a tolerance, on Ctrl-C (returning the current image), or on a
non-finite loss (returning the last good image).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from PIL import Image

from impasto.core import color, images
from impasto.core.backbone import VGG, check_layers, min_input_size
from impasto.core.errors import ImpastoError
from impasto.core.fields import HARDWARE, ITERATIVE, LOSSES, SIZE, setting
from impasto.core.masks import in_regions, load_masks
from impasto.core.color import METHODS as COLOR_METHODS
from impasto.engines import tiling
from impasto.core.runtime import (PRECISIONS, autocast, compiled_network, cpu_has_fast_bf16,  # noqa: F401
                      frozen_network, get_backbone, resolve_device, resolve_precision)
from impasto.core.results import Progress, Result
from impasto.engines.solver import (DEFAULT_LEARNING_RATES, OPTIMIZERS, Evaluator, LevelOutcome, LevelReport,  # noqa: F401
                                   NonFiniteLoss, SolverSettings, coarse_to_fine, make_optimizer, optimize_level,
                                   pyramid_plan)
from impasto.core.losses import STYLE_LOSSES, GramLoss, StyleObjective, StyleTarget, TemporalTarget, make_style_loss, mask_pyramid, normalised, resize_mask

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


MIN_TILE = 64


@dataclass
class OptimizeSettings:
    """The optimisation method's own settings: what a :class:`impasto.methods.Request` does not
    already say (the method's ``options``).  Defaults give a good result at 512 px."""

    iterations: int = setting(50, short="-n", group=ITERATIVE, check="positive",
                              help="iterations at the output size; coarser levels run more")
    pyramid: int | None = setting(None, group=ITERATIVE, check="positive", metavar="LEVELS",
                                  default_text="as many as keep the coarsest at least --pyramid-min px",
                                  help="optimize: coarse-to-fine levels, sizes growing by sqrt(2) (1 = optimise at "
                                       "the output size only)")
    pyramid_min: int = setting(256, group=ITERATIVE, check="positive", help="smallest pyramid level in px")
    optimizer: str | None = setting(None, group=ITERATIVE, choices=OPTIMIZERS,
                                    default_text="lbfgs; adam with --style-loss swd",
                                    help="optimize: lbfgs has a line search; lbfgs-device: no line search, steps "
                                         "accepted on the device and the loss read every --read-every iterations, "
                                         "for GPUs")
    learning_rate: float | None = setting(None, flag="--lr", group=ITERATIVE, check="positive",
                                          default_text="per optimizer", help="learning rate")
    tolerance: float = setting(1e-5, group=ITERATIVE, check="non_negative",
                               help="stop when the relative loss change stays below this for --patience "
                                    "iterations (0 = never)")
    patience: int = setting(10, group=ITERATIVE, check="positive",
                            help="iterations the loss may stall before the run stops")
    content_weight: float = setting(1.0, group=LOSSES, check="non_negative", help="alpha")
    style_weight: float | None = setting(None, group=LOSSES, check="non_negative",
                                         help="beta")
    style_loss: str = setting("gram", group=LOSSES, choices=tuple(STYLE_LOSSES),
                              help="gram (Gatys), mean_std (lighter), swd (sliced Wasserstein; sharper textures)")
    tv_weight: float = setting(0.0, group=LOSSES, check="non_negative", help="total variation")
    content_layers: Sequence[str] = setting(DEFAULT_CONTENT_LAYERS, group=LOSSES,
                                            default_text=",".join(DEFAULT_CONTENT_LAYERS), help="comma-separated")
    content_layer_weights: Sequence[float] | None = setting(None, group=LOSSES, default_text="equal",
                                                            help="comma-separated, one per content layer")
    style_layers: Sequence[str] = setting(DEFAULT_STYLE_LAYERS, group=LOSSES,
                                          default_text=",".join(DEFAULT_STYLE_LAYERS), help="comma-separated")
    style_layer_weights: Sequence[float] | None = setting(None, group=LOSSES, default_text="equal",
                                                          help="comma-separated, one per style layer")
    init: str | os.PathLike | Image.Image | torch.Tensor = setting(
        "content", group=ITERATIVE, help="optimize: start from 'content', 'noise' or an image file")
    seed: int = setting(0, group=ITERATIVE, check="seed", help="optimize: seed for noise init")
    backbone: str = setting("vgg19", group=HARDWARE, choices=("vgg19", "vgg16"), help="optimize")
    backbone_weights: str | os.PathLike = setting(
        "caffe", flag="--weights", group=HARDWARE,
        help="optimize: 'caffe' (original VGG-19, offline), 'torchvision' (hub cache/download) or a .pth file")
    pooling: str = setting("max", group=HARDWARE, choices=("max", "avg"), help="optimize")
    padding: str = setting("zeros", group=HARDWARE, choices=("zeros", "replicate"),
                           help="optimize: padding of the first convolution; replicate avoids edge artefacts")
    ema: float | None = setting(None, group=LOSSES, check="non_negative", default_text="0.9 for adam, off otherwise",
                                help="output the moving average of the iterates with this decay (first-order "
                                     "optimisers)")
    read_every: int | None = setting(None, group=ITERATIVE, check="positive", metavar="N",
                                     default_text="1 on CPUs, 10 on GPUs",
                                     help="lbfgs-device: read the loss back (progress, convergence) every N "
                                          "iterations")
    tile_size: int = setting(1536, group=SIZE, check="positive",
                             help="optimize: levels larger than this are optimised in overlapping tiles, to "
                                  "bound memory")
    tile_overlap: int = setting(128, group=SIZE, check="positive", help="px two tiles share")

    def own(self) -> OptimizeSettings:
        """The method's own part of these settings (of a whole :class:`StyleSettings` too)."""
        return OptimizeSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(OptimizeSettings)})


@dataclass
class StyleSettings(OptimizeSettings):
    """Everything that decides an optimisation run (:func:`run`): the method's own settings and the
    ones every method shares, which :class:`impasto.methods.Request` owns and
    :func:`impasto.methods.optimize.settings_for` writes in (``style_blend`` is the request's ``weights``)."""

    size: int = images.DEFAULT_SIZE
    style_scale: float = 1.0
    strength: float | None = None  # 0..1, sets style_weight on a log scale around the default (0.5)
    style_blend: Sequence[float] | None = None
    masks: Sequence[images.ImageLike] | None = None  # one per style: where it applies (white) or not (black)
    preserve_color: str = "none"  # "luminance" or "histogram"
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False  # torch.compile the backbone, once per level's shape (pays off on GPUs; compiling takes a while)
    max_pixels: int = images.DEFAULT_MAX_PIXELS

    def resolved_style_weight(self) -> float:
        """beta: explicit, or from --strength, or the style loss's default."""
        default = STYLE_LOSSES[self.style_loss].default_weight
        if self.strength is not None:
            return 0.0 if self.strength == 0 else default * 10 ** (3 * (self.strength - 0.5))
        return default if self.style_weight is None else self.style_weight

    def resolved_optimizer(self) -> str:
        if self.optimizer is not None:
            return self.optimizer
        return "adam" if self.style_loss == "swd" else "lbfgs"

    def resolved_ema(self) -> float | None:
        optimizer = self.resolved_optimizer()
        if optimizer.startswith("lbfgs"):
            return None
        if self.ema is None:
            return 0.9 if optimizer == "adam" else None
        return self.ema or None

    def solver(self) -> SolverSettings:
        """The solver part of these settings, resolved (optimizer, its learning rate and average)."""
        return SolverSettings(self.iterations, self.resolved_optimizer(), self.learning_rate, self.tolerance,
                              self.patience, self.resolved_ema(), self.read_every)

    def validate(self, n_styles: int) -> None:
        """Raise :class:`ImpastoError` for any value that cannot work."""
        if self.pyramid is not None and (not isinstance(self.pyramid, int) or self.pyramid <= 0):
            raise ImpastoError(f"pyramid levels must be a positive whole number, got {self.pyramid}", parameter="pyramid")
        if self.read_every is not None and (not isinstance(self.read_every, int) or self.read_every <= 0):
            raise ImpastoError(f"read every must be a positive whole number, got {self.read_every}",
                               parameter="read_every")
        for name in ("size", "iterations", "max_pixels", "patience", "pyramid_min", "tile_size", "tile_overlap"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ImpastoError(f"{name.replace('_', ' ')} must be a positive whole number, got {value}",
                                   parameter=name)
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ImpastoError(f"seed must be a whole number from 0 to 2**63 - 1, got {self.seed}", parameter="seed")
        if not self.style_scale > 0:
            raise ImpastoError(f"style scale must be positive, got {self.style_scale}", parameter="style_scale")
        for name in ("content_weight", "style_weight", "tv_weight", "tolerance"):
            value = getattr(self, name)
            if value is None and name == "style_weight":
                continue
            if not (value >= 0 and math.isfinite(value)):
                raise ImpastoError(f"{name.replace('_', ' ')} must be a non-negative number, got {value}",
                                   parameter=name)
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ImpastoError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}",
                               parameter="optimizer")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ImpastoError(f"learning rate must be positive, got {self.learning_rate}", parameter="learning_rate")
        if self.precision not in PRECISIONS:
            raise ImpastoError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}",
                               parameter="precision")
        if not self.content_layers and not self.style_layers:
            raise ImpastoError("no content and no style layers: nothing to optimise", parameter="style_layers")
        check_layers(self.content_layers, self.backbone, "content_layers")
        check_layers(self.style_layers, self.backbone, "style_layers")
        _layer_weights(self.content_layers, self.content_layer_weights, "content")
        _layer_weights(self.style_layers, self.style_layer_weights, "style")
        if self.style_blend is not None:
            if len(self.style_blend) != n_styles:
                raise ImpastoError(f"{len(self.style_blend)} style blend weights given for {n_styles} style images",
                                   parameter="style_blend")
            normalised(self.style_blend, "style blend weights")
        if self.tile_size < MIN_TILE:  # deep layers pool a tile 16x down, and its seams need room
            raise ImpastoError(f"tile size must be at least {MIN_TILE} px, got {self.tile_size}", parameter="tile_size")
        if self.tile_overlap >= self.tile_size:
            raise ImpastoError(f"tile overlap ({self.tile_overlap}) must be smaller than the tile size ({self.tile_size})",
                               parameter="tile_overlap")
        if self.style_loss not in STYLE_LOSSES:
            raise ImpastoError(f"unknown style loss {self.style_loss!r}; choose one of {', '.join(STYLE_LOSSES)}",
                               parameter="style_loss")
        if self.strength is not None and not 0 <= self.strength <= 1:
            raise ImpastoError(f"strength must be between 0 and 1, got {self.strength}", parameter="strength")
        if self.preserve_color not in COLOR_METHODS:
            raise ImpastoError(f"unknown colour preservation {self.preserve_color!r}; choose one of {', '.join(COLOR_METHODS)}",
                               parameter="preserve_color")
        if self.padding not in ("zeros", "replicate"):
            raise ImpastoError(f"unknown padding {self.padding!r}; choose zeros or replicate", parameter="padding")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ImpastoError(f"ema decay must be in [0, 1), got {self.ema}", parameter="ema")
        if self.masks is not None and len(self.masks) != n_styles:
            raise ImpastoError(f"{len(self.masks)} masks given for {n_styles} style images; give one mask per style",
                               parameter="masks")
        if isinstance(self.init, str) and self.init not in ("content", "noise") and not os.path.exists(self.init):
            raise ImpastoError("init must be 'content', 'noise' or an image file; file not found", self.init,
                               parameter="init")


def _layer_weights(layers: Sequence[str], weights: Sequence[float] | None, kind: str) -> dict[str, float]:
    if weights is None:
        return {name: 1.0 for name in layers}
    if len(weights) != len(layers):
        raise ImpastoError(f"{len(weights)} {kind} layer weights given for {len(layers)} {kind} layers",
                           parameter=f"{kind}_layer_weights")
    if any(not (w >= 0 and math.isfinite(w)) for w in weights):
        raise ImpastoError(f"{kind} layer weights must be non-negative numbers, got {list(weights)}",
                           parameter=f"{kind}_layer_weights")
    return dict(zip(layers, map(float, weights)))


# ----------------------------------------------------------------------------------------- images


def _label(source: object, what: str) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{what}>"


def _check_size(image: torch.Tensor, needed: int, label: str) -> None:
    height, width = image.shape[-2:]
    if min(height, width) < needed:
        raise ImpastoError(
            f"image is {width}x{height} after resizing, smaller than the {needed} px the chosen layers need "
            "(use a larger --size or shallower layers)",
            label,
        )


def load_inputs(
    content: images.ImageLike, styles: Sequence[images.ImageLike], max_pixels: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Read the content and style images once, at their own resolution."""
    return images.as_tensor(content, max_pixels), [images.as_tensor(style, max_pixels) for style in styles]


def prepare(
    content: images.ImageLike | torch.Tensor,
    styles: Sequence[images.ImageLike | torch.Tensor],
    settings: StyleSettings,
    needed: int,
    labels: Sequence[str] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Resize the content (long side = size) and styles (long side = size * style_scale)."""
    labels = labels or [_label(content, "content image")] + [_label(style, "style image") for style in styles]
    content_t = images.resize_max_side(images.as_tensor(content, settings.max_pixels), settings.size, settings.max_pixels)
    _check_size(content_t, needed, labels[0])
    style_side = max(1, round(max(content_t.shape[-2:]) * settings.style_scale))
    style_ts = []
    for style, label in zip(styles, labels[1:]):
        style_t = images.resize_max_side(images.as_tensor(style, settings.max_pixels), style_side, settings.max_pixels)
        _check_size(style_t, needed, label)
        style_ts.append(style_t)
    return content_t, style_ts


def initial_image(content: torch.Tensor, init: object, seed: int, max_pixels: int) -> torch.Tensor:
    """The starting pixels: the content image, seeded noise, or a given image resized to fit."""
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        generator = torch.Generator().manual_seed(seed)
        return (0.5 + 0.15 * torch.randn(content.shape, generator=generator)).clamp(0, 1)
    start = images.as_tensor(init, max_pixels)  # a path, PIL image or tensor
    # contiguous: upscaling a tiny image can return an expanded view, which the optimisers cannot flatten
    return images.resize(start, tuple(content.shape[-2:])).contiguous()


def style_statistics(
    model: VGG, styles: Sequence[torch.Tensor], settings: StyleSettings, cast: Callable, blend_targets: bool = True
) -> list[StyleTarget]:
    """Each style's statistics per layer with its blend weight (no region yet).

    With ``blend_targets``, losses whose target can be blended (Gram, mean/std) get one blended
    target.  Style images larger than a tile have their Gram matrices averaged over tiles
    (weighted by area), which keeps memory bounded at any size.
    """
    if not settings.style_layers:
        return []
    blend = normalised(settings.style_blend or [1.0] * len(styles), "style blend weights")
    style_loss = make_style_loss(settings.style_loss)
    per_style = []
    with torch.no_grad(), cast():
        for style in styles:
            height, width = style.shape[-2:]
            if max(height, width) > settings.tile_size and isinstance(style_loss, GramLoss):
                stats: dict[str, torch.Tensor] = {}
                for box in tiling.tile_boxes(height, width, settings.tile_size, 0):
                    area = box[2] * box[3] / (height * width)
                    for name, f in model(tiling.crop(style, box), settings.style_layers).items():
                        stats[name] = stats.get(name, 0) + area * style_loss.target(f, name)
            else:
                stats = {name: style_loss.target(f, name) for name, f in model(style, settings.style_layers).items()}
            per_style.append(stats)
    if blend_targets:
        blended = {name: style_loss.blend([stats[name] for stats in per_style], blend) for name in per_style[0]}
        if all(value is not None for value in blended.values()):
            return [StyleTarget(blended)]
    return [StyleTarget(stats, weight) for stats, weight in zip(per_style, blend)]


def make_objective(
    model: VGG,
    content: torch.Tensor,
    targets: Sequence[StyleTarget],
    settings: StyleSettings,
    cast: Callable,
    masks: Sequence[torch.Tensor] | None = None,
) -> StyleObjective:
    """The objective for one image (or tile): its content targets, the style targets, their regions."""
    with torch.no_grad(), cast():
        content_feats = model(content, settings.content_layers) if settings.content_layers else {}
        content_targets = {k: v.float() for k, v in content_feats.items()}
        if masks is not None and targets:
            shapes = model(content, settings.style_layers)
            targets = [StyleTarget(t.stats, t.weight, mask_pyramid(mask.to(content.device), shapes))
                       for t, mask in zip(targets, masks)]
    return StyleObjective(
        content_targets=content_targets,
        style_targets=list(targets),
        content_weight=settings.content_weight,
        style_weight=settings.resolved_style_weight(),
        tv_weight=settings.tv_weight,
        content_layer_weights=_layer_weights(settings.content_layers, settings.content_layer_weights, "content"),
        style_layer_weights=_layer_weights(settings.style_layers, settings.style_layer_weights, "style"),
        style_loss=make_style_loss(settings.style_loss),
    )


def build_objective(
    model: VGG,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    settings: StyleSettings,
    cast: Callable,
    masks: Sequence[torch.Tensor] | None = None,
) -> StyleObjective:
    """Fixed targets: content features, and each style's statistics with its blend weight and region.

    ``masks`` (``(1, 1, H, W)`` at the content's size, one per style) give each style its region.
    """
    targets = style_statistics(model, styles, settings, cast, blend_targets=masks is None)
    return make_objective(model, content, targets, settings, cast, masks)


def _level_tiles(height: int, width: int, settings: StyleSettings) -> list[tiling.Box]:
    """One box for the whole image, or overlapping tiles when it is larger than the tile size."""
    if max(height, width) <= settings.tile_size:
        return [(0, 0, height, width)]
    return tiling.tile_boxes(height, width, settings.tile_size, settings.tile_overlap)


def run(
    content: images.ImageLike,
    styles: Sequence[images.ImageLike],
    settings: StyleSettings | None = None,
    on_step: Callable[[Progress], None] | None = None,
    temporal: Sequence[TemporalTarget] = (),
) -> Result:
    """Stylize ``content`` with one or more ``styles``; see :class:`StyleSettings` for the knobs.

    ``temporal`` (video): earlier outputs warped into this frame, at the content's size, that the
    result should stay close to where they are reliable.

    Runs coarse to fine (see :func:`pyramid_plan`): each level starts from the previous level's
    result, upsampled, and computes its style targets at the matching style scale.
    """
    settings = settings or StyleSettings()
    if not styles:
        raise ImpastoError("at least one style image is needed", parameter="styles")
    settings.validate(len(styles))
    device = resolve_device(settings.device)
    layers = list(dict.fromkeys([*settings.content_layers, *settings.style_layers]))
    model = get_backbone(settings.backbone, settings.backbone_weights, settings.pooling, layers, device, settings.padding)
    labels = [_label(content, "content image")] + [_label(style, "style image") for style in styles]
    content_full, styles_full = load_inputs(content, styles, settings.max_pixels)
    masks_full = load_masks(settings.masks, settings.max_pixels) if settings.masks is not None else None
    styles_full = color.styles_for(settings.preserve_color, styles_full, content_full)
    needed = min_input_size(model, layers)
    plan = pyramid_plan(settings.size, settings.iterations, settings.pyramid, settings.pyramid_min)
    if settings.pyramid is None:  # automatic levels never go below what the layers need
        plan = [step for step in plan if step[0] >= needed] or plan[-1:]
    final_content, _ = prepare(content_full, styles_full, settings, needed, labels)
    dtype = resolve_precision(settings.precision, device)
    model, cast = frozen_network(model, device, dtype, gradients=True)
    if settings.compile:  # fused forward and backward kernels, made once per pyramid level's (and tile's) shape
        model = compiled_network(model)
    height, width = content_full.shape[-2:]
    level_shapes = [images.scaled_size(height, width, size) for size, _ in plan]
    level_tiles = [_level_tiles(int(h), int(w), settings) for h, w in level_shapes]
    planned = sum(iterations * len(tiles) for (_, iterations), tiles in zip(plan, level_tiles))

    started = time.perf_counter()
    image: torch.Tensor | None = None

    def paint_level(level: int, step: tuple[tuple[int, int], list[tiling.Box]], report: LevelReport) -> LevelOutcome:
        nonlocal image
        (level_size, level_iterations), boxes = step
        level_settings = dataclasses.replace(settings, size=level_size, iterations=level_iterations)
        content_t, style_ts = prepare(content_full, styles_full, level_settings, needed, labels)
        height, width = content_t.shape[-2:]
        if image is None:
            canvas = initial_image(content_t, settings.init, settings.seed, settings.max_pixels)
        else:
            canvas = images.resize(image, (height, width)).clone()
        level_masks = None if masks_full is None else [resize_mask(mask, (height, width)) for mask in masks_full]
        targets = style_statistics(model, [s.to(device) for s in style_ts], level_settings, cast,
                                   blend_targets=level_masks is None)
        outcome = LevelOutcome(0, 0, {}, "iterations")
        for box in boxes:
            # A tile is optimised inside a window of fixed surrounding pixels, so that the network
            # sees the neighbouring image instead of padding; the losses' style region is the tile.
            window = tiling.expand(box, height, width, settings.tile_overlap) if len(boxes) > 1 else box
            inner = tiling.inner_box(box, window)
            region = tiling.box_mask(inner, window)
            tile_masks = [region] * len(targets)
            if level_masks is not None:
                tile_masks = [region * tiling.crop(mask, window) for mask in level_masks]
            objective = make_objective(model, tiling.crop(content_t, window).to(device), targets, level_settings,
                                       cast, tile_masks if len(boxes) > 1 or level_masks is not None else None)
            objective.temporal = [
                TemporalTarget(tiling.crop(images.resize(t.image, (height, width)), window).to(device),
                               tiling.crop(resize_mask(t.reliable, (height, width)), window).to(device), t.weight)
                for t in temporal
            ]
            surroundings = tiling.crop(canvas, window).to(device)
            compose = None if window == box else functools.partial(tiling.insert, surroundings, inner)

            def tile_report(iteration: int, count: int, terms: dict[str, float], pixels: torch.Tensor,
                            offset: int = outcome.iterations, before: int = outcome.evaluations) -> None:
                report(offset + iteration, before + count, terms, pixels)

            start = tiling.crop(canvas, box).to(device)
            result, iterations, evaluations, terms, stop_reason, tile_history = optimize_level(
                model, objective, start, level_settings.solver(), cast, tile_report, compose)
            weight = tiling.blend_weight(box, height, width, settings.tile_size, settings.tile_overlap)
            tiling.paste(canvas, result.clamp(0, 1).float().cpu(), box, weight)
            outcome = LevelOutcome(outcome.iterations + iterations, outcome.evaluations + evaluations, terms,
                                   stop_reason, outcome.history + tile_history)
            if stop_reason in ("interrupted", "non-finite"):
                break
        image = canvas
        return outcome

    total = coarse_to_fine(list(zip(plan, level_tiles)), paint_level, planned, on_step)
    assert image is not None
    output = images.resize(image, tuple(final_content.shape[-2:]))
    output = color.finish(settings.preserve_color, output, final_content)
    if masks_full is not None:  # outside every mask, the photo itself (not its reconstruction)
        output = in_regions(output, masks_full, final_content)
    return Result(output, total.iterations, total.evaluations, total.terms, total.stop_reason,
                  time.perf_counter() - started, total.history)


def stylize(
    content: images.ImageLike,
    style: images.ImageLike | Sequence[images.ImageLike],
    **options: object,
) -> Image.Image:
    """Repaint ``content`` in the style of ``style`` (one image, or a list to blend) and return a PIL image.

    ``content`` and styles may be file paths, PIL images or tensors.  ``options`` are the fields of
    :class:`StyleSettings` (size, iterations, optimizer, style_weight, init, seed, device, ...).
    """
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    unknown = set(options) - set(StyleSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}; see impasto.StyleSettings")
    result = run(content, styles, StyleSettings(**options))  # type: ignore[arg-type]
    if result.stop_reason == "non-finite":
        raise ImpastoError("the loss became NaN or infinite; lower the learning rate or the weights")
    return result.to_pil()
