"""A job as the ``impasto`` command that does it: the flag of each setting, written once.

:class:`impasto.jobs.image_job.ImageJob` and :class:`impasto.jobs.clip_job.ClipJob` describe themselves
with these; the CLI's parser is checked against the tables (a test), the history and the studio
show the result.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from impasto.methods import Method, Request

#: The command line's flag for each :class:`Request` field and each common method setting; a
#: method's other settings are ``--METHOD-FIELD``.  The CLI's parser is checked against this table.
REQUEST_FLAGS = {"size": "--size", "style_scale": "--style-scale", "stroke_scale": "--stroke-scale", "style_blend": "--style-blend", "masks": "--mask",
                 "preserve_color": "--preserve-color", "strength": "--strength", "model": "--model",
                 "device": "--device", "precision": "--precision", "compile": "--compile",
                 "max_pixels": "--max-pixels", "batch": "--batch"}
OPTION_FLAGS = {name: "--" + name.replace("_", "-") for name in (
    "iterations", "pyramid", "pyramid_min", "optimizer", "read_every", "tolerance", "patience", "init", "seed",
    "content_weight", "style_weight", "style_loss", "tv_weight", "content_layers", "content_layer_weights",
    "style_layers", "style_layer_weights", "ema", "tile_size", "tile_overlap", "backbone", "pooling", "padding")}
OPTION_FLAGS.update(learning_rate="--lr", backbone_weights="--weights")

def words(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(words(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def flag(parts: list[str], option: str, value: Any) -> None:
    """Append ``option`` for ``value``: alone for True, with the value in words, nothing for None/False."""
    if value is True:
        parts.append(option)
    elif value is not None and value is not False:
        parts += [option, words(value)]


def option_flags(method: Method, options: Any) -> list[str]:
    """The flags that set ``options`` (a method's settings) where they differ from its defaults."""
    if options is None:
        return []
    parts: list[str] = []
    default = method.options()
    for item in dataclasses.fields(options):
        value = getattr(options, item.name)
        if value == getattr(default, item.name):
            continue
        option = OPTION_FLAGS.get(item.name, f"--{method.name}-{item.name.replace('_', '-')}")
        if isinstance(value, bool) and item.name not in OPTION_FLAGS:
            parts.append(option if value else f"--no-{option[2:]}")
        else:
            flag(parts, option, value)
    return parts


def request_flags(request: Request, names: dict[str, str], default: Request | None = None) -> list[str]:
    """The flags that set ``request`` where it differs from ``default`` (:class:`Request`'s defaults
    unless the job has its own, as a clip's size); masks by their ``names`` (a file's path or a placeholder)."""
    parts: list[str] = []
    default = default or Request()
    for item in dataclasses.fields(Request):
        value = getattr(request, item.name)
        if item.name in ("options", "model", "masks") or value == getattr(default, item.name):
            continue
        flag(parts, REQUEST_FLAGS[item.name], list(value) if item.name == "style_blend" else value)
    for k, mask in enumerate(request.masks or (), 1):
        parts += ["--mask", names.get(f"mask{k}", str(mask))]
    return parts


def name(item: Any, placeholder: str) -> str:
    """A file as the command names it; an image in memory by its placeholder."""
    return "{" + placeholder + "}" if isinstance(item, torch.Tensor) else os.fsdecode(item)


def model_name(model: Any) -> str:
    """A shipped model by its name, another by its path."""
    from impasto.core.modelfile import SHIPPED_DIR

    path = Path(model)
    return path.stem if path.parent.resolve() == SHIPPED_DIR.resolve() else os.fsdecode(path)


