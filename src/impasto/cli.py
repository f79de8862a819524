"""The ``impasto`` command: a thin layer over the API.

User mistakes print one line (``impasto: error: FILE: problem``) and exit with status 2;
Ctrl-C writes the current image and exits with 130.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .errors import ImpastoError


EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report a process ended by it
_terminated: list[int] = []


def _on_terminate(signum: int, frame: object) -> None:
    """SIGTERM (kill, systemd, container stops) is handled like Ctrl-C: finished work is saved."""
    _terminated.append(signum)
    raise KeyboardInterrupt


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


MAX_SEED = 2**63 - 1  # what torch's generators take


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is 0 to {MAX_SEED}, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def _share(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"a share is in (0, 1], got {text}")
    return value


def _add_shift_share(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--shift-share", type=_share, default=None, metavar="F",
                        help="share of each batch that the shift-consistency pass paints again (its extra cost; "
                             f"default {default})")


def _name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _layer_weights(text: str) -> dict[str, float]:
    """``relu4_2`` or ``relu3_1:0.5,relu4_2:1``: layer names, each with an optional weight (default 1)."""
    weights = {}
    for part in _name_list(text):
        name, _, weight = part.partition(":")
        weights[name.strip()] = _non_negative_float(weight) if weight else 1.0
    if not weights:
        raise argparse.ArgumentTypeError("name at least one layer (see `impasto layers`)")
    return weights


def _float_list(text: str) -> list[float]:
    return [_non_negative_float(part) for part in _name_list(text)]


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    """The shared options (defaults from :class:`impasto.methods.Request`), the iterative methods'
    common ones (default None: the method's settings dataclass decides, see `impasto methods`), and
    each method's other settings, generated (:func:`_add_method_options`)."""
    before = {action.dest for action in parser._actions}
    _add_shared_options(parser)
    engine = {action.dest for action in parser._actions} - before
    parser.set_defaults(engine_flags=frozenset(engine))  # what _options may read for a method's field
    _add_method_options(parser, engine)


def _flag_type(hint: object) -> type | None:
    """The argparse type of a settings field (``X | None`` -> X), or None for values no flag holds."""
    import types
    import typing

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        hint = kinds[0] if len(kinds) == 1 else None
    return hint if hint in (bool, int, float, str) else None


def _add_method_options(parser: argparse.ArgumentParser, taken: set[str]) -> None:
    """Each method's own settings that no flag above sets, generated from its dataclass (the field's
    type, its default and the help in its metadata) as ``--METHOD-FIELD``: a new method's settings
    reach the command line without an edit here."""
    import dataclasses
    import typing

    from . import methods

    for name in methods.names():
        options = methods.get(name).options
        if options is None:
            continue
        hints = typing.get_type_hints(options)
        group = None
        for field in dataclasses.fields(options):
            kind = _flag_type(hints[field.name])
            if _FIELD_FLAGS.get(field.name, field.name) in taken or kind is None:
                continue
            group = group or parser.add_argument_group(f"{name}: its own settings")
            words = field.metadata.get("help", field.name.replace("_", " "))
            flag = f"--{name}-{field.name.replace('_', '-')}"
            common = dict(dest=f"{name}__{field.name}", default=None, help=f"{words} (default {field.default})")
            if kind is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
            else:
                group.add_argument(flag, type=kind, metavar=field.name.upper(), **common)


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    from .color import METHODS as COLOR_METHODS
    from .losses import STYLE_LOSSES
    from . import methods
    from .methods import Request
    from .optimize import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, OPTIMIZERS, PRECISIONS, StyleSettings

    r, d = Request(), StyleSettings()
    own = {name: methods.get(name) for name in methods.names()}
    iterative = {name: m.options().iterations for name, m in own.items()
                 if m.options is not None and "iterations" in m.options.__dataclass_fields__}
    strengths: dict[float, list[str]] = {}
    for name, method in own.items():
        strengths.setdefault(method.default_strength, []).append(name)
    size = parser.add_argument_group("size")
    size.add_argument("-s", "--size", type=_positive_int, default=r.size, help="long side of the output in pixels (default %(default)s)")
    size.add_argument("--style-scale", type=_positive_float, default=r.style_scale,
                      help="style image size relative to the output (default %(default)s; smaller = finer brushwork)")
    size.add_argument("--tile-size", type=_positive_int, default=None,
                      help=f"optimize: levels larger than this are optimised in overlapping tiles, to bound memory (default {d.tile_size})")
    size.add_argument("--tile-overlap", type=_positive_int, default=None, help=f"(default {d.tile_overlap})")
    size.add_argument("--max-pixels", type=_positive_int, default=r.max_pixels,
                      help="refuse input images with more pixels than this (default %(default)s)")

    opt = parser.add_argument_group("iterative methods (optimize, neighbours)")
    opt.add_argument("-n", "--iterations", type=_positive_int, default=None,
                     help="iterations at the output size; coarser levels run more (default: the method's own: "
                          + ", ".join(f"{name} {count}" for name, count in iterative.items()) + ")")
    opt.add_argument("--pyramid", type=_positive_int, default=None, metavar="LEVELS",
                     help="optimize: coarse-to-fine levels, sizes growing by sqrt(2) (default: as many as keep the coarsest "
                          "at least --pyramid-min px; 1 = optimise at the output size only)")
    opt.add_argument("--pyramid-min", type=_positive_int, default=None, help="smallest level (default: the method's own)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                     help="optimize (default lbfgs, with a line search; lbfgs-device: no line search, steps "
                          "accepted on the device and the loss read every --read-every iterations, for GPUs; "
                          "adam with --style-loss swd)")
    opt.add_argument("--read-every", type=_positive_int, default=None, metavar="N",
                     help="lbfgs-device: read the loss back (progress, convergence) every N iterations "
                          "(default: 1 on CPUs, 10 on GPUs)")
    opt.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: per optimizer)")
    opt.add_argument("--tolerance", type=_non_negative_float, default=None,
                     help=f"stop when the relative loss change stays below this for --patience iterations (0 = never; default {d.tolerance})")
    opt.add_argument("--patience", type=_positive_int, default=None, help=f"(default {d.patience})")
    opt.add_argument("--init", default=None,
                     help=f"optimize: start from 'content', 'noise' or an image file (default {d.init})")
    opt.add_argument("--seed", type=_seed, default=None, help=f"optimize: seed for noise init (default {d.seed})")

    loss = parser.add_argument_group("losses (optimize)")
    loss.add_argument("--content-weight", type=_non_negative_float, default=None, help=f"alpha (default {d.content_weight})")
    loss.add_argument("--style-weight", type=_non_negative_float, default=None,
                      help="beta (default: the style loss's own: "
                           + ", ".join(f"{name} {loss.default_weight:g}" for name, loss in STYLE_LOSSES.items()) + ")")
    loss.add_argument("--style-loss", choices=tuple(STYLE_LOSSES), default=None,
                      help=f"gram (Gatys), mean_std (lighter), swd (sliced Wasserstein; sharper textures); "
                           f"default {d.style_loss}")
    loss.add_argument("--tv-weight", type=_non_negative_float, default=None, help=f"total variation (default {d.tv_weight})")
    loss.add_argument("--content-layers", type=_name_list, default=None,
                      help="comma-separated (default %s)" % ",".join(DEFAULT_CONTENT_LAYERS))
    loss.add_argument("--content-layer-weights", type=_float_list, default=None, help="comma-separated, one per content layer")
    loss.add_argument("--style-layers", type=_name_list, default=None,
                      help="comma-separated (default %s)" % ",".join(DEFAULT_STYLE_LAYERS))
    loss.add_argument("--style-layer-weights", type=_float_list, default=None, help="comma-separated, one per style layer")
    loss.add_argument("--ema", type=_non_negative_float, default=None,
                      help="output the moving average of the iterates with this decay (first-order optimisers; "
                           "default 0.9 for adam, off otherwise)")

    control = parser.add_argument_group("artistic control (every method)")
    control.add_argument("--strength", type=_non_negative_float, default=None,
                         help="0..1: 0 = the photo, 1 = the strongest style (default: the method's own: "
                              + ", ".join(f"{'/'.join(names)} {value:g}" for value, names in strengths.items())
                              + "; optimize's on a log scale of --style-weight)")
    control.add_argument("--alpha", type=_non_negative_float, default=None,
                         help="the same as --strength (AdaIN's name for it)")
    control.add_argument("--style-blend", type=_float_list, default=None,
                         help="comma-separated weights of the styles (normalised; default equal; a multi-style "
                              "model: its styles, default its first)")
    control.add_argument("--style-mix", type=_float_list, default=None, help="the same as --style-blend")
    control.add_argument("--mask", action="append", default=None, metavar="MASK",
                         help="grayscale image: where the style applies (white) and the photo stays (black); "
                              "repeat once per STYLE to give each style its own region")
    control.add_argument("--preserve-color", choices=COLOR_METHODS, default=r.preserve_color,
                         help="keep the photo's colours: luminance (the style's brightness matched to the "
                              "photo's, then brightness only transferred) or histogram (recolour the style to the "
                              "photo's palette first)")

    net = parser.add_argument_group("network and hardware")
    net.add_argument("--device", default=r.device, help="auto, cpu, cuda, cuda:N or mps (default %(default)s)")
    net.add_argument("--precision", choices=PRECISIONS, default=r.precision,
                     help="backbone arithmetic: auto = bf16 where the hardware has it, else fp32 (default %(default)s)")
    net.add_argument("--compile", action="store_true",
                     help="fast models and AdaIN: compile the networks for this machine (seconds, once per image "
                          "size; then 2-3x faster on a CPU): for clips and folders of same-size photos; optimize: "
                          "compile the backbone once per pyramid level (minutes on a CPU; for GPUs)")
    net.add_argument("--batch", type=_positive_int, default=None, metavar="N",
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
_FIELD_FLAGS = {"learning_rate": "lr", "backbone_weights": "weights"}
#: Library parameters -> the flags that set them, for error messages.
_PARAMETER_FLAGS = {"weights": "--style-blend", "strength": "--strength", "masks": "--mask", "size": "--size",
                    "style_scale": "--style-scale", "max_pixels": "--max-pixels", "model": "--model",
                    "preserve_color": "--preserve-color", "styles": "STYLE", "method": "--method",
                    "iterations": "--iterations", "tolerance": "--tolerance", "patience": "--patience",
                    "pyramid_min": "--pyramid-min", "layers": "--layers", "octaves": "--octaves",
                    "octave_scale": "--octave-scale", "jitter": "--jitter", "tile": "--tile-size", "prune": "--prune",
                    "batch": "--batch"}


def _one_of(args: argparse.Namespace, first: str, second: str) -> object:
    a, b = getattr(args, first, None), getattr(args, second, None)
    if a is not None and b is not None:
        raise ImpastoError(f"give --{first.replace('_', '-')} or --{second.replace('_', '-')}, not both")
    return a if a is not None else b


def _options(method, args: argparse.Namespace):
    """The method's own settings from the flags given (the rest: the dataclass's defaults; the
    shared options in them are set from the request by the method)."""
    import dataclasses

    if method.options is None:
        return None
    given = {}
    for field in dataclasses.fields(method.options):
        value = getattr(args, f"{method.name}__{field.name}", None)  # its generated flag
        shared = _FIELD_FLAGS.get(field.name, field.name)
        if value is None and shared in getattr(args, "engine_flags", ()):  # a common flag (--iterations)
            value = getattr(args, shared, None)
        if value is not None:
            given[field.name] = value
    return method.options(**given)


def _request(args: argparse.Namespace, method, model: Path | None):
    from .methods import Request

    return Request(size=args.size, style_scale=args.style_scale, weights=_one_of(args, "style_blend", "style_mix"),
                   masks=args.mask, preserve_color=args.preserve_color, strength=_one_of(args, "strength", "alpha"),
                   model=model, device=args.device, precision=args.precision, max_pixels=args.max_pixels,
                   compile=args.compile, batch=getattr(args, "batch", None),
                   options=_options(method, args))


def _flag_for(parser: argparse.ArgumentParser, command: str, parameter: str | None) -> str | None:
    """The command's flag for a library parameter an error names: the few whose names differ are
    listed; the others are the option whose destination is the parameter (``style_weight``:
    ``--style-weight``)."""
    if not parameter:
        return None
    if parameter in _PARAMETER_FLAGS:
        return _PARAMETER_FLAGS[parameter]
    subcommands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    sub = subcommands.choices.get(command) if subcommands is not None else None
    for action in (sub._actions if sub is not None else []):
        if action.dest == parameter and action.option_strings:
            return max(action.option_strings, key=len)
    return None


def _fast_defaults(light: bool) -> dict[str, str]:
    """The feed-forward training's loss defaults, for its help (none in the light parser: no PyTorch)."""
    if light:
        return dict.fromkeys(("style_weight", "shift_weight", "shift_share"), "impasto.fast's")
    from . import fast

    weights = ", ".join(f"{weight:g} with {loss}" for loss, weight in fast.STYLE_WEIGHTS.items())
    return {"style_weight": weights, "shift_weight": f"{fast.DEFAULT_SHIFT_WEIGHT:g}",
            "shift_share": f"{fast.DEFAULT_SHIFT_SHARE:g}"}


def build_parser(light: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``light``: the commands without their options, for ``impasto``,
    ``--help`` and ``--version``, so that those start without importing PyTorch."""
    method_names = None
    if not light:
        from .methods import REGISTRY

        method_names = tuple(REGISTRY)
    parser = _Parser(prog="impasto", description="Neural style transfer: repaint a photo in the style of artworks.")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    stylize = commands.add_parser(
        "stylize", help="repaint a photo in the style of artworks (optimisation, a trained model, any-painting networks)",
        description="impasto stylize CONTENT STYLE... -o OUT             optimise the pixels (best quality)\n"
                    "impasto stylize --method arbitrary CONTENT STYLE... -o OUT   any painting, one pass of a small network\n"
                    "impasto stylize --method adain CONTENT STYLE... -o OUT   any style, one forward pass (AdaIN)\n"
                    "impasto stylize --method neighbours CONTENT STYLE... -o OUT   the style's own textures, no training\n"
                    "impasto stylize --model MODEL CONTENT... -o OUT      a trained feed-forward model\n"
                    "CONTENT may be a folder of photos (OUT is then a folder); see `impasto methods`",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    stylize.add_argument("inputs", metavar="CONTENT STYLE", nargs="+",
                         help="the photo (or a folder of photos), then the style image(s) or built-in paintings' "
                              "names (`impasto styles`; several are blended); "
                              "with a feed-forward --model, only photos and folders of photos")
    stylize.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tif = 16-bit), or folder")
    stylize.add_argument("--method", choices=method_names, default=None,
                         help="(default: optimize; the model's method when --model is given; see `impasto methods`)")
    stylize.add_argument("--model", default=None,
                         help="a trained model: a file, or the name of one that ships (see `impasto models`)")
    stylize.add_argument("--save-every", type=_positive_int, default=None, metavar="N",
                         help="also write OUTPUT_NNNN.ext every N iterations")
    stylize.add_argument("--overwrite-input", action="store_true", help="allow OUTPUT to be one of the inputs")
    stylize.add_argument("--record", action="store_true",
                         help="keep the result, its inputs, settings and command in the history the studio "
                              "shows (one image; IMPASTO_HISTORY or the user's data folder)")
    stylize.add_argument("--skip-existing", action="store_true",
                         help="batches: leave outputs that exist alone (to resume a stopped batch)")
    stylize.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    _add_cluster_options(stylize)
    if not light:
        _add_engine_options(stylize)

    demo = commands.add_parser("demo", help="stylize a bundled sample photo with a style impasto paints itself",
                               description="Offline demo: scikit-image's cat photo in a procedural brushstroke style.")
    demo.add_argument("-o", "--output", default="impasto-demo.png", help="(default %(default)s)")
    demo.add_argument("-s", "--size", type=_positive_int, default=512, help="(default %(default)s)")
    demo.add_argument("-n", "--iterations", type=_positive_int, default=50, help="(default %(default)s)")
    demo.add_argument("--device", default="auto")
    demo.add_argument("-q", "--quiet", action="store_true")

    commands.add_parser("methods", help="list the style-transfer methods, what each needs, and their own options")
    commands.add_parser("styles", help="list the built-in paintings (public domain): use a name as a STYLE")

    layers = commands.add_parser("layers", help="list the layer names of a backbone")
    layers.add_argument("--backbone", choices=("vgg19", "vgg16"), default="vgg19")

    models = commands.add_parser("models", help="list the trained models that ship with impasto")
    models.add_argument("--markdown", action="store_true", help="a provenance table (as in the package's PROVENANCE.md)")

    from .training_tasks import ADAPTATION
    from .training_tasks import default as task_default

    fast_default = _fast_defaults(light)

    train = commands.add_parser("train", help="train a network (feed-forward per style, or the AdaIN decoder)")
    kinds = train.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser, required=True)
    adain = kinds.add_parser("adain", help="train an AdaIN decoder on folders of photos and paintings")
    adain.add_argument("--content", required=True, metavar="DIR", help="folder of content photos")
    adain.add_argument("--style", required=True, metavar="DIR", help="folder of style images")
    adain.add_argument("--style-weight", type=_non_negative_float, default=task_default("adain", "style_weight"),
                       help="(default %(default)s)")
    adain.add_argument("--hold-out", type=_name_list, default=None, metavar="NAMES",
                       help="comma-separated style file names to keep out of training (for a held-out check)")
    adain.add_argument("--upsample", choices=("nearest", "bilinear"), default=task_default("adain", "upsample"),
                       help="decoder upsampling: nearest (the paper's) or bilinear (no 8 px grid on flat areas) "
                            "(default %(default)s)")
    adain.add_argument("--shift-weight", type=_non_negative_float, default=task_default("adain", "shift_weight"),
                       help="weight of the shift-consistency loss (as in train fast: the photo moved by a few "
                            "pixels must decode to the picture moved as much; default %(default)s)")
    _add_shift_share(adain, "1")
    _add_training_options(adain, crop=task_default("adain", "crop"), batch=8, lr=1e-4, lr_decay=5e-5, steps=10_000)

    arbitrary = kinds.add_parser("arbitrary", help="train the any-painting network (a style predictor and a "
                                                   "feed-forward network) on folders of photos and paintings")
    arbitrary.add_argument("--content", required=True, metavar="DIR", help="folder of content photos")
    arbitrary.add_argument("--style", required=True, metavar="DIR", help="folder of paintings")
    arbitrary.add_argument("--width", type=_positive_float, default=task_default("arbitrary", "width"),
                           help="channel multiplier of the feed-forward network (default %(default)s)")
    arbitrary.add_argument("--style-weight", type=_non_negative_float, default=task_default("arbitrary", "style_weight"),
                           help="style loss against content loss, both relative (default %(default)s)")
    arbitrary.add_argument("--style-loss", default=task_default("arbitrary", "style_loss"),
                           help="gram: Gram matrices; swd: the sliced Wasserstein distance between the feature "
                                "distributions, on fresh directions each step (default %(default)s)")
    arbitrary.add_argument("--shift-weight", type=_non_negative_float, default=task_default("arbitrary", "shift_weight"),
                           help="weight of the shift-consistency loss (default %(default)s)")
    _add_shift_share(arbitrary, "0.25")
    arbitrary.add_argument("--style-crop", type=_positive_int, default=task_default("arbitrary", "style_crop"),
                           help="painting crop size in px (default %(default)s)")
    arbitrary.add_argument("--style-shorter-side", type=_positive_int,
                           default=task_default("arbitrary", "style_shorter_side"),
                           help="paintings are scaled to this shorter side before cropping (default %(default)s)")
    arbitrary.add_argument("--procedural", type=_non_negative_int, default=task_default("arbitrary", "procedural"),
                           help="procedural brushstroke paintings added to the paintings (default %(default)s)")
    arbitrary.add_argument("--hold-out", type=_name_list, default=None, metavar="NAMES",
                           help="comma-separated painting file names to keep out of training (for a held-out check)")
    arbitrary.add_argument("--start-from", default=None, metavar="MODEL",
                           help="take the convolutions (and the starting norms) from a trained feed-forward model "
                                "of the same width (file or shipped name)")
    arbitrary.add_argument("--preview-image", default=None, metavar="IMAGE", help="photo to show in previews")
    _add_training_options(arbitrary, crop=task_default("arbitrary", "crop"), batch=4, lr=2e-4, lr_decay=0.0, steps=20_000)

    fast = kinds.add_parser("fast", help="train a feed-forward network for one style (or several: conditional norm)")
    fast.add_argument("--style", required=True, action="append", metavar="IMAGE",
                      help="style image; repeat for a multi-style network (blend them with stylize --style-mix)")
    fast.add_argument("--data", required=True, metavar="DIR", help="folder of content photos")
    fast.add_argument("--width", type=_positive_float, default=task_default("fast", "width"),
                      help="channel multiplier; 0.5 = a smaller, about 3x faster network (default %(default)s)")
    fast.add_argument("--style-size", type=_positive_int, default=None,
                      help="long side of the style image(s) (default: the --shorter-side)")
    fast.add_argument("--content-weight", type=_non_negative_float, default=task_default("fast", "content_weight"),
                      help="(default %(default)s)")
    fast.add_argument("--style-loss", default=task_default("fast", "style_loss"),
                      help="gram: Gram matrices; swd: the sliced Wasserstein distance between the feature "
                           "distributions, on fresh directions each step (default: gram; with --from-arbitrary "
                           "the loss and weight the arbitrary network trained with)")
    fast.add_argument("--style-weight", type=_non_negative_float, default=None,
                      help="weight of the style loss against the content loss; both are relative (each layer "
                           "divided by its target's scale), so it means the same for any painting "
                           f"(default {fast_default['style_weight']}; with --from-arbitrary and no --style-loss: "
                           "the arbitrary network's own)")
    fast.add_argument("--network-output", choices=("direct", "residual"), default=task_default("fast", "network_output"),
                      help="direct: the network paints every pixel (default); residual: it adds a change to "
                           "the photo (impasto 0.2's networks)")
    fast.add_argument("--upsample", choices=("nearest", "bilinear"), default=task_default("fast", "upsample"),
                      help="the network's two 2x upsamplings (default %(default)s)")
    fast.add_argument("--tv-weight", type=_non_negative_float, default=task_default("fast", "tv_weight"),
                      help="(default %(default)s)")
    fast.add_argument("--shift-weight", type=_non_negative_float, default=None,
                      help="weight of the shift-consistency loss: the painting of a photo moved by a few pixels "
                           "must be the painting moved as much (no lattice tied to the pixel grid, steadier "
                           f"video; 0: off; default {fast_default['shift_weight']})")
    _add_shift_share(fast, fast_default["shift_share"])
    fast.add_argument("--preview-image", default=None, metavar="IMAGE",
                      help="photo to show in previews (default: a crop from --data)")
    fast.add_argument("--from-arbitrary", nargs="?", const="arbitrary", default=None, metavar="MODEL",
                      help="start from the arbitrary-style network's prediction for the painting (default: the "
                           "shipped one) and train only the norms: a model of your painting in minutes")
    fast.add_argument("--adapt-all", action="store_true",
                      help="with --from-arbitrary: train every weight, not only the norms")
    _add_training_options(fast, crop=task_default("fast", "crop"), batch=4, lr=1e-3, lr_decay=0.0, steps=4_000,
                          adaptation=ADAPTATION)

    video = commands.add_parser(
        "video", help="stylize a clip (video file or folder of frames) with temporal coherence",
        description="Stylize a clip with any method; frames are stabilised with optical flow. Rerun the same "
                    "command to resume: finished frames are kept.")
    video.add_argument("input", metavar="IN", help="video file (mp4, webm, mov, mkv, gif, ...) or folder of numbered frames")
    video.add_argument("-o", "--output", required=True, help="video file (.mp4, .webm, .mov, .mkv, .gif) or a folder of frames")
    video.add_argument("--style", action="append", default=None, metavar="IMAGE",
                       help="style image (every method but fast); repeat to blend")
    video.add_argument("--method", choices=method_names, default=None,
                       help="(default: optimize; the model's method when --model is given; see `impasto methods`)")
    video.add_argument("--model", default=None, help="a trained model file or shipped model name")
    clip = video.add_argument_group("clip")
    clip.add_argument("--start", type=_non_negative_int, default=0, help="first frame (0-based, default 0)")
    clip.add_argument("--end", type=_positive_int, default=None, help="stop before this frame (default: the end)")
    clip.add_argument("--fps", type=_positive_float, default=None, help="frame rate of a folder of frames (default 25)")
    clip.add_argument("--independent", action="store_true", help="stylize every frame on its own (no temporal coherence)")
    clip.add_argument("--flow", choices=("dis", "farneback"), default="dis", help="optical flow (default %(default)s)")
    clip.add_argument("--temporal-weight", type=_non_negative_float, default=None,
                      help="iterative methods: weight of the temporal loss (default: the method's own)")
    clip.add_argument("--frame-iterations", type=_positive_int, default=30,
                      help="iterative methods: iterations per frame after the first (default %(default)s)")
    clip.add_argument("--long-term", type=_non_negative_int, default=0, metavar="K",
                      help="optimize: also stay consistent with K frames further back (default 0)")
    clip.add_argument("--blend", type=_non_negative_float, default=None,
                      help="one-pass methods (fast, arbitrary, adain): weight of the warped previous output where the flow "
                           "is reliable (default 0.7)")
    sound = video.add_argument_group("sound")
    sound.add_argument("--audio", default=None, metavar="FILE",
                       help="the soundtrack for the output instead of the clip's own; with a still photo as IN, the "
                            "sound that paints it into a clip as long as the sound")
    sound.add_argument("--audio-react", action="store_true",
                       help="the sound drives the painting: loudness and onsets set each frame's --strength, and with "
                            "several --style images each follows one band of the spectrum (bass to treble)")
    sound.add_argument("--audio-floor", type=_non_negative_float, default=0.2, dest="quietest", metavar="SHARE",
                       help="--audio-react: the strength in silence, as a share of --strength (default %(default)s; "
                            "higher is steadier, lower follows the sound more)")
    keys = video.add_argument_group("keyframes (paint a few frames well, carry them along the motion)")
    keys.add_argument("--keyframes", default=None, metavar="N|auto",
                      help="paint every Nth frame (and the last) with the method and carry the paint along the optical "
                           "flow in between; auto: where the carried paint covers too little of the frame or at cuts")
    keys.add_argument("--keyframe-dir", default=None, metavar="DIR",
                      help="your own keyframes (painted over in an editor), named by frame number as the output frames "
                           "are (frame_000009.png); they replace the method's painting there")
    keys.add_argument("--keyframe-iterations", type=_positive_int, default=None,
                      help="iterative methods: iterations of each keyframe from the one before (default: "
                           "--frame-iterations)")
    keys.add_argument("--fill-iterations", type=_positive_int, default=10,
                      help="iterative methods: iterations that repaint what no keyframe covers (default %(default)s)")
    clip.add_argument("--keep-frames", action="store_true", help="keep OUTPUT.frames/ after encoding")
    clip.add_argument("-q", "--quiet", action="store_true")
    _add_cluster_options(video)
    video.add_argument("--chunk", type=_positive_int, default=48,
                       help="--cluster: new frames per chunk (default %(default)s; with keyframes, whole keyframe gaps)")
    video.add_argument("--overlap", type=_positive_int, default=8,
                       help="--cluster: frames each chunk repeats from the one before, cross-faded (default %(default)s; "
                            "with keyframes, whole keyframe gaps)")
    if not light:
        _add_engine_options(video)
    video.set_defaults(size=480)

    score = commands.add_parser("score-video", help="temporal consistency: the warping error of a stylized clip",
                                description="Mean squared difference (RGB in [0, 1], summed over channels) between "
                                            "each stylized frame and the previous one warped by the ORIGINAL clip's "
                                            "optical flow, over pixels where the flow is reliable. Lower is steadier.")
    score.add_argument("original", metavar="ORIGINAL")
    score.add_argument("stylized", metavar="STYLIZED")
    score.add_argument("--flow", choices=("dis", "farneback"), default="dis")
    score.add_argument("--fps", type=_positive_float, default=None, help="for folders of frames")
    score.add_argument("--start", type=_non_negative_int, default=0,
                       help="the ORIGINAL's frame where STYLIZED begins (for clips made with --start/--end)")

    serve = commands.add_parser("serve", help="start the local web studio",
                                description="A web app for every method: create, video, camera, gallery.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    serve.add_argument("--port", type=_port, default=7860, help="(default %(default)s)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests for this host name (e.g. this machine's name on the "
                            "network when --host 0.0.0.0); repeat; '*' = any (default: localhost and --host)")

    _add_dream_parser(commands, light)

    small = commands.add_parser(
        "compress", help="a smaller, faster feed-forward model: int8 (CPU) and/or pruned channels",
        description="impasto compress MODEL -o SMALL.pt --int8 --photos DIR        int8 for x86 CPUs\n"
                    "impasto compress MODEL -o SMALL.pt --prune 0.5 --photos DIR   half the work, distilled\n"
                    "The photos calibrate int8 and teach the pruned network (no style image needed).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    small.add_argument("model", metavar="MODEL", help="a feed-forward model file or shipped model name")
    small.add_argument("-o", "--output", required=True,
                       help="the compressed model file (.pt); with --int8, a .onnx name writes ONNX Runtime's "
                            "int8 (QDQ) instead, for running elsewhere")
    small.add_argument("--photos", required=True, metavar="DIR", help="a folder of photos (any; 16 or more)")
    small.add_argument("--int8", action="store_true", help="8-bit integer arithmetic (x86 CPUs)")
    small.add_argument("--prune", type=_non_negative_float, default=0.0, metavar="F",
                       help="remove this fraction of the network's work (channels), then distil (e.g. 0.5)")
    small.add_argument("--style-blend", type=_float_list, default=None,
                       help="int8 of a multi-style model: the blend to build in (default: its first style)")
    small.add_argument("--steps", type=_positive_int, default=None,
                       help="distillation steps after pruning (default 300)")
    small.add_argument("--texture-weight", type=_non_negative_float, default=None, metavar="W",
                       help="distillation: weight of the texture term (Gram matrices of the VGG features of "
                            "both networks' paintings) beside the pixels' L1; 0 for pixels only (default 0.3)")
    small.add_argument("--resume", action="store_true", help="go on with a stopped distillation")
    small.add_argument("--device", default="auto", help="for the distillation: auto (default), cpu, cuda, mps")
    small.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    export = commands.add_parser("export", help="export a feed-forward model to ONNX or TorchScript",
                                 description="The exported network takes (image N x 3 x H x W in [0, 1], H and W "
                                             "multiples of 4; mix: one weight per style) and returns the image.")
    export.add_argument("model", metavar="MODEL", help="model file or shipped model name")
    export.add_argument("-o", "--output", required=True, help="model.onnx or model.ts (TorchScript)")
    return parser


def _add_training_options(parser: argparse.ArgumentParser, crop: int, batch: int, lr: float, lr_decay: float,
                          steps: int, adaptation: dict[str, Any] | None = None) -> None:
    """The options every training command shares.  ``adaptation``: other defaults for steps, batch
    size and learning rate with ``--from-arbitrary`` (a few minutes of training, not hours)."""
    parser.add_argument("-o", "--output", required=True,
                        help="the model file to write (.pt), or a bare NAME: one of your models (`impasto models`), "
                             "used by that name afterwards")
    group = parser.add_argument_group("training")
    group.add_argument("--crop", type=_positive_int, default=crop, help="training crop size in px (default %(default)s)")
    group.add_argument("--shorter-side", type=_positive_int, default=None,
                       help="images are scaled to this shorter side before cropping (default: 2 x crop)")
    defaults = {"batch_size": batch, "steps": steps, "lr": lr}
    parser.set_defaults(training_defaults=defaults, adaptation_defaults=adaptation)

    def default(name: str) -> str:
        return f"(default {defaults[name]:g}" + (f"; with --from-arbitrary {adaptation[name]:g})" if adaptation else ")")

    group.add_argument("--batch-size", type=_positive_int, default=None, help=default("batch_size"))
    group.add_argument("--steps", type=_positive_int, default=None, help=default("steps"))
    group.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate " + default("lr"))
    group.add_argument("--lr-decay", type=_non_negative_float, default=lr_decay,
                       help="lr / (1 + decay * step) (default %(default)s)")
    group.add_argument("--seed", type=_seed, default=0, help="(default %(default)s)")
    group.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="autocast for the networks (default: bf16 where the hardware has it)")
    group.add_argument("--checkpoint-every", type=_positive_int, default=500, metavar="N",
                       help="write OUTPUT.ckpt and refresh OUTPUT every N steps (default %(default)s)")
    group.add_argument("--preview-every", type=_positive_int, default=None, metavar="N",
                       help="write a preview image every N steps (default: at each checkpoint)")
    group.add_argument("--previews", default=None, metavar="DIR",
                       help="folder for previews (default: OUTPUT's name + '-previews')")
    group.add_argument("--resume", action="store_true", help="continue from OUTPUT.ckpt")
    group.add_argument("--init", default=None, metavar="MODEL",
                       help="start from this model's weights (file or shipped name; fresh optimiser); "
                            "its training record becomes the new model's lineage")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the network (pays off on GPUs for long runs; the first step "
                            "compiles, which takes a while; see BENCHMARKS.md)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


# ------------------------------------------------------------------------------------- commands


class _Bar:
    """A tqdm bar made at its first update, so that an error before any work shows no empty bar."""

    def __init__(self, quiet: bool, unit: str, total: int | None = None) -> None:
        self.quiet, self.unit, self.total = quiet, unit, total
        self._bar = None

    def show(self, done: int, total: int | None = None, postfix: str | None = None) -> None:
        if self.quiet:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total or self.total, unit=self.unit, dynamic_ncols=True, file=sys.stderr)
        if total is not None:
            self._bar.total = total
        if postfix is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(done - self._bar.n)

    def message(self, text: str) -> None:
        """A line on stderr that does not break the bar."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (pip install 'impasto[cluster]')")
    group.add_argument("--cluster", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="folders and clips on a Ray cluster: alone, a local Ray with this machine's cores; "
                            "with an address (or RAY_ADDRESS), join that cluster (files on shared storage)")
    group.add_argument("--workers", type=_positive_int, default=None,
                       help="workers to start (default: one per core, or per GPU on CUDA)")


def _add_dream_parser(commands, light: bool = False) -> None:
    dream = commands.add_parser(
        "dream", help="DeepDream: grow the patterns a layer of the network sees (gradient ascent)",
        description="impasto dream IMAGE -o OUT [--layers relu4_2] [--guide GUIDE]: shallow layers paint "
                    "strokes and ripples, deep ones eyes, arches and animals; --guide grows a guide image's "
                    "motifs instead. Ctrl-C writes the image as it is.")
    if light:
        return
    from .dream import DreamSettings
    from .images import DEFAULT_MAX_PIXELS

    d = DreamSettings()
    dream.add_argument("image", metavar="IMAGE", help="the photo to dream on")
    dream.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp, .tif)")
    dream.add_argument("--layers", type=_layer_weights, default=None, metavar="NAME[:W],...",
                       help="layers whose activations grow, with weights (default "
                            f"{','.join(f'{k}:{v:g}' for k, v in d.layers.items())}; names: `impasto layers`)")
    dream.add_argument("--octaves", type=_positive_int, default=d.octaves, help="scales, coarse to fine (default %(default)s)")
    dream.add_argument("--octave-scale", type=_positive_float, default=d.octave_scale,
                       help="size ratio between octaves, > 1 (default %(default)s)")
    dream.add_argument("-n", "--iterations", type=_positive_int, default=d.iterations,
                       help="steps per octave (default %(default)s)")
    dream.add_argument("--strength", type=_non_negative_float, default=d.strength,
                       help="how far each step moves the pixels (default %(default)s)")
    dream.add_argument("--jitter", type=_positive_int, default=d.jitter, help="px of random shift per step (default %(default)s)")
    dream.add_argument("--guide", default=None, help="an image (or built-in painting's name) whose motifs the dream grows")
    dream.add_argument("--mask", action="append", default=None, metavar="MASK",
                       help="dream only where the mask is white (repeat to add areas)")
    dream.add_argument("-s", "--size", type=_positive_int, default=None, help="long side of the output (default: the photo's)")
    dream.add_argument("--tile-size", type=_positive_int, default=d.tile,
                       help="octaves larger than this are worked in tiles, to bound memory (default %(default)s)")
    dream.add_argument("--seed", type=_seed, default=d.seed, help="seed of the jitter (default %(default)s)")
    dream.add_argument("--max-pixels", type=_positive_int, default=DEFAULT_MAX_PIXELS,
                       help="refuse input images with more pixels than this (default %(default)s)")
    dream.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    dream.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                       help="autocast for the network (default: bf16 where the hardware has it)")
    dream.add_argument("--overwrite-input", action="store_true", help="allow OUTPUT to be one of the inputs")
    dream.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")


def cmd_dream(args: argparse.Namespace) -> int:
    """One photo in, its dream out; Ctrl-C writes the dream so far."""
    from .dream import DreamSettings, Dreamer
    from .images import check_output_path
    from .samples import resolve_style

    settings = DreamSettings(octaves=args.octaves, octave_scale=args.octave_scale, iterations=args.iterations,
                             strength=args.strength, jitter=args.jitter, tile=args.tile_size, seed=args.seed)
    if args.layers is not None:
        settings.layers = args.layers
    guide = resolve_style(args.guide) if args.guide else None
    output = check_output_path(Path(args.output), (args.image, guide, *(args.mask or ())), args.overwrite_input)
    dreamer = Dreamer(settings, guide, device=args.device, precision=args.precision, max_pixels=args.max_pixels)
    update, close = _progress_bar(args.quiet)
    try:
        result = dreamer.dream(args.image, args.size, args.mask or (), update, args.max_pixels)
    finally:
        close()
    save_result(result.image, output)
    height, width = result.image.shape[-2:]
    if result.stop_reason == "interrupted":
        print(f"impasto: interrupted after {result.iterations} iterations; wrote {output}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"wrote {output} ({width}x{height}, {result.iterations} iterations, {result.seconds:.1f} s)",
              file=sys.stderr)
    return 0


def _progress_bar(quiet: bool) -> tuple[Callable, Callable[[], None]]:
    """A bar showing pyramid level and loss terms; returns (update(progress), close())."""
    bar = _Bar(quiet, "it")

    def update(progress) -> None:
        t = progress.terms
        level = f"level {progress.level}/{progress.levels} {progress.image.shape[-1]}x{progress.image.shape[-2]} "
        bar.show(progress.iteration, progress.iterations,
                 level + " ".join(f"{name} {value:.3g}" for name, value in t.items() if name != "total"))

    return update, bar.close


def _intermediate_path(output: Path, iteration: int) -> Path:
    return output.with_name(f"{output.stem}_{iteration:04d}{output.suffix}")


def _check_intermediates(output: Path, inputs: Sequence[object]) -> None:
    """--save-every writes OUT_0002.png, OUT_0004.png, ...: refuse up front if any input has such a name."""
    import re

    pattern = re.compile(rf"{re.escape(output.stem)}_\d{{4,}}{re.escape(output.suffix)}")
    folder = output.parent.resolve()
    for source in inputs:
        if source is None:
            continue
        path = Path(str(source))
        if pattern.fullmatch(path.name) and path.parent.resolve() == folder:
            raise ImpastoError(f"--save-every would overwrite this input with an intermediate image of {output.name}; "
                               "choose another output name", path)


def save_result(image, output: Path) -> Path:
    """Write the result; if that fails after the work (full disk, a vanished folder), save it under a
    fallback name -- beside the output, else in the system's temporary folder -- and say where."""
    import tempfile

    from .images import save_image

    try:
        return save_image(image, output)
    except ImpastoError as exc:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for folder in (output.parent, Path(tempfile.gettempdir())):
            fallback = folder / f"{output.stem[:80]}.rescued-{stamp}.png"
            try:
                save_image(image, fallback)
            except ImpastoError:
                continue
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(output)) else str(exc)
            raise ImpastoError(f"{reason}; the result was saved to {fallback} instead", output) from None
        raise


def _choose(args: argparse.Namespace):
    """The method, from --method and the kind of --model, and the model file."""
    from . import methods
    from .modelfile import resolve_model

    model = resolve_model(args.model) if args.model is not None else None
    return methods.choose(args.method, model), model


def _gather_photos(inputs: Sequence[str]) -> tuple[list[Path], bool]:
    """Photo files from files and folders of photos; True when a folder was among them."""
    from .training import IMAGE_SUFFIXES

    sources: list[Path] = []
    folder_input = False
    for item in map(Path, inputs):
        if item.is_dir():
            folder_input = True
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise ImpastoError("no images in this folder", item)
            sources.extend(found)
        elif item.exists():
            sources.append(item)
        else:
            raise ImpastoError("file not found", item)
    return sources, folder_input


def cmd_stylize(args: argparse.Namespace) -> int:
    """Files and folders of photos in; one image, or a folder of images, out -- for every method."""
    from .images import OUTPUT_FORMATS, check_output_path
    from .samples import resolve_style

    method, model = _choose(args)
    if method.uses_styles:
        if len(args.inputs) < 2:
            raise ImpastoError(f"give the content photo (or folder) and at least one style image "
                               f"(impasto stylize --method {method.name} CONTENT STYLE... -o OUT)")
        photos, styles = args.inputs[:1], [resolve_style(style) for style in args.inputs[1:]]
    else:
        photos, styles = args.inputs, []
    if args.save_every and method.one_pass:
        raise ImpastoError(f"--save-every shows the iterations of an iterative method; {method.name} has none")
    request = _request(args, method, model)
    sources, folder_input = _gather_photos(photos)
    guarded = (*styles, *(args.mask or ()), args.init)
    output = Path(args.output)
    if len(sources) == 1 and not folder_input and output.suffix:
        targets = [check_output_path(output, (sources[0], *guarded), args.overwrite_input)]
        if args.save_every:
            _check_intermediates(targets[0], (sources[0], *guarded))
    else:
        if output.suffix.lower() in OUTPUT_FORMATS:
            raise ImpastoError("several inputs need a folder as output (no image extension)", output)
        output.mkdir(parents=True, exist_ok=True)
        targets = []
        for source in sources:
            suffix = source.suffix.lower() if source.suffix.lower() in OUTPUT_FORMATS else ".png"
            targets.append(check_output_path(output / (source.stem + suffix), (source, *guarded), args.overwrite_input))
        if len(set(targets)) != len(targets):
            raise ImpastoError("two inputs have the same name; their outputs would collide", output)
    if args.cluster is not None and len(targets) > 1:
        return _paint_cluster(args, method, styles, request, sources, targets, output)
    painter = method.prepare(styles, request)  # the model, the styles and their statistics: once per batch
    if len(targets) == 1:
        return _paint_one(args, method, painter, sources[0], targets[0])
    return _paint_batch(args, method, painter, sources, targets, output)


def _paint_one(args: argparse.Namespace, method, painter, source: Path, output: Path) -> int:
    from .images import save_image

    update, close = _progress_bar(args.quiet or method.one_pass)

    def on_step(progress) -> None:
        update(progress)
        if args.save_every and progress.iteration % args.save_every == 0:
            save_image(progress.image.clamp(0, 1), _intermediate_path(output, progress.iteration))

    try:
        result = painter.paint(source, on_step)
    finally:
        close()
    save_result(result.image, output)
    if getattr(args, "record", False):
        run = _record(args, method, source, result)
        if not args.quiet:
            print(f"recorded run {run.id} in {run.folder.parent}", file=sys.stderr)
    height, width = result.image.shape[-2:]
    if result.stop_reason == "non-finite":
        print(f"impasto: error: the loss became NaN or infinite after iteration {result.iterations}; "
              f"wrote the last good image to {output} (lower the learning rate or the weights)", file=sys.stderr)
        return EXIT_FAILED
    if result.stop_reason == "interrupted":
        resume = f" (continue with --init {output})" if method.options is not None and \
            "init" in method.options.__dataclass_fields__ else ""
        print(f"impasto: interrupted after {result.iterations} iterations; wrote {output}{resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        if method.one_pass:
            how = f"{method.name}, {result.seconds:.2f} s"
        else:
            done = "converged" if result.stop_reason == "converged" else "done"
            how = f"{method.name}, {result.iterations} iterations, {done}, {result.seconds:.1f} s"
        print(f"wrote {output} ({width}x{height}, {how})", file=sys.stderr)
    return 0


def _record(args: argparse.Namespace, method, source: Path, result):
    """Keep a run in the history: the inputs as files of the run, and this command naming them."""
    from . import images
    from .history import History
    from .samples import resolve_style

    styles = args.inputs[1:] if method.uses_styles else []  # as typed: files or built-in paintings' names
    inputs = [("content", images.as_tensor(source, args.max_pixels)),
              *[("style", images.as_tensor(resolve_style(style), args.max_pixels)) for style in styles],
              *[("mask", images.as_tensor(mask, args.max_pixels)) for mask in (args.mask or [])]]
    names = {args.inputs[0]: "{content}", **{str(s): f"{{style{k}}}" for k, s in enumerate(styles, 1)},
             **{str(m): f"{{mask{k}}}" for k, m in enumerate(args.mask or [], 1)}}
    command, skip = [], False
    for part in args.argv:
        if skip:
            skip = False
        elif part in ("-o", "--output"):
            skip = True
        elif part.startswith("--output=") or part in ("--record", "-q", "--quiet", "--overwrite-input"):
            continue
        else:
            command.append(names.get(part, part))
    settings = {key: value for key, value in vars(args).items()
                if key not in ("argv", "inputs", "output", "mask", "record", "quiet", "engine_flags")
                and value is not None}
    return History().record(method.name, result.image, inputs, settings, result.stop_reason, result.seconds,
                            command)


def _paint_batch(args: argparse.Namespace, method, painter, sources: list[Path], targets: list[Path],
                 output: Path) -> int:
    """One bar over the photos (:func:`impasto.batch.paint_files` does the work)."""
    from .batch import paint_files

    started = time.perf_counter()
    bar = _Bar(args.quiet, "img", len(sources))
    try:
        report = paint_files(method, painter, sources, targets, args.skip_existing, on_progress=bar.show,
                             on_error=lambda error: bar.message(f"impasto: error: {error}"))
    finally:
        bar.close()
    return _batch_end(args, report.done, report.skipped, report.failed, len(sources), output, method.name, started,
                      interrupted=report.interrupted)


def _batch_end(args: argparse.Namespace, done: int, skipped: int, failed: int, total: int, output: Path, how: str,
               started: float, interrupted: bool = False) -> int:
    """A batch's last words and exit status (the same on one machine and on a cluster)."""
    if interrupted:
        print(f"impasto: interrupted; {done} image(s) written (rerun with --skip-existing to go on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        extra = f", {skipped} already there" if skipped else ""
        print(f"wrote {done} image(s) to {output} ({how}{extra}, {time.perf_counter() - started:.2f} s)",
              file=sys.stderr)
    if failed:
        print(f"impasto: error: {failed} of {total} image(s) failed (see above); the others were written",
              file=sys.stderr)
        return EXIT_FAILED
    return 0


def _paint_cluster(args: argparse.Namespace, method, styles: list, request, sources: list[Path],
                   targets: list[Path], output: Path) -> int:
    """A folder batch on a Ray cluster: the same outputs, skips and failure counts as on one machine."""
    from . import cluster
    from .images import as_tensor

    started, done, failed = time.perf_counter(), 0, 0
    jobs = [(s, t) for s, t in zip(sources, targets) if not (args.skip_existing and t.exists())]
    skipped = len(sources) - len(jobs)
    style_images = [as_tensor(style, request.max_pixels) for style in styles]  # the styles travel with the job
    cluster.start(None if args.cluster == "local" else args.cluster)
    actors = cluster.workers(method.name, style_images, request, args.workers)
    bar = _Bar(args.quiet, "img", len(sources))
    bar.show(skipped)

    def on_done(source: Path, error: str | None) -> None:
        nonlocal done, failed
        if error is None:
            done += 1
        else:
            failed += 1
            bar.message(f"impasto: error: {error}")
        bar.show(skipped + done + failed, postfix=f"{len(actors)} workers")

    how = f"{method.name} on {len(actors)} workers"
    try:
        cluster.paint_folder(actors, jobs, on_done)
    except KeyboardInterrupt:
        bar.close()
        return _batch_end(args, done, skipped, failed, len(sources), output, how, started, interrupted=True)
    finally:
        bar.close()
    return _batch_end(args, done, skipped, failed, len(sources), output, how, started)


def cmd_video(args: argparse.Namespace) -> int:
    import dataclasses

    from . import video
    from .methods import Temporal

    from .samples import resolve_style

    method, model = _choose(args)
    styles = [resolve_style(style) for style in args.style or []]
    request = _request(args, method, model)
    temporal = Temporal(blend=args.blend, weight=args.temporal_weight, iterations=args.frame_iterations)
    settings = video.VideoSettings(size=args.size, start=args.start, end=args.end, fps=args.fps,
                                   coherent=not args.independent, flow=args.flow, long_term=args.long_term,
                                   keep_frames=args.keep_frames)
    keyed = args.keyframes is not None or args.keyframe_dir is not None
    still = Path(args.input).suffix.lower() in video.FRAME_SUFFIXES and Path(args.input).is_file()
    reacting = args.audio_react or still  # a still photo is painted to a sound
    if args.audio is not None:
        settings.audio = Path(args.audio)
    if keyed and reacting:
        raise ImpastoError("--audio-react paints every frame; it does not go with --keyframes or --keyframe-dir")
    if args.cluster is not None:
        return _video_cluster(args, method, styles, request, temporal, settings, keyed, reacting)
    source = args.input
    if reacting:
        from . import react

        source, stylizer = react.reacting_clip(method, styles, request, temporal, args.input, args.audio, args.fps,
                                               settings.start, args.quietest)
    else:
        painter = method.prepare(styles, request)
        stylizer = painter.frames(temporal)
    bar = _Bar(args.quiet, "frame")

    def on_frame(done: int, total: int | None, skipped: bool) -> None:
        bar.show(done, total, "resumed" if skipped else stylizer.name)

    try:
        if keyed:
            from . import keyframes

            keys = keyframes.parse_keyframes(args.keyframes, args.keyframe_dir)
            key_iterations = args.keyframe_iterations or temporal.iterations
            stylizer = painter.frames(dataclasses.replace(temporal, iterations=key_iterations))
            fill = painter.frames(dataclasses.replace(temporal, iterations=args.fill_iterations))
            report = keyframes.stylize_keyframed(args.input, args.output, stylizer, fill, settings, keys, on_frame)
        else:
            report = video.stylize_video(source, args.output, stylizer, settings, on_frame)
    except KeyboardInterrupt:
        bar.close()  # before the message, so that it stays on its own line
        print("impasto: interrupted; finished frames are kept (run the same command again to go on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if not args.quiet:
        resumed = f", {report.skipped} resumed" if report.skipped else ""
        keyed = f", {len(report.keyframes)} keyframes" if report.keyframes else ""
        print(f"wrote {report.output} ({report.frames} frames at {float(report.fps):.3g} fps{resumed}{keyed}, audio: "
              f"{report.audio}, {report.seconds:.1f} s)", file=sys.stderr)
    return 0


def _video_cluster(args: argparse.Namespace, method, styles: list, request, temporal, settings, keyed: bool,
                   reacting: bool) -> int:
    """A clip in chunks on a Ray cluster (keyframed or sound-driven too); the same frames folder, job
    record and resume as on one machine."""
    import dataclasses

    from . import cluster, images
    from .files import file_digest

    style_images = [images.as_tensor(style, request.max_pixels) for style in styles]
    job = {"method": method.name, "model": file_digest(request.model) if request.model else None,
           "styles": [images.digest(style) for style in style_images],
           "request": {k: v for k, v in dataclasses.asdict(request).items() if k not in ("model", "masks", "device")},
           "temporal": dataclasses.asdict(temporal)}
    source, fill, sound = args.input, None, None
    if keyed:
        from . import keyframes

        keys = keyframes.parse_keyframes(args.keyframes, args.keyframe_dir)
        temporal = dataclasses.replace(temporal, iterations=args.keyframe_iterations or temporal.iterations)
        fill = dataclasses.replace(temporal, iterations=args.fill_iterations)
        job.update(temporal=dataclasses.asdict(temporal), fill=dataclasses.asdict(fill))
    if reacting:  # checked here once, and the clip (a still photo too) opened as the workers will
        from . import react

        react.full_strength(method, request, args.quietest)
        source, sound_file, _ = react.sound_clip(args.input, args.audio, args.fps)
        sound = {"sound": args.audio, "quietest": args.quietest}
        job["audio_react"] = {"audio": file_digest(Path(sound_file)), "quietest": args.quietest}
    cluster.start(None if args.cluster == "local" else args.cluster)
    actors = cluster.workers(method.name, style_images, request, args.workers, temporal, fill, sound)
    bar = _Bar(args.quiet, "chunk")

    def on_chunk(done: int, total: int) -> None:
        bar.show(done, total, f"{len(actors)} workers")

    try:
        if keyed:
            report = cluster.stylize_keyframed(actors, source, args.output, settings, job, keys, args.chunk,
                                                args.overlap, on_chunk)
        else:
            report = cluster.stylize_video(actors, source, args.output, settings, job, args.chunk, args.overlap,
                                           on_chunk)
    except KeyboardInterrupt:
        bar.close()
        print("impasto: interrupted; finished chunks are kept (run the same command again to go on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if not args.quiet:
        print(f"wrote {report.output} ({report.frames} frames at {float(report.fps):.3g} fps on {len(actors)} workers, "
              f"audio: {report.audio}, {report.seconds:.1f} s)", file=sys.stderr)
    return 0


def cmd_score_video(args: argparse.Namespace) -> int:
    from .video import score_video

    mean, per_pair = score_video(args.original, args.stylized, args.flow, args.fps, args.start)
    print(f"warping error {mean:.5f} over {len(per_pair)} frame pairs (lower is steadier)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .studio import serve

    serve(args.host, args.port, extra_hosts=args.allow_host)
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    import dataclasses

    from .compress import DISTILL_SETTINGS, DISTILL_TEXTURE_WEIGHT, compress
    from .fast import FastModel, MULTIPLE
    from .modelfile import resolve_model

    settings = dataclasses.replace(DISTILL_SETTINGS, steps=args.steps or DISTILL_SETTINGS.steps, resume=args.resume,
                                   device=args.device)
    bar = _Bar(args.quiet, "step", settings.steps)
    try:
        path, how = compress(resolve_model(args.model), args.output, args.photos, int8=args.int8, remove=args.prune,
                             weights=args.style_blend, settings=settings,
                             texture_weight=DISTILL_TEXTURE_WEIGHT if args.texture_weight is None else args.texture_weight,
                             progress=lambda step, total, losses: bar.show(step, total, f"l1 {losses.get('l1', 0):.4f}"))
    finally:
        bar.close()
    if how == "interrupted":
        print(f"impasto: interrupted; the distillation so far is in {path} (add --resume to go on)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        model = FastModel(path, device="cpu")
        from .compress import conv_macs

        kind = "int8" if model.quantized else "float"
        size = path.stat().st_size / 1e6
        work = "" if model.quantized else f", {conv_macs(model.network.float(), 256, 256) / 1e9:.2f} GMAC at 256 px"
        print(f"wrote {path} ({kind}, {size:.1f} MB{work}; inputs padded to multiples of {MULTIPLE})", file=sys.stderr)
        timing = model.config.get("int8_timing")
        if timing:
            verdict = ("int8 runs here" if model.int8 else
                       "the float network is faster here, so this file runs its float network on this kind of CPU")
            print(f"measured on this CPU ({timing['cpu']}), {timing['side']} px: int8 {timing['int8_s']:.3f} s, "
                  f"float {timing['float_s']:.3f} s per image ({timing['int8_s'] / timing['float_s']:.2f}x): {verdict}",
                  file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import logging

    from .fast import export
    from .modelfile import resolve_model

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    path = export(resolve_model(args.model), args.output)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from . import training_tasks
    from .modelfile import resolve_model
    from .training import TrainSettings, format_losses, train

    output, named = training_tasks.output_path(args.output)  # a bare name: one of your models
    defaults = args.training_defaults
    if getattr(args, "from_arbitrary", None) is not None and args.adaptation_defaults:
        defaults = args.adaptation_defaults
    chosen = {name: defaults[name] if getattr(args, name) is None else getattr(args, name) for name in defaults}
    settings = TrainSettings(
        steps=chosen["steps"], batch_size=chosen["batch_size"], learning_rate=chosen["lr"], lr_decay=args.lr_decay,
        seed=args.seed, device=args.device, precision=args.precision, checkpoint_every=args.checkpoint_every,
        preview_every=args.preview_every or 0, resume=args.resume,
        init=str(resolve_model(args.init)) if args.init else None, compile="inductor" if args.compile else None,
    )
    task = training_tasks.task_from(args.kind, vars(args))
    previews = Path(args.previews) if args.previews else output.with_name(output.stem + "-previews")
    bar = _Bar(args.quiet, "step", settings.steps)

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        bar.show(step, total, format_losses(losses))

    for folder in (getattr(task, "content", None), getattr(task, "style", None)):
        note = folder.skipped_note() if folder is not None and hasattr(folder, "skipped_note") else None
        if note:
            print(f"impasto: warning: {note}", file=sys.stderr)
    try:
        report = train(task, settings, output, preview_dir=previews, progress=progress)
    finally:
        bar.close()
    if report.stop_reason == "interrupted":
        print(f"impasto: interrupted at step {report.steps}; wrote {output} and {report.checkpoint_path} "
              f"(continue with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"wrote {output} ({report.steps} steps, {report.seconds / 60:.1f} min, {format_losses(report.losses)})",
              file=sys.stderr)
        if named:
            print(f"use it by name: impasto stylize --model {output.stem} PHOTO -o OUT", file=sys.stderr)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .modelfile import SHIPPED_DIR, available_models, user_models_dir

    models = available_models()
    if not models:
        print("no trained models ship with this installation (train one with `impasto train`)")
        return 0
    if args.markdown:
        print("| model | kind | styles | data | steps x batch, crop | style weight | hardware | time | final losses |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in models:
        t = model.training
        styles = ", ".join(model.config.get("style_names", [])) or "any style"
        losses = ", ".join(f"{k} {v:.4g}" for k, v in (t.get("final_losses") or {}).items())
        minutes = float(t.get("seconds", 0)) / 60
        if args.markdown:
            data = t.get("content_data", "?") + (f"; styles: {t['style_data']}" if "style_data" in t else "")
            stages = "".join(f"{stage.get('steps_done', '?')} x {stage.get('batch_size', '?')}, {stage.get('crop', '?')} px "
                             f"({stage.get('hardware', '?')}, {float(stage.get('seconds', 0)) / 60:.0f} min), then "
                             for stage in t.get("lineage") or [])
            print(f"| {model.path.stem} | {model.kind} | {styles} | {data} | {stages}{t.get('steps_done', '?')} x "
                  f"{t.get('batch_size', '?')}, {t.get('crop', '?')} px | {t.get('style_weight', '?')} | "
                  f"{t.get('hardware', '?')}, {t.get('precision', '?')} | {minutes:.0f} min | {losses} |")
            continue
        mine = "" if model.path.parent == SHIPPED_DIR else f" (yours: {model.path})"
        if model.config.get("quantized"):
            from .int8 import int8_pays

            here = "" if int8_pays(model.config) else "; runs its float network on this CPU"
            mine = f" [{model.config['quantized']}{here}]{mine}"
        print(f"{model.path.stem:24s} {model.kind:14s} {styles}{mine}")
        for stage in t.get("lineage") or []:
            print(f"{'':24s} from {stage.get('model', '?')}: {stage.get('steps_done', '?')} steps, "
                  f"{stage.get('crop', '?')} px crops, {stage.get('hardware', '?')}, "
                  f"{float(stage.get('seconds', 0)) / 60:.0f} min")
        print(f"{'':24s} {t.get('steps_done', '?')} steps, {t.get('crop', '?')} px crops, batch {t.get('batch_size', '?')}, "
              f"{t.get('hardware', '?')}, {minutes:.0f} min; losses: {losses}")
    if not args.markdown:
        print(f"\nyour own models (used by name, listed in the studio): {user_models_dir()}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from . import methods
    from .images import check_output_path
    from .optimize import OptimizeSettings
    from .samples import painted_style, sample_photo_path

    started = time.perf_counter()
    output = check_output_path(args.output)
    content = sample_photo_path("chelsea.png")
    style = painted_style(512)
    method = methods.get("optimize")
    request = methods.Request(size=args.size, device=args.device, options=OptimizeSettings(iterations=args.iterations))
    if not args.quiet:
        print(f"impasto demo: {content.name} (scikit-image) in a brushstroke style impasto paints itself, "
              f"{args.size} px, {args.iterations} iterations", file=sys.stderr)
    args.save_every = None
    code = _paint_one(args, method, method.prepare([style], request), content, output)
    if code == 0:
        print(f"result: {output.resolve()} ({time.perf_counter() - started:.1f} s in all)")
    return code


def cmd_styles(args: argparse.Namespace) -> int:
    from .samples import painting_credits

    for name, credit in painting_credits().items():
        print(f"{name:<28} {credit}")
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    import dataclasses

    from . import methods

    for name in methods.names():
        method = methods.get(name)
        needs = "style images" if method.uses_styles else "a trained model"
        if method.uses_styles and method.model_kind:
            needs += " (and a trained model, one ships)"
        print(f"{name:<11} {method.summary}")
        print(f"{'':<11} needs: {needs}")
        if method.options is not None:
            own = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(method.options)
                            if f.name not in {g.name for g in dataclasses.fields(methods.Request)} | {"style_blend"}
                            and f.default is not dataclasses.MISSING)
            print(f"{'':<11} own options: {own}")
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from .backbone import layer_names

    print(" ".join(layer_names(args.backbone)))
    return 0


COMMANDS = {"stylize": cmd_stylize, "dream": cmd_dream, "compress": cmd_compress, "methods": cmd_methods, "styles": cmd_styles, "demo": cmd_demo, "layers": cmd_layers, "train": cmd_train, "models": cmd_models,
            "export": cmd_export, "video": cmd_video, "score-video": cmd_score_video,
            "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C (SIGINT) stops work and keeps what is done, even when a shell started us in the
    # background with SIGINT ignored (then `kill -INT` is how a long training is stopped cleanly).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _on_terminate)
    code = _run(argv)
    return EXIT_TERMINATED if code == EXIT_INTERRUPTED and _terminated else code


def _run(argv: Sequence[str] | None) -> int:
    command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(light=not argv or argv[0].startswith("-"))  # no command yet: no PyTorch
    try:
        args = parser.parse_args(argv)
        args.argv = argv  # for --record
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return int(exc.code or 0)
    if command_line:
        # what is imported by now (PyTorch) lives as long as the process: the collector need not
        # walk it again, nor at the end, which made every command 0.1-0.2 s longer (BENCHMARKS.md)
        gc.freeze()
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except ImpastoError as exc:
        flag = _flag_for(parser, args.command, exc.parameter)
        print(f"impasto: error: {flag + ': ' if flag and exc.path is None else ''}{exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a folder that cannot be made, a full disk: the file and the reason, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"impasto: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except MemoryError:
        print("impasto: error: out of memory; lower --size (or use --tile-size)", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("impasto: interrupted before any image was made", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
