"""A job as the ``impasto`` command that does it: the flag of each setting, written once.

:class:`impasto.jobs.image_job.ImageJob` and :class:`impasto.jobs.clip_job.ClipJob` describe themselves
with these, each setting by the flag its declaration names (:mod:`impasto.core.fields`, as the CLI's
parser does); the history and the studio show the result.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from impasto.core.fields import declared, default_of, flag_name
from impasto.methods import Method, Request

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


def changed_flags(settings: Any, defaults: dict[str, Any] | None = None) -> list[str]:
    """The flags that set the declared fields of ``settings`` (:func:`impasto.core.fields.setting`)
    where they differ from their defaults (``defaults``: the job's own for some of them)."""
    parts: list[str] = []
    for field in declared(type(settings)):
        value = getattr(settings, field.name)
        if value == (defaults or {}).get(field.name, default_of(field)):
            continue
        if field.metadata.get("negate"):
            value = not value
        if value is not None and value == field.metadata.get("const"):
            value = True  # the flag alone
        flag(parts, flag_name(field), os.fsdecode(value) if isinstance(value, os.PathLike) else value)
    return parts


def option_flags(method: Method, options: Any) -> list[str]:
    """The flags that set ``options`` (a method's settings) where they differ from its defaults: the
    common ones by their own flags (:class:`impasto.engines.optimize.OptimizeSettings`' fields),
    the others as ``--METHOD-FIELD``."""
    if options is None:
        return []
    from impasto.engines.optimize import OptimizeSettings

    shared = {field.name: flag_name(field) for field in declared(OptimizeSettings)}
    parts: list[str] = []
    default = method.options()
    for item in dataclasses.fields(options):
        value = getattr(options, item.name)
        if value == getattr(default, item.name):
            continue
        option = shared.get(item.name, f"--{method.name}-{item.name.replace('_', '-')}")
        if isinstance(value, bool) and item.name not in shared:
            parts.append(option if value else f"--no-{option[2:]}")
        else:
            flag(parts, option, value)
    return parts


def request_flags(request: Request, names: dict[str, str], defaults: dict[str, Any] | None = None) -> list[str]:
    """The flags that set ``request`` where it differs from :class:`Request`'s defaults (``defaults``:
    the job's own, as a clip's size); masks by their ``names`` (a file's path or a placeholder)."""
    parts = changed_flags(request, defaults)
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


def request_settings(request: Request) -> tuple[dict[str, Any], Any]:
    """A request as the history keeps it: (its fields as plain data, masks left out and a shipped
    model by its name; the method's own settings apart)."""
    kept = dataclasses.asdict(request)
    kept.pop("masks")
    kept["model"] = model_name(request.model) if request.model is not None else None
    return kept, kept.pop("options")


def painting_names(styles: Sequence[Any], model: Any, given: Sequence[str] | None = None) -> list[str]:
    """The paintings a run's caption names: ``given`` (a front end's own names), else the style
    files' names (images in memory have none), else the model's."""
    names = list(given) if given is not None else \
        [Path(style).stem for style in styles if isinstance(style, (str, os.PathLike))]
    if not names and given is None and model is not None:
        names = [Path(model).stem]
    return [name.replace("_", " ") for name in names]
