"""Settings that describe themselves: one declaration gives a setting's default, its help and its
command-line flag.

The settings dataclasses (a request, a method's options, a clip, a dream) declare their fields
with :func:`setting`; the command line builds its options from them (``impasto.cli.options``), so
a default or a help text is written once, beside the value it is about.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

#: The headings settings are listed under in ``--help``, in this order.
SIZE = "size"
ITERATIVE = "iterative methods (optimize, neighbours)"
LOSSES = "losses (optimize)"
CONTROL = "artistic control (every method)"
HARDWARE = "network and hardware"
CLIP = "clip"
SOUND = "sound"
KEYFRAMES = "keyframes (paint a few frames well, carry them along the motion)"
CLUSTER = "cluster (pip install 'impasto[cluster]')"
HEADINGS = (SIZE, ITERATIVE, LOSSES, CONTROL, HARDWARE, CLIP, SOUND, KEYFRAMES, CLUSTER)

#: Which values a number field takes: the command line checks them as it reads them.
CHECKS = ("positive", "non_negative", "seed", "share", "layer_weights")


def setting(default: Any = dataclasses.MISSING, *, help: str, flag: str | None = None, short: str | None = None,
            group: str | None = None, check: str | None = None, choices: tuple[str, ...] | None = None,
            metavar: str | None = None, default_text: str | None = None, old: tuple[str, ...] = (),
            negate: bool = False, const: Any = None,
            default_factory: Callable[[], Any] | Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is also a flag.

    ``flag``: its long name (default ``--FIELD-NAME``); ``short``: a one-letter alias; ``group``:
    the heading it is listed under; ``check``: one of :data:`CHECKS`; ``default_text``: what the
    help says of the default where the field's own value would mislead (None: "the method's
    own"); ``old``: earlier names that still work; ``negate``: a switch that sets a true-by-default
    field false (``--independent`` for ``coherent``); ``const``: the value of the flag given alone.
    """
    if check is not None and check not in CHECKS:
        raise ValueError(f"unknown check {check!r}")
    metadata = {"help": help, "flag": flag, "short": short, "group": group, "check": check, "choices": choices,
                "metavar": metavar, "default_text": default_text, "old": old, "negate": negate, "const": const}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def flag_name(field: dataclasses.Field) -> str:
    """The field's long flag (``--style-scale`` for ``style_scale``, or its own)."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def destination(field: dataclasses.Field) -> str:
    """Where the command line keeps the field's value: its flag's name (``--lr`` -> ``lr``)."""
    return flag_name(field).lstrip("-").replace("-", "_")


def declared(settings: type) -> list[dataclasses.Field]:
    """The fields of a settings dataclass that are flags (declared with :func:`setting` or with help)."""
    return [field for field in dataclasses.fields(settings) if "help" in field.metadata]


def default_of(field: dataclasses.Field) -> Any:
    """The field's default value (made afresh where it has a factory)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def cluster_setting() -> Any:
    """Where a folder's photos or a clip's frames are painted: None here, ``"local"`` (a local Ray
    with this machine's cores) or a Ray address."""
    return setting(None, group=CLUSTER, metavar="ADDRESS", const="local", default_text="this process",
                   help="folders and clips on a Ray cluster: alone, a local Ray with this machine's cores; with an "
                        "address (or RAY_ADDRESS), join that cluster (files on shared storage)")


def workers_setting() -> Any:
    return setting(None, group=CLUSTER, check="positive", default_text="one per core, or per GPU on CUDA",
                   help="workers to start")
