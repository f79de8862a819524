"""What to train, as a front end asks for it: a kind of network, folders of photos and paintings,
and the kind's own choices, made into the task that :func:`impasto.networks.training.train` runs.

The CLI's ``impasto train KIND`` is a thin layer over :func:`task_from`; a script can call a kind's
function directly::

    task = training_tasks.arbitrary_task("photos/", "paintings/", style_weight=15)
    train(task, TrainSettings(steps=2000), Path("any.pt"))

Each function's defaults are the command's (the CLI reads them from here).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from impasto.core.errors import ImpastoError

PathLike = str | os.PathLike


def output_path(output: PathLike) -> tuple[Path, bool]:
    """Where a trained model goes, and whether it was named: a ``.pt`` file, or a bare name that
    goes among the user's models (used by that name afterwards)."""
    path = Path(output)
    named = not path.suffix and path.parent == Path(".")
    if named:
        from impasto.core.modelfile import user_models_dir

        path = user_models_dir() / f"{path.name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix != ".pt":
        raise ImpastoError("model files end in .pt (or give a bare name: it goes among your models)", path)
    return path, named


def _preview(image: PathLike | None):
    from impasto.core.images import read_image, resize_max_side

    return resize_max_side(read_image(image), 256) if image else None


def adain_task(content: PathLike, style: PathLike, crop: int = 128, shorter_side: int | None = None,
               style_weight: float = 10.0, hold_out: Sequence[str] = (), upsample: str = "nearest",
               shift_weight: float = 0.0, shift_share: float | None = None):
    """An AdaIN decoder (Huang and Belongie 2017) on a folder of photos and one of paintings;
    ``hold_out``: painting file names kept out of training, for a held-out check."""
    from impasto.networks import adain_training
    from impasto.networks.training import ImageFolder

    shorter = shorter_side or 2 * crop
    photos = ImageFolder(content, crop, shorter, what="content photos")
    paintings = ImageFolder(style, crop, shorter, what="style images", exclude=hold_out)
    return adain_training.AdainTask(photos, paintings, style_weight=style_weight, hold_out=hold_out, upsample=upsample,
                           shift_weight=shift_weight, **({} if shift_share is None else {"shift_share": shift_share}))


def arbitrary_task(content: PathLike, style: PathLike, crop: int = 128, shorter_side: int | None = None,
                   width: float = 0.5, style_weight: float = 3.0, shift_weight: float = 100.0,
                   shift_share: float | None = None, style_crop: int = 128, style_shorter_side: int = 256,
                   procedural: int = 32, hold_out: Sequence[str] = (), preview_image: PathLike | None = None,
                   start_from: str | None = None, style_loss: str = "gram", upsample: str = "bilinear"):
    """The any-painting network (a style predictor and a feed-forward network): photos are read a
    half larger than ``crop`` and zoomed at several scales; ``procedural`` brushstroke paintings
    widen what it sees; ``start_from``: a trained feed-forward model of the same width."""
    from impasto.networks import arbitrary_training
    from impasto.core.modelfile import resolve_model
    from impasto.networks.training import ImageFolder

    shorter = shorter_side or 2 * crop
    photos = ImageFolder(content, round(1.5 * crop), max(shorter, round(1.5 * crop)), what="content photos")
    paintings = ImageFolder(style, style_crop, style_shorter_side, what="paintings", exclude=hold_out)
    return arbitrary_training.ArbitraryTask(
        photos, paintings, crop, width=width, style_weight=style_weight, shift_weight=shift_weight,
        shift_share=0.25 if shift_share is None else shift_share, procedural=procedural, hold_out=hold_out,
        preview=_preview(preview_image), start_from=resolve_model(start_from) if start_from else None,
        style_loss=style_loss, upsample=upsample)


#: kind -> its training's own length and pace: the defaults of ``impasto train KIND``'s --steps,
#: --batch-size, --lr and --lr-decay.
RECIPES: dict[str, dict[str, Any]] = {
    "adain": {"steps": 10_000, "batch_size": 8, "lr": 1e-4, "lr_decay": 5e-5},
    "arbitrary": {"steps": 20_000, "batch_size": 4, "lr": 2e-4, "lr_decay": 0.0},
    "fast": {"steps": 4_000, "batch_size": 4, "lr": 1e-3, "lr_decay": 0.0},
}

#: ``train fast --from-arbitrary``'s own defaults: minutes on a 2-core CPU, and the learning rate at
#: which the norms move within them (how long they take: docs/figures.md; how they were chosen:
#: docs/archive/benchmarks-history.md, "Your painting as a one-pass model").
ADAPTATION = {"steps": 100, "batch_size": 2, "lr": 1e-2}


def fast_task(data: PathLike, style: Sequence[PathLike], crop: int = 256, shorter_side: int | None = None,
              width: float = 1.0, style_size: int | None = None, content_weight: float = 1.0,
              style_weight: float | None = None, tv_weight: float = 0.0, network_output: str = "direct",
              upsample: str = "nearest", shift_weight: float | None = None, shift_share: float | None = None,
              preview_image: PathLike | None = None, from_arbitrary: str | None = None, adapt_all: bool = False,
              style_loss: str | None = None, edge_weight: float = 0.0, frame_weight: float = 0.0):
    """A feed-forward network for one painting or several (conditional norms); ``from_arbitrary``:
    start from the any-painting network's prediction for the painting and train only the norms
    (``adapt_all``: every weight), by default with the style loss and weight the network's last
    stage trained with (its prediction is the balance of those; at a lower weight the norms move
    away from the painting: docs/archive/benchmarks-history.md).  ``style_loss`` None: that, or Gram."""
    from impasto.networks import fast_training
    from impasto.core.images import read_image, resize_max_side
    from impasto.core.modelfile import resolve_model
    from impasto.networks.training import ImageFolder

    shorter = shorter_side or 2 * crop
    photos = ImageFolder(data, crop, shorter, what="content photos")
    styles = [resize_max_side(read_image(path), style_size or shorter) for path in style]
    start = None
    if from_arbitrary is not None:
        from impasto.networks.arbitrary import ArbitraryModel

        start = resolve_model(from_arbitrary)
        network = ArbitraryModel(start, "cpu", "fp32")
        width = float(network.config["width"])
        trained = network.training or {}
        if style_loss is None:
            style_loss = str(trained.get("style_loss", "gram"))
            if style_weight is None and trained.get("style_weight") is not None:
                style_weight = float(trained["style_weight"])
    elif adapt_all:
        raise ImpastoError("--adapt-all goes with --from-arbitrary", parameter="adapt_all")
    style_loss = style_loss or "gram"
    task = fast_training.FastTask(photos, styles, [Path(path).stem for path in style], width=width,
                                  content_weight=content_weight,
                                  style_weight=fast_training.STYLE_WEIGHTS.get(style_loss, 0.0) if style_weight is None else style_weight,
                                  tv_weight=tv_weight, preview=_preview(preview_image), output=network_output,
                                  upsample=upsample,
                                  shift_weight=fast_training.DEFAULT_SHIFT_WEIGHT if shift_weight is None else shift_weight,
                                  shift_share=fast_training.DEFAULT_SHIFT_SHARE if shift_share is None else shift_share,
                                  style_loss=style_loss, edge_weight=edge_weight,
                                  frame_weight=frame_weight)
    if start is not None:
        from impasto.networks.arbitrary_training import start_adaptation

        start_adaptation(task, start, norms_only=not adapt_all)
    return task


#: kind -> the function that makes its task
KINDS: dict[str, Callable[..., Any]] = {"adain": adain_task, "arbitrary": arbitrary_task, "fast": fast_task}


def default(kind: str, name: str) -> Any:
    """A kind's default for one of its choices (what the CLI shows and uses)."""
    return inspect.signature(KINDS[kind]).parameters[name].default


def task_from(kind: str, options: Mapping[str, Any]) -> Any:
    """The kind's task from a mapping that holds its choices by name (others are ignored; a value
    of None takes the default)."""
    if kind not in KINDS:
        raise ImpastoError(f"unknown kind of training {kind!r}; choose one of {', '.join(KINDS)}", parameter="kind")
    parameters = inspect.signature(KINDS[kind]).parameters
    chosen = {name: options[name] for name in parameters if options.get(name) is not None}
    return KINDS[kind](**chosen)
