"""The option groups the commands share, and the parsed flags as the library's settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from impasto.cli.flags import (MaskBox, OldName, float_list, layer_weights, mask_box, name_list, non_negative_float,
                               non_negative_int, positive_float, positive_int, seed_value, share, whole_number)
from impasto.core.errors import ImpastoError
from impasto.core.fields import CONTROL, HEADINGS, declared, default_of, destination, flag_name


def add_engine_options(parser: argparse.ArgumentParser, defaults: dict[str, Any] | None = None) -> None:
    """The request's options (:class:`impasto.methods.Request`), the iterative methods' common ones
    (:class:`impasto.engines.optimize.OptimizeSettings`; default None: each method's settings
    decide, see `impasto methods`) and each method's other settings: all generated from the
    dataclasses' fields (:func:`add_settings`); ``defaults``: the command's own for some of them."""
    from impasto import methods
    from impasto.core.losses import STYLE_LOSSES
    from impasto.engines.optimize import OptimizeSettings

    own = {name: methods.get(name) for name in methods.names()}
    theirs: dict[str, dict[str, Any]] = {}  # a common setting -> each method's own default for it
    for name, method in own.items():
        for field in declared(OptimizeSettings) if method.options is not None else ():
            if field.name in method.options.__dataclass_fields__:
                theirs.setdefault(field.name, {})[name] = getattr(method.options(), field.name)
    differing = {field: "the method's own: " + ", ".join(f"{name} {value}" for name, value in values.items())
                 for field, values in theirs.items() if len(set(map(repr, values.values()))) > 1}
    strengths: dict[float, list[str]] = {}
    for name, method in own.items():
        strengths.setdefault(method.default_strength, []).append(name)
    add_settings(parser, methods.Request, notes={
        "strength": "the method's own: " + ", ".join(f"{'/'.join(names)} {value:g}" for value, names in strengths.items())
                    + "; optimize's on a log scale of --style-weight"}, defaults=defaults)
    shared = add_settings(parser, OptimizeSettings, given_only=True, notes={
        **differing,
        "style_weight": "the style loss's own: " + ", ".join(f"{name} {loss.default_weight:g}"
                                                             for name, loss in STYLE_LOSSES.items())})
    heading(parser, CONTROL).add_argument(
        "--mask", action="append", default=None, metavar="MASK",
        help="grayscale image: where the style applies (white) and the photo stays (black); repeat once per STYLE "
             "to give each style its own region")
    heading(parser, CONTROL).add_argument(
        "--mask-box", action="append", dest="mask", type=mask_box, metavar="X0,Y0,X1,Y1",
        help="a mask cut from the content photo: the subject inside this box (in the photo's pixels; a clip's "
             "frame) gets the style, the rest stays the photo; like --mask, repeat once per STYLE, in order with "
             "the --mask files")
    parser.set_defaults(shared_settings=shared)  # what options_from reads for a method's field of the same name
    for name, method in own.items():
        if method.options is not None:
            add_settings(parser, method.options, given_only=True, prefix=name, taken=set(shared))


#: A setting's ``check`` -> the value type that reads it, by the field's type.
CHECKED = {(int, "positive"): positive_int, (int, "non_negative"): non_negative_int, (int, "seed"): seed_value,
           (float, "positive"): positive_float, (float, "non_negative"): non_negative_float,
           (float, "share"): share, (dict, "layer_weights"): layer_weights}


def flag_type(hint: object) -> type | None:
    """The kind of value a settings field holds on the command line: ``X | None`` -> X; text where
    text is one of the kinds (a file or a name); list for a sequence; None for values no flag holds."""
    import collections.abc
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        hint = str if str in kinds else kinds[0] if len(kinds) == 1 else None
    origin = typing.get_origin(hint)
    if origin in (collections.abc.Sequence, list, tuple):
        return list
    if origin is dict:
        return dict
    return hint if hint in (bool, int, float, str) else None


def value_type(field, hint: object) -> Callable[[str], Any] | None:
    """How the flag's text becomes the field's value."""
    kind = flag_type(hint)
    check = field.metadata.get("check")
    if kind is list:
        return float_list if float in _items(hint) else name_list
    if check is not None:
        return CHECKED[kind, check]
    return {int: whole_number, float: float, str: None}.get(kind)


def _items(hint: object) -> tuple:
    """The item types of a sequence hint (inside ``X | None``)."""
    import typing

    for part in (typing.get_args(hint) or (hint,)):
        args = typing.get_args(part)
        if args:
            return args
    return ()


def heading(parser: argparse.ArgumentParser, title: str):
    """The parser's group with this heading; all the headings are made at once, in their order."""
    groups = {group.title: group for group in parser._action_groups}
    if title not in groups:
        for name in HEADINGS:
            if name not in groups:
                groups[name] = parser.add_argument_group(name)
    return groups.get(title) or parser.add_argument_group(title)


def add_settings(parser: argparse.ArgumentParser, settings: type, *, given_only: bool = False,
                 prefix: str | None = None, taken: set[str] = frozenset(), notes: dict[str, str] | None = None,
                 defaults: dict[str, Any] | None = None) -> dict[str, str]:
    """A flag for each field of ``settings`` declared with :func:`impasto.core.fields.setting`: its
    type, check, choices, default and help from the declaration.  ``given_only``: the flag's default
    is None (the settings' own default decides, and the help says it); ``prefix``: a method's own
    settings as ``--METHOD-FIELD`` under the method's heading, leaving out the ``taken`` names
    (common flags); ``defaults``: other defaults for this command (a clip's size).  Returns field name -> where the parsed value is (its destination)."""
    import typing

    hints = typing.get_type_hints(settings)
    found = {}
    field_flags = parser.__dict__.setdefault("field_flags", {})
    for field in declared(settings):
        kind = flag_type(hints[field.name])
        if kind is None or field.name in taken:
            continue
        meta = field.metadata
        if prefix is None:
            flag, dest = flag_name(field), destination(field)
            group = heading(parser, meta["group"]) if meta.get("group") else parser
            names = ([meta["short"]] if meta.get("short") else []) + [flag]
        else:
            flag, dest = f"--{prefix}-{field.name.replace('_', '-')}", f"{prefix}__{field.name}"
            group, names = heading(parser, f"{prefix}: its own settings"), [flag]
        default = (defaults or {}).get(field.name, default_of(field))
        said = (notes or {}).get(field.name) or meta.get("default_text")
        if said is None:
            said = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        quiet = kind is bool and not given_only and prefix is None  # a switch: off unless given
        text = meta["help"] if quiet or said is None else f"{meta['help']} (default {said})"
        common: dict[str, Any] = dict(dest=dest, help=text.replace("%", "%%"),
                                      default=None if given_only or prefix else default)
        if kind is bool:
            if prefix is not None or given_only:
                group.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
            else:
                group.add_argument(*names, action="store_false" if meta.get("negate") else "store_true", **common)
        else:
            extra = dict(type=value_type(field, hints[field.name]), choices=meta.get("choices"),
                         metavar=meta.get("metavar") or (None if meta.get("choices") else
                                                         field.name.upper() if prefix else None))
            if meta.get("const") is not None:
                extra.update(nargs="?", const=meta["const"])
            group.add_argument(*names, **{k: v for k, v in extra.items() if v is not None}, **common)
            for old in meta.get("old", ()):
                group.add_argument(old, action=OldName, new=flag, dest=dest, type=extra["type"])
        found[field.name] = dest
        if prefix is None:  # what an error naming the setting points to (a method's own: by its dest)
            field_flags[field.name] = flag
    return found


def settings_from(settings: type, args: argparse.Namespace, **given: Any):
    """The settings dataclass from the flags parsed (:func:`add_settings`'s), the flags not given
    (None where the flag's default is None) left at the dataclass's defaults; ``given`` on top."""
    values = {}
    for field in declared(settings):
        value = getattr(args, destination(field), None)
        if value is not None:
            values[field.name] = value
    return settings(**{**values, **given})


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """--cluster and --workers, from the job's fields."""
    from impasto.jobs.image_job import ImageJob

    add_settings(parser, ImageJob)


#: Library parameters whose flags are not their settings' own (the others: :func:`add_settings`).
PARAMETER_FLAGS = {"weights": "--style-blend", "masks": "--mask", "mask_box": "--mask-box", "model": "--model",
                   "styles": "STYLE", "method": "--method"}


def options_from(method, args: argparse.Namespace):
    """The method's own settings from the flags given (the rest: the dataclass's defaults; the
    shared options in them are set from the request by the method)."""
    import dataclasses

    if method.options is None:
        return None
    shared = getattr(args, "shared_settings", {})
    given = {}
    for field in dataclasses.fields(method.options):
        value = getattr(args, f"{method.name}__{field.name}", None)  # its generated flag
        if value is None and field.name in shared:  # a common flag (--iterations)
            value = getattr(args, shared[field.name], None)
        if value is not None:
            given[field.name] = value
    return method.options(**given)


def masks_from(masks: list | None, content: Callable[[], Any] | None) -> list | None:
    """The --mask files as they are and each --mask-box cut from the content photo (``content``
    reads it as a ``(1, 3, H, W)`` tensor; None where there is no single photo to cut from)."""
    if not masks or not any(isinstance(mask, MaskBox) for mask in masks):
        return masks
    if content is None:
        raise ImpastoError("a box is cut from one content photo, not from a folder of photos", parameter="mask_box")
    from impasto.core.masks import grabcut_mask

    photo = content()
    return [grabcut_mask(photo, tuple(mask)) if isinstance(mask, MaskBox) else mask for mask in masks]


def request_from(args: argparse.Namespace, method, model: Path | None, content: Callable[[], Any] | None = None):
    """The flags as a :class:`impasto.methods.Request`; ``content`` reads the content photo that
    --mask-box boxes are cut from."""
    from impasto.methods import Request

    return settings_from(Request, args, masks=masks_from(args.mask, content), model=model,
                         options=options_from(method, args))


def flag_for(parser: argparse.ArgumentParser, command: str, parameter: str | None) -> str | None:
    """The command's flag for a library parameter an error names: a setting's own flag, the few
    others listed, else the option whose destination is the parameter."""
    if not parameter:
        return None
    if parameter in PARAMETER_FLAGS:
        return PARAMETER_FLAGS[parameter]
    subcommands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    sub = subcommands.choices.get(command) if subcommands is not None else None
    if parameter in getattr(sub, "field_flags", {}):
        return sub.field_flags[parameter]
    for action in (sub._actions if sub is not None else []):
        if action.dest == parameter and action.option_strings:
            return max(action.option_strings, key=len)
    return None


def fast_defaults(light: bool) -> dict[str, str]:
    """The feed-forward training's loss defaults, for its help (none in the light parser: no PyTorch)."""
    if light:
        return dict.fromkeys(("style_weight", "shift_weight", "shift_share"), "impasto.networks.fast's")
    from impasto.networks import fast_training

    weights = ", ".join(f"{weight:g} with {loss}" for loss, weight in fast_training.STYLE_WEIGHTS.items())
    return {"style_weight": weights, "shift_weight": f"{fast_training.DEFAULT_SHIFT_WEIGHT:g}",
            "shift_share": f"{fast_training.DEFAULT_SHIFT_SHARE:g}"}


def add_training_options(parser: argparse.ArgumentParser, crop: int, recipe: dict[str, Any],
                          adaptation: dict[str, Any] | None = None) -> None:
    """The options every training command shares, with the kind's ``recipe`` (steps, batch size,
    learning rate and its decay: :data:`impasto.networks.training_tasks.RECIPES`).  ``adaptation``:
    other defaults for steps, batch size and learning rate with ``--from-arbitrary`` (a few minutes of
    training, not hours)."""
    parser.add_argument("-o", "--output", required=True,
                        help="the model file to write (.pt), or a bare NAME: one of your models (`impasto models`), "
                             "used by that name afterwards")
    group = parser.add_argument_group("training")
    group.add_argument("--crop", type=positive_int, default=crop, help="training crop size in px (default %(default)s)")
    group.add_argument("--shorter-side", type=positive_int, default=None,
                       help="images are scaled to this shorter side before cropping (default: 2 x crop)")
    defaults = {name: recipe[name] for name in ("batch_size", "steps", "lr")}
    parser.set_defaults(training_defaults=defaults, adaptation_defaults=adaptation)

    def default(name: str) -> str:
        return f"(default {defaults[name]:g}" + (f"; with --from-arbitrary {adaptation[name]:g})" if adaptation else ")")

    group.add_argument("--batch-size", type=positive_int, default=None, help=default("batch_size"))
    group.add_argument("--steps", type=positive_int, default=None, help=default("steps"))
    group.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate " + default("lr"))
    group.add_argument("--lr-decay", type=non_negative_float, default=recipe["lr_decay"],
                       help="lr / (1 + decay * step) (default %(default)s)")
    group.add_argument("--seed", type=seed_value, default=0, help="(default %(default)s)")
    group.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="autocast for the networks (default: bf16 where the hardware has it)")
    group.add_argument("--checkpoint-every", type=positive_int, default=500, metavar="N",
                       help="write OUTPUT.ckpt and refresh OUTPUT every N steps (default %(default)s)")
    group.add_argument("--preview-every", type=positive_int, default=None, metavar="N",
                       help="write a preview image every N steps (default: at each checkpoint)")
    group.add_argument("--previews", default=None, metavar="DIR",
                       help="folder for previews (default: OUTPUT's name + '-previews')")
    group.add_argument("--resume", action="store_true", help="continue from OUTPUT.ckpt")
    group.add_argument("--init", default=None, metavar="MODEL",
                       help="start from this model's weights (file or shipped name; fresh optimiser); "
                            "its training record becomes the new model's lineage")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the network (pays off on GPUs for long runs; the first step "
                            "compiles, which takes a while; see docs/figures.md)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_dream_parser(commands, light: bool = False) -> None:
    dream = commands.add_parser(
        "dream", help="DeepDream: grow the patterns a layer of the network sees (gradient ascent)",
        description="impasto dream IMAGE -o OUT [--layers relu4_2] [--guide GUIDE]: shallow layers paint "
                    "strokes and ripples, deep ones eyes, arches and animals; --guide grows a guide image's "
                    "motifs instead. Ctrl-C writes the image as it is.")
    if light:
        return
    from impasto.engines.dream import DreamSettings
    from impasto.core.images import DEFAULT_MAX_PIXELS

    dream.add_argument("image", metavar="IMAGE", help="the photo to dream on")
    dream.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tif)")
    add_settings(dream, DreamSettings)
    dream.add_argument("--guide", default=None, help="an image (or built-in painting's name) whose motifs the dream grows")
    dream.add_argument("--mask", action="append", default=None, metavar="MASK",
                       help="dream only where the mask is white (repeat to add areas)")
    dream.add_argument("-s", "--size", type=positive_int, default=None, help="long side of the output (default: the photo's)")
    dream.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                       help="refuse input images with more pixels than this (default %(default)s)")
    dream.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    dream.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="autocast for the network (default: bf16 where the hardware has it)")
    dream.add_argument("--overwrite-input", action="store_true", help="allow OUTPUT to be one of the inputs")
    dream.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
