"""Neural neighbour style transfer (after Kolkin, Kucera, Paris, Sykora, Shechtman & Shakhnarovich 2022,
"Neural Neighbor Style Transfer"): no training, any style, and the style's own textures.

Where the Gram loss asks the output to share the style's feature *statistics*, this method builds an
explicit target: every location of the photo's multi-layer VGG features (a hypercolumn of relu1_1 to
relu4_1 on a grid of 4 px cells) is replaced by the most similar hypercolumn of the style (cosine
similarity, after centring both on the style's mean), and the pixels are optimised until their own
hypercolumns match the replaced ones (direction and length).  It runs coarse to fine, each level
starting from the previous one's result, and ends with a colour step that gives the result the
style's colour mean and covariance.

Two choices of impasto's, each measured against the optimisation method on unseen pairs
(benchmarks/bench_neighbours.py, docs/archive/): each style cell serves a limited number of photo
cells (``spread``; plain nearest neighbours let a large flat region take the same few cells, so the
result covers a corner of the style), and a Gram term on the style's global statistics
(``statistics``) sits beside the neighbour term, as the moment term does in Kolkin et al.'s earlier
STROTSS.  ``spread=0, statistics=0`` is the plain method.  The pixels, optimised through VGG's
strided layers, carry a 2x2 speckle and a 4 px pattern tied to the pixel grid; it is taken out of
the finished picture (:mod:`impasto.core.lattice`; docs/figures.md, "Machine marks").

The search is exact and done in blocks (:func:`nearest_neighbours`, :func:`top_neighbours`), so
memory stays bounded at any size.  ``strength`` blends each target with the photo's own feature (and
scales the statistics term and the colour step: 0 is the photo); ``weights`` blend several styles'
targets; ``masks`` give each style its region, and the photo's own features are the target where no
mask covers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from impasto.core import color, images, lattice
from impasto.core.backbone import VGG
from impasto.core.color import match_histogram
from impasto.core.errors import ImpastoError
from impasto.core.masks import in_regions, load_masks
from impasto.core.losses import TemporalTarget, gram_matrix, normalised, relative_gram_loss, resize_mask
from impasto.engines.solver import LevelOutcome, LevelReport, SolverSettings, coarse_to_fine, optimize_level
from impasto.core.runtime import default_encoder, frozen_network, resolve_device, resolve_precision
from impasto.methods import Progress, Request, Result, Temporal, check, one_by_one

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: The hypercolumn grid: one cell per 4x4 pixels (the relu3_1 grid of VGG-19).
CELL = 4
#: Temporal loss weight: the cosine loss lies in [0, 2], so far lower than the optimisation method's.
TEMPORAL_WEIGHT = 0.002


@dataclass
class NeighbourSettings:
    """The method's own options.  ``iterations`` run at the output size; each coarser level runs more."""

    iterations: int = 10
    pyramid_min: int = 128
    tolerance: float = 1e-5
    patience: int = 10
    spread: float = field(default=1.0, metadata={
        "help": "each style cell serves about this many photo cells (0: plain nearest neighbours)"})
    statistics: float = field(default=10.0, metadata={
        "help": "weight of the styles' Gram matrices (global statistics) beside the neighbours"})
    magnitude: float = field(default=1.0, metadata={"help": "weight of the features' lengths beside their directions"})
    colour_step: bool = field(default=True, metadata={
        "help": "give the result the main style's colour mean and covariance at the end"})
    first_step: float | None = field(default=0.005, metadata={
        "help": "each level's first L-BFGS step, as a mean pixel change"})
    chunk: int = field(default=1 << 24, metadata={
        "help": "similarity scores computed at once (64 MiB of fp32 by default): bounds memory at any size"})

    def validate(self) -> None:
        for name in ("iterations", "pyramid_min", "patience", "chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ImpastoError(f"{name.replace('_', ' ')} must be a positive whole number, got {value}",
                                   parameter=name)
        for name in ("tolerance", "spread", "statistics", "magnitude"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ImpastoError(f"{name} must be a non-negative number, got {value}", parameter=name)


# ------------------------------------------------------------------------------------- the search


def nearest_neighbours(queries: torch.Tensor, keys: torch.Tensor, chunk: int = 1 << 24) -> torch.Tensor:
    """For each row of ``queries`` (N, D), the index of the row of ``keys`` (M, D) with the largest
    dot product (the cosine when rows are unit vectors); ties go to the lowest index.

    Exact, in blocks of at most ``chunk`` scores (N x M would be 16 GiB for two 1024 px images).
    """
    if keys.shape[0] == 0:
        raise ImpastoError("no style features to search")
    key_block = max(1, min(keys.shape[0], chunk))
    query_block = max(1, chunk // key_block)
    best = torch.empty(queries.shape[0], dtype=torch.long, device=queries.device)
    for q in range(0, queries.shape[0], query_block):
        rows = queries[q: q + query_block]
        top_score = torch.full((rows.shape[0],), -math.inf, device=queries.device)
        top_index = torch.zeros(rows.shape[0], dtype=torch.long, device=queries.device)
        for k in range(0, keys.shape[0], key_block):
            score, index = (rows @ keys[k: k + key_block].T).max(dim=1)
            better = score > top_score  # strict: an earlier block keeps its ties
            top_score = torch.where(better, score, top_score)
            top_index = torch.where(better, index + k, top_index)
        best[q: q + query_block] = top_index
    return best


def top_neighbours(queries: torch.Tensor, keys: torch.Tensor, k: int, chunk: int = 1 << 24,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best keys of each query, best first: (scores, indices), each (N, k); in blocks as above."""
    k = min(k, keys.shape[0])
    key_block = max(k, min(keys.shape[0], chunk))
    query_block = max(1, chunk // key_block)
    scores = torch.empty(queries.shape[0], k, device=queries.device)
    indices = torch.empty(queries.shape[0], k, dtype=torch.long, device=queries.device)
    for q in range(0, queries.shape[0], query_block):
        rows = queries[q: q + query_block]
        best_s = torch.full((rows.shape[0], 0), -math.inf, device=queries.device)
        best_i = torch.zeros((rows.shape[0], 0), dtype=torch.long, device=queries.device)
        for start in range(0, keys.shape[0], key_block):
            block_s, block_i = torch.topk(rows @ keys[start: start + key_block].T,
                                          min(k, keys[start: start + key_block].shape[0]), dim=1)
            merged_s, order = torch.topk(torch.cat([best_s, block_s], dim=1),
                                         min(k, best_s.shape[1] + block_s.shape[1]), dim=1)
            best_i = torch.gather(torch.cat([best_i, block_i + start], dim=1), 1, order)
            best_s = merged_s
        scores[q: q + query_block], indices[q: q + query_block] = best_s, best_i
    return scores, indices


def balanced_neighbours(queries: torch.Tensor, keys: torch.Tensor, spread: float, k: int = 16,
                        chunk: int = 1 << 24) -> torch.Tensor:
    """Nearest neighbours where each key serves at most ``ceil(spread * N / M)`` queries.

    Plain nearest neighbours let a large flat region of the photo take the same few style cells, so
    the result's features cover a corner of the style's; a capacity spreads the choice over the whole
    style (``spread`` 1: each style cell about once, the style's own distribution; larger: nearer
    plain neighbours).  The most confident queries choose first among their ``k`` best; a query whose
    candidates are all taken keeps its nearest.
    """
    scores, candidates = top_neighbours(queries, keys, k, chunk)
    capacity = max(1, math.ceil(spread * queries.shape[0] / keys.shape[0]))
    left = [capacity] * keys.shape[0]
    chosen = candidates[:, 0].clone()
    table = candidates.tolist()
    for query in torch.argsort(scores[:, 0], descending=True).tolist():
        for key in table[query]:
            if left[key] > 0:
                left[key] -= 1
                chosen[query] = key
                break
    return chosen


# --------------------------------------------------------------------------------- the hypercolumns


def hypercolumns(features: dict[str, torch.Tensor], grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Each layer's feature map resampled to the cell grid: ``(1, C, h, w)`` per layer."""
    out = {}
    for name, f in features.items():
        f = f.float()
        if f.shape[-2] > grid[0]:
            f = F.adaptive_avg_pool2d(f, grid)
        elif tuple(f.shape[-2:]) != grid:
            f = F.interpolate(f, size=grid, mode="bilinear", align_corners=False)
        out[name] = f
    return out


def _rows(column: torch.Tensor) -> torch.Tensor:
    """(1, C, h, w) -> (h*w, C)."""
    return column.flatten(2)[0].T


def unit_rows(columns: dict[str, torch.Tensor], centre: dict[str, torch.Tensor]) -> torch.Tensor:
    """Centred, per-layer unit hypercolumns concatenated (each layer counts the same): (h*w, sum C)."""
    parts = [F.normalize(_rows(columns[name]) - centre[name], dim=1) for name in columns]
    return torch.cat(parts, dim=1) / math.sqrt(len(parts))


@dataclass
class StyleBank:
    """One style image's hypercolumns at one size: the centre (its mean) and its unit rows."""

    centre: dict[str, torch.Tensor]
    rows: torch.Tensor  # (M, sum C) unit rows, for the search
    layer_rows: dict[str, torch.Tensor]  # (M, C) centred rows per layer (their own length), for the targets
    grams: dict[str, torch.Tensor]  # per layer, at its own resolution: the global statistics term's targets


def style_bank(model: VGG, style: torch.Tensor, cast: Callable) -> StyleBank:
    with torch.no_grad(), cast():
        features = model(style, LAYERS)
    h, w = style.shape[-2:]
    columns = hypercolumns(features, (max(1, h // CELL), max(1, w // CELL)))
    centre = {name: _rows(c).mean(dim=0) for name, c in columns.items()}
    layer_rows = {name: _rows(c) - centre[name] for name, c in columns.items()}
    grams = {name: gram_matrix(f.float()) for name, f in features.items()}
    return StyleBank(centre, unit_rows(columns, centre), layer_rows, grams)


class NeighbourObjective:
    """Per layer, the mean cosine distance between the image's centred hypercolumns and the targets,
    plus ``magnitude`` times their squared distance relative to the targets' mean square (the cosine
    alone leaves the style's contrast out: strokes come out faint)."""

    def __init__(self, targets: dict[str, torch.Tensor], centre: dict[str, torch.Tensor], grid: tuple[int, int],
                 magnitude: float = 1.0):
        self.targets = targets  # (h*w, C) centred rows per layer
        self.units = {name: F.normalize(t, dim=1) for name, t in targets.items()}
        self.scales = {name: t.pow(2).sum(dim=1).mean().clamp_min(1e-12) for name, t in targets.items()}
        self.centre = centre
        self.grid = grid
        self.magnitude = magnitude
        self.temporal: Sequence[TemporalTarget] = ()
        #: (weight, Gram targets per layer, region mask or None) per style: the global statistics term
        self.statistics: list[tuple[float, dict[str, torch.Tensor], torch.Tensor | None]] = []
        self.statistics_weight = 0.0
        self._regions: dict[tuple, torch.Tensor] = {}

    @property
    def layers(self) -> list[str]:
        return list(LAYERS)

    def _region(self, k: int, region: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """Style ``k``'s region at a layer's resolution (made once, not at every evaluation)."""
        key = (k, shape)
        if key not in self._regions:
            self._regions[key] = resize_mask(region, shape)
        return self._regions[key]

    def terms(self, image: torch.Tensor, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        columns = hypercolumns({name: features[name] for name in LAYERS}, self.grid)
        distance = image.new_zeros((), dtype=torch.float32)
        for name, column in columns.items():
            rows = _rows(column) - self.centre[name]
            distance = distance + (1.0 - (F.normalize(rows, dim=1) * self.units[name]).sum(dim=1)).mean()
            if self.magnitude:
                squared = (rows - self.targets[name]).pow(2).sum(dim=1).mean() / self.scales[name]
                distance = distance + self.magnitude * squared
        terms = {"style": distance / len(columns)}
        terms["total"] = terms["style"]
        if self.statistics_weight:
            statistics = torch.zeros_like(distance)
            for k, (weight, grams, region) in enumerate(self.statistics):
                for name in LAYERS:
                    mask = None if region is None else self._region(k, region, tuple(features[name].shape[-2:]))
                    statistics = statistics + weight * relative_gram_loss(features[name].float(), grams[name], mask)
            terms["statistics"] = self.statistics_weight * statistics / len(LAYERS)
            terms["total"] = terms["total"] + terms["statistics"]
        if self.temporal:
            terms["temporal"] = sum((t.weight * t.loss(image) for t in self.temporal), torch.zeros_like(distance))
            terms["total"] = terms["total"] + terms["temporal"]
        return terms


def neighbour_targets(content_columns: dict[str, torch.Tensor], banks: Sequence[StyleBank],
                      weights: Sequence[float], regions: Sequence[torch.Tensor] | None, strength: float,
                      chunk: int, spread: float = 0.0,
                      ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per layer, the target rows (centred) and the centre the loss measures them from.

    Each style's target is its nearest hypercolumn to each cell of the photo; several styles are
    blended by ``weights`` or split by ``regions`` (one (h*w,) weight per style; the photo's own
    feature where they sum to less than one); ``strength`` < 1 leans every target toward the photo.
    """
    centre = {name: sum(w * bank.centre[name] for w, bank in zip(weights, banks)) for name in LAYERS}
    own = {name: _rows(content_columns[name]) - centre[name] for name in LAYERS}
    targets = {name: torch.zeros_like(own[name]) for name in LAYERS}
    for k, bank in enumerate(banks):
        # search in the style's own centring: a photo cell finds the style cell that plays its part
        query = unit_rows(content_columns, bank.centre)
        if spread:
            index = balanced_neighbours(query, bank.rows, spread, chunk=chunk)
        else:
            index = nearest_neighbours(query, bank.rows, chunk)
        share = weights[k] if regions is None else regions[k][:, None]
        for name in LAYERS:
            targets[name] = targets[name] + share * bank.layer_rows[name][index]
    if regions is not None:
        uncovered = (1.0 - torch.stack(list(regions)).sum(dim=0)).clamp(0, 1)[:, None]
        targets = {name: targets[name] + uncovered * own[name] for name in LAYERS}
    if strength < 1.0:
        targets = {name: strength * targets[name] + (1.0 - strength) * own[name] for name in LAYERS}
    return targets, centre


def colour_step(image: torch.Tensor, styles: Sequence[torch.Tensor], weights: Sequence[float],
                strength: float) -> torch.Tensor:
    """Give the result the main style's colour mean and covariance, keeping its structure (as far as
    ``strength`` goes: at 0 the photo stays the photo)."""
    reference = max(zip(weights, styles), key=lambda pair: pair[0])[1]
    return strength * match_histogram(image.clamp(0, 1), reference) + (1.0 - strength) * image


def level_plan(side: int, iterations: int, smallest: int) -> list[tuple[int, int]]:
    """(size, iterations) per level, coarse to fine: sizes halve down to ``smallest``; each coarser
    level runs twice the iterations of the next (it costs a quarter as much, and it settles where
    each texture goes, the slow part)."""
    plan = [(side, iterations)]
    while plan[0][0] // 2 >= smallest:
        plan.insert(0, (plan[0][0] // 2, plan[0][1] * 2))
    return plan


# ---------------------------------------------------------------------------------------- the method


class Neighbours:
    name = "neighbours"
    label = 'Any style with its own textures, medium speed: neural neighbours'  # in plain words, for the studio
    summary = ("each feature of the photo replaced by its nearest style feature, pixels optimised to match "
               "(Kolkin et al. 2022): any style, no training")
    uses_styles = True
    model_kind = None
    model_required = False
    default_strength = 0.7  # measured: style and content both nearer than the optimisation method's
    one_pass = False
    options = NeighbourSettings
    quick_options = {"iterations": 2, "pyramid_min": 1 << 20}  # one level

    def prepare(self, styles: Sequence[images.ImageLike], request: Request) -> "NeighbourPainter":
        check(self, styles, request)
        settings = request.options or NeighbourSettings()
        settings.validate()
        return NeighbourPainter(styles, request, settings)


class NeighbourPainter:
    def __init__(self, styles: Sequence[images.ImageLike], request: Request, settings: NeighbourSettings) -> None:
        self.request = request
        self.settings = settings
        self.styles = [images.as_tensor(style, request.max_pixels) for style in styles]
        self.masks = load_masks(request.masks, request.max_pixels) if request.masks is not None else None
        self.weights = normalised(request.style_blend or [1.0] * len(self.styles), "blend weights")
        self.strength = Neighbours.default_strength if request.strength is None else request.strength
        self.device = resolve_device(request.device)
        self.model, self.cast = frozen_network(default_encoder(LAYERS, self.device), self.device,
                                               resolve_precision(request.precision, self.device), gradients=True)
        self._banks: dict[tuple, list[StyleBank]] = {}

    def banks(self, side: int, photo: torch.Tensor | None) -> list[StyleBank]:
        """The styles' hypercolumns with their long side at ``side``, matched to ``photo`` under the
        colour mode (:func:`impasto.core.color.styles_for`; cached when they do not depend on it)."""
        key = (side,)
        if photo is None and key in self._banks:
            return self._banks[key]
        styles = [images.resize_max_side(s, side, self.request.max_pixels) for s in self.styles]
        if photo is not None:
            styles = color.styles_for(self.request.preserve_color, styles, photo)
        small = [s for s in styles if min(s.shape[-2:]) < 2 * CELL]
        if small:
            raise ImpastoError(f"a style image is {small[0].shape[-1]}x{small[0].shape[-2]} px at this size, too "
                               f"small to have features; use a larger style scale", parameter="style_scale")
        banks = [style_bank(self.model, s.to(self.device), self.cast) for s in styles]
        if photo is None:
            self._banks[key] = banks
        return banks

    def _level(self, content: torch.Tensor, canvas: torch.Tensor, iterations: int, photo: torch.Tensor | None,
               report: Callable, temporal: Sequence[TemporalTarget] = ()) -> tuple:
        h, w = content.shape[-2:]
        grid = (max(1, h // CELL), max(1, w // CELL))
        with torch.no_grad(), self.cast():
            columns = hypercolumns(self.model(content.to(self.device), LAYERS), grid)
        regions = None
        if self.masks is not None:
            regions = [resize_mask(mask, grid).to(self.device).flatten() for mask in self.masks]
        banks = self.banks(self.request.style_size(max(h, w)), photo)
        targets, centre = neighbour_targets(columns, banks, self.weights, regions, self.strength, self.settings.chunk,
                                            self.settings.spread)
        objective = NeighbourObjective(targets, centre, grid, self.settings.magnitude)
        objective.temporal = temporal
        objective.statistics_weight = self.settings.statistics * self.strength  # 0: the photo, as everywhere
        objective.statistics = [(weight, bank.grams, None if self.masks is None else
                                 resize_mask(self.masks[k], (h, w)).to(self.device))
                                for k, (weight, bank) in enumerate(zip(self.weights, banks))]
        steps = SolverSettings(iterations=iterations, optimizer="lbfgs", tolerance=self.settings.tolerance,
                               patience=self.settings.patience)
        return optimize_level(self.model, objective, canvas.to(self.device).contiguous(), steps, self.cast, report,
                         first_step=self.settings.first_step)

    def paint(self, content: images.ImageLike, on_step: Callable[[Progress], None] | None = None) -> Result:
        return self.paint_tensor(self.request.load(content), on_step)

    def paint_tensor(self, full: torch.Tensor, on_step: Callable[[Progress], None] | None = None,
                     init: torch.Tensor | None = None, temporal: Sequence[TemporalTarget] = (),
                     iterations: int | None = None) -> Result:
        """Coarse to fine at ``full``'s size; with ``init`` (video: the warped previous output) only the
        finest level runs, ``iterations`` times, with the ``temporal`` losses."""
        started = time.perf_counter()
        r = self.request
        if min(full.shape[-2:]) < 2 * CELL:
            raise ImpastoError(f"the photo is {full.shape[-1]}x{full.shape[-2]} px at this size; "
                               f"it needs at least {2 * CELL} px", parameter="size")
        photo = full if color.depends_on_photo(r.preserve_color) else None  # the styles are matched to it
        side = max(full.shape[-2:])
        plan = level_plan(side, self.settings.iterations, self.settings.pyramid_min)
        if init is not None:
            plan = [(side, iterations or self.settings.iterations)]
        image: torch.Tensor | None = None

        def paint_level(level: int, step: tuple[int, int], report: LevelReport) -> LevelOutcome:
            nonlocal image
            level_side, iterations = step
            content_t = images.resize(full, images.scaled_size(*full.shape[-2:], level_side))
            if image is None:
                canvas = content_t if init is None else images.resize(init, tuple(content_t.shape[-2:]))
            else:
                canvas = images.resize(image, tuple(content_t.shape[-2:]))
            result, iterations_run, count, terms, stop_reason, _ = self._level(
                content_t, canvas, iterations, photo, report, temporal if level == len(plan) else ())
            image = result.clamp(0, 1).float().cpu()
            return LevelOutcome(iterations_run, count, terms, stop_reason)

        total = coarse_to_fine(plan, paint_level, sum(n for _, n in plan), on_step)
        assert image is not None
        image = images.resize(image, tuple(full.shape[-2:]))
        if self.strength > 0:  # VGG's strided layers' speckle (at strength 0 the photo stays the photo)
            image = lattice.remove_lattice(image, CELL).clamp(0, 1)
        image = color.finish(r.preserve_color, image, full)
        if self.settings.colour_step and r.preserve_color == "none" and self.masks is None:
            image = colour_step(image, self.styles, self.weights, self.strength)
        if self.masks is not None:  # outside every mask, the photo itself
            image = in_regions(image, self.masks, full)
        return Result(image.clamp(0, 1), total.iterations, total.evaluations, total.terms, total.stop_reason,
                      time.perf_counter() - started)

    def paint_many(self, contents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return one_by_one(self, contents)

    def frames(self, temporal: Temporal) -> "NeighbourFrames":
        return NeighbourFrames(self, temporal)


class NeighbourFrames:
    """Video: the first frame coarse to fine; later ones start from the warped previous output and
    run ``temporal.iterations`` at the frame size with a temporal loss on its reliable pixels."""

    def __init__(self, painter: NeighbourPainter, temporal: Temporal) -> None:
        self.painter = painter
        self.weight = TEMPORAL_WEIGHT if temporal.weight is None else temporal.weight
        self.iterations = temporal.iterations
        self.name = "neighbours"
        r = painter.request
        self.recipe = {"method": self.name, "styles": [images.digest(s) for s in painter.styles],
                       "weights": painter.weights, "strength": painter.strength, "style_scale": r.style_scale,
                       "preserve_color": r.preserve_color, "settings": dataclasses.asdict(painter.settings),
                       "iterations": self.iterations, "temporal_weight": self.weight}

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        if history:
            temporal = [TemporalTarget(image, reliable, self.weight) for image, reliable in history]
            result = self.painter.paint_tensor(frame, init=history[0][0], temporal=temporal,
                                               iterations=self.iterations)
        else:
            result = self.painter.paint_tensor(frame)
        if result.stop_reason == "interrupted":
            raise KeyboardInterrupt
        return result.image
