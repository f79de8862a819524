"""The option groups the commands share, and the parsed flags as the library's settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from impasto.cli.flags import MaskBox, OldName, float_list, mask_box, layer_weights, name_list, non_negative_float, positive_float, positive_int, seed_value
from impasto.core.errors import ImpastoError


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """The shared options (defaults from :class:`impasto.methods.Request`), the iterative methods'
    common ones (default None: the method's settings dataclass decides, see `impasto methods`), and
    each method's other settings, generated (:func:`add_method_options`)."""
    before = {action.dest for action in parser._actions}
    add_shared_options(parser)
    engine = {action.dest for action in parser._actions} - before
    parser.set_defaults(engine_flags=frozenset(engine))  # what options_from may read for a method's field
    add_method_options(parser, engine)


def flag_type(hint: object) -> type | None:
    """The argparse type of a settings field (``X | None`` -> X), or None for values no flag holds."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        hint = kinds[0] if len(kinds) == 1 else None
    return hint if hint in (bool, int, float, str) else None


def add_method_options(parser: argparse.ArgumentParser, taken: set[str]) -> None:
    """Each method's own settings that no flag above sets, generated from its dataclass (the field's
    type, its default and the help in its metadata) as ``--METHOD-FIELD``: a new method's settings
    reach the command line without an edit here."""
    import dataclasses
    import typing

    from impasto import methods

    for name in methods.names():
        options = methods.get(name).options
        if options is None:
            continue
        hints = typing.get_type_hints(options)
        group = None
        for field in dataclasses.fields(options):
            kind = flag_type(hints[field.name])
            if FIELD_FLAGS.get(field.name, field.name) in taken or kind is None:
                continue
            group = group or parser.add_argument_group(f"{name}: its own settings")
            words = field.metadata.get("help", field.name.replace("_", " "))
            flag = f"--{name}-{field.name.replace('_', '-')}"
            common = dict(dest=f"{name}__{field.name}", default=None, help=f"{words} (default {field.default})")
            if kind is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
            else:
                group.add_argument(flag, type=kind, metavar=field.name.upper(), **common)


def add_shared_options(parser: argparse.ArgumentParser) -> None:
    from impasto.core.color import METHODS as COLOR_METHODS
    from impasto.core.losses import STYLE_LOSSES
    from impasto import methods
    from impasto.methods import Request
    from impasto.engines.optimize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OPTIMIZERS, PRECISIONS, StyleSettings

    r, d = Request(), StyleSettings()
    own = {name: methods.get(name) for name in methods.names()}
    iterative = {name: m.options().iterations for name, m in own.items()
                 if m.options is not None and "iterations" in m.options.__dataclass_fields__}
    strengths: dict[float, list[str]] = {}
    for name, method in own.items():
        strengths.setdefault(method.default_strength, []).append(name)
    size = parser.add_argument_group("size")
    size.add_argument("-s", "--size", type=positive_int, default=r.size, help="long side of the output in pixels (default %(default)s)")
    size.add_argument("--style-scale", type=positive_float, default=r.style_scale,
                      help="style image size relative to the output (default %(default)s; smaller = finer brushwork)")
    size.add_argument("--stroke-scale", type=positive_float, default=r.stroke_scale,
                      help="one-pass methods: brushwork size relative to the picture, as a 512 px painting's times "
                           "this (painted at a working size, brought to the output size along the photo's edges; "
                           "default: a 512 px painting's brushwork at any larger size)")
    size.add_argument("--tile-size", type=positive_int, default=None,
                      help=f"optimize: levels larger than this are optimised in overlapping tiles, to bound memory (default {d.tile_size})")
    size.add_argument("--tile-overlap", type=positive_int, default=None, help=f"(default {d.tile_overlap})")
    size.add_argument("--max-pixels", type=positive_int, default=r.max_pixels,
                      help="refuse input images with more pixels than this (default %(default)s)")

    opt = parser.add_argument_group("iterative methods (optimize, neighbours)")
    opt.add_argument("-n", "--iterations", type=positive_int, default=None,
                     help="iterations at the output size; coarser levels run more (default: the method's own: "
                          + ", ".join(f"{name} {count}" for name, count in iterative.items()) + ")")
    opt.add_argument("--pyramid", type=positive_int, default=None, metavar="LEVELS",
                     help="optimize: coarse-to-fine levels, sizes growing by sqrt(2) (default: as many as keep the coarsest "
                          "at least --pyramid-min px; 1 = optimise at the output size only)")
    opt.add_argument("--pyramid-min", type=positive_int, default=None, help="smallest level (default: the method's own)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                     help="optimize (default lbfgs, with a line search; lbfgs-device: no line search, steps "
                          "accepted on the device and the loss read every --read-every iterations, for GPUs; "
                          "adam with --style-loss swd)")
    opt.add_argument("--read-every", type=positive_int, default=None, metavar="N",
                     help="lbfgs-device: read the loss back (progress, convergence) every N iterations "
                          "(default: 1 on CPUs, 10 on GPUs)")
    opt.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: per optimizer)")
    opt.add_argument("--tolerance", type=non_negative_float, default=None,
                     help=f"stop when the relative loss change stays below this for --patience iterations (0 = never; default {d.tolerance})")
    opt.add_argument("--patience", type=positive_int, default=None, help=f"(default {d.patience})")
    opt.add_argument("--init", default=None,
                     help=f"optimize: start from 'content', 'noise' or an image file (default {d.init})")
    opt.add_argument("--seed", type=seed_value, default=None, help=f"optimize: seed for noise init (default {d.seed})")

    loss = parser.add_argument_group("losses (optimize)")
    loss.add_argument("--content-weight", type=non_negative_float, default=None, help=f"alpha (default {d.content_weight})")
    loss.add_argument("--style-weight", type=non_negative_float, default=None,
                      help="beta (default: the style loss's own: "
                           + ", ".join(f"{name} {loss.default_weight:g}" for name, loss in STYLE_LOSSES.items()) + ")")
    loss.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=None,
                      help=f"gram (Gatys), mean_std (lighter), swd (sliced Wasserstein; sharper textures); "
                           f"default {d.style_loss}")
    loss.add_argument("--tv-weight", type=non_negative_float, default=None, help=f"total variation (default {d.tv_weight})")
    loss.add_argument("--content-layers", type=name_list, default=None,
                      help="comma-separated (default %s)" % ",".join(DEFAULT_CONTENT_LAYERS))
    loss.add_argument("--content-layer-weights", type=float_list, default=None, help="comma-separated, one per content layer")
    loss.add_argument("--style-layers", type=name_list, default=None,
                      help="comma-separated (default %s)" % ",".join(DEFAULT_STYLE_LAYERS))
    loss.add_argument("--style-layer-weights", type=float_list, default=None, help="comma-separated, one per style layer")
    loss.add_argument("--ema", type=non_negative_float, default=None,
                      help="output the moving average of the iterates with this decay (first-order optimisers; "
                           "default 0.9 for adam, off otherwise)")

    control = parser.add_argument_group("artistic control (every method)")
    control.add_argument("--strength", type=non_negative_float, default=None,
                         help="0..1: 0 = the photo, 1 = the strongest style (default: the method's own: "
                              + ", ".join(f"{'/'.join(names)} {value:g}" for value, names in strengths.items())
                              + "; optimize's on a log scale of --style-weight)")
    control.add_argument("--alpha", action=OldName, new="--strength", dest="strength", type=non_negative_float)
    control.add_argument("--style-blend", type=float_list, default=None,
                         help="comma-separated weights of the styles (normalised; default equal; a multi-style "
                              "model: its styles, default its first)")
    control.add_argument("--style-mix", action=OldName, new="--style-blend", dest="style_blend", type=float_list)
    control.add_argument("--mask", action="append", default=None, metavar="MASK",
                         help="grayscale image: where the style applies (white) and the photo stays (black); "
                              "repeat once per STYLE to give each style its own region")
    control.add_argument("--mask-box", action="append", dest="mask", type=mask_box, metavar="X0,Y0,X1,Y1",
                         help="a mask cut from the content photo: the subject inside this box (in the photo's "
                              "pixels; a clip's frame) gets the style, the rest stays the photo; like --mask, "
                              "repeat once per STYLE, in order with the --mask files")
    control.add_argument("--preserve-color", choices=COLOR_METHODS, default=r.preserve_color,
                         help="keep the photo's colours: luminance (the style's brightness matched to the "
                              "photo's, then brightness only transferred) or histogram (recolour the style to the "
                              "photo's palette first)")

    net = parser.add_argument_group("network and hardware")
    net.add_argument("--device", default=r.device, help="auto, cpu, cuda, cuda:N or mps (default %(default)s)")
    net.add_argument("--precision", choices=PRECISIONS, default=r.precision,
                     help="backbone arithmetic: auto = bf16 where the hardware has it, else fp32 (default %(default)s)")
    net.add_argument("--compile", action="store_true",
                     help="fast models and AdaIN: compile the networks for this machine (once per image size; then "
                          "faster, see docs/figures.md): for clips and folders of same-size photos; optimize: "
                          "compile the backbone once per pyramid level (slow to compile on a CPU; for GPUs)")
    net.add_argument("--batch", type=positive_int, default=None, metavar="N",
                     help="fast models and AdaIN: photos of one size (folders) or a clip's frames per network "
                          "call (default: 8 on a GPU, 1 on a CPU)")
    net.add_argument("--backbone", choices=("vgg19", "vgg16"), default=None, help=f"optimize (default {d.backbone})")
    net.add_argument("--weights", default=None,
                     help="optimize: 'caffe' (original VGG-19, offline), 'torchvision' (hub cache/download) or a .pth "
                          f"file (default {d.backbone_weights})")
    net.add_argument("--pooling", choices=("max", "avg"), default=None, help=f"optimize (default {d.pooling})")
    net.add_argument("--padding", choices=("zeros", "replicate"), default=None,
                     help=f"optimize: padding of the first convolution; replicate avoids edge artefacts (default {d.padding})")


#: Flags whose name differs from the settings field they set.
FIELD_FLAGS = {"learning_rate": "lr", "backbone_weights": "weights"}


#: Library parameters -> the flags that set them, for error messages.
PARAMETER_FLAGS = {"style_blend": "--style-blend", "weights": "--style-blend", "strength": "--strength", "masks": "--mask", "mask_box": "--mask-box", "size": "--size",
                    "style_scale": "--style-scale", "stroke_scale": "--stroke-scale", "max_pixels": "--max-pixels", "model": "--model",
                    "preserve_color": "--preserve-color", "styles": "STYLE", "method": "--method",
                    "iterations": "--iterations", "tolerance": "--tolerance", "patience": "--patience",
                    "pyramid_min": "--pyramid-min", "layers": "--layers", "octaves": "--octaves",
                    "octave_scale": "--octave-scale", "step_size": "--step-size", "jitter": "--jitter", "tile": "--tile-size", "prune": "--prune",
                    "batch": "--batch"}


def options_from(method, args: argparse.Namespace):
    """The method's own settings from the flags given (the rest: the dataclass's defaults; the
    shared options in them are set from the request by the method)."""
    import dataclasses

    if method.options is None:
        return None
    given = {}
    for field in dataclasses.fields(method.options):
        value = getattr(args, f"{method.name}__{field.name}", None)  # its generated flag
        shared = FIELD_FLAGS.get(field.name, field.name)
        if value is None and shared in getattr(args, "engine_flags", ()):  # a common flag (--iterations)
            value = getattr(args, shared, None)
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

    return Request(size=args.size, style_scale=args.style_scale, style_blend=args.style_blend,
                   masks=masks_from(args.mask, content), preserve_color=args.preserve_color, strength=args.strength,
                   model=model, device=args.device, precision=args.precision, max_pixels=args.max_pixels,
                   compile=args.compile, batch=getattr(args, "batch", None), stroke_scale=args.stroke_scale,
                   options=options_from(method, args))


def flag_for(parser: argparse.ArgumentParser, command: str, parameter: str | None) -> str | None:
    """The command's flag for a library parameter an error names: the few whose names differ are
    listed; the others are the option whose destination is the parameter (``style_weight``:
    ``--style-weight``)."""
    if not parameter:
        return None
    if parameter in PARAMETER_FLAGS:
        return PARAMETER_FLAGS[parameter]
    subcommands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    sub = subcommands.choices.get(command) if subcommands is not None else None
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


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (pip install 'impasto[cluster]')")
    group.add_argument("--cluster", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="folders and clips on a Ray cluster: alone, a local Ray with this machine's cores; "
                            "with an address (or RAY_ADDRESS), join that cluster (files on shared storage)")
    group.add_argument("--workers", type=positive_int, default=None,
                       help="workers to start (default: one per core, or per GPU on CUDA)")


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

    d = DreamSettings()
    dream.add_argument("image", metavar="IMAGE", help="the photo to dream on")
    dream.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tif)")
    dream.add_argument("--layers", type=layer_weights, default=None, metavar="NAME[:W],...",
                       help="layers whose activations grow, with weights (default "
                            f"{','.join(f'{k}:{v:g}' for k, v in d.layers.items())}; names: `impasto layers`)")
    dream.add_argument("--octaves", type=positive_int, default=d.octaves, help="scales, coarse to fine (default %(default)s)")
    dream.add_argument("--octave-scale", type=positive_float, default=d.octave_scale,
                       help="size ratio between octaves, > 1 (default %(default)s)")
    dream.add_argument("-n", "--iterations", type=positive_int, default=d.iterations,
                       help="steps per octave (default %(default)s)")
    dream.add_argument("--step-size", type=non_negative_float, default=d.step_size,
                       help="how far each step moves the pixels (default %(default)s)")
    dream.add_argument("--strength", action=OldName, new="--step-size", dest="step_size", type=non_negative_float)
    dream.add_argument("--jitter", type=positive_int, default=d.jitter, help="px of random shift per step (default %(default)s)")
    dream.add_argument("--guide", default=None, help="an image (or built-in painting's name) whose motifs the dream grows")
    dream.add_argument("--mask", action="append", default=None, metavar="MASK",
                       help="dream only where the mask is white (repeat to add areas)")
    dream.add_argument("-s", "--size", type=positive_int, default=None, help="long side of the output (default: the photo's)")
    dream.add_argument("--tile-size", type=positive_int, default=d.tile,
                       help="octaves larger than this are worked in tiles, to bound memory (default %(default)s)")
    dream.add_argument("--seed", type=seed_value, default=d.seed, help="seed of the jitter (default %(default)s)")
    dream.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                       help="refuse input images with more pixels than this (default %(default)s)")
    dream.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    dream.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="autocast for the network (default: bf16 where the hardware has it)")
    dream.add_argument("--overwrite-input", action="store_true", help="allow OUTPUT to be one of the inputs")
    dream.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
