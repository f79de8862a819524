"""The command line's value types: each checks its text and says what is wrong in one line."""

from __future__ import annotations

import argparse
import sys
from typing import Callable, TypeVar

from impasto.cli.output import EXIT_USAGE


class OldName(argparse.Action):
    """An old spelling of a flag, kept so that old command lines run: it sets the flag's value,
    says on stderr which name to use, and is left out of --help."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"impasto: note: {option_string} is an old name; use {self.new} (the old one will go)", file=sys.stderr)
        setattr(namespace, self.dest, values)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def non_negative_int(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


MAX_SEED = 2**63 - 1  # what torch's generators take
Number = TypeVar("Number", int, float)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def within(parse: Callable[[str], Number], low: Number, high: Number, what: str,
           lowest: bool = True) -> Callable[[str], Number]:
    """A value type that reads its text with ``parse`` and keeps it in ``[low, high]`` (``(low,
    high]`` without ``lowest``), naming ``what`` the value is when it is out."""
    def check(text: str) -> Number:
        value = parse(text)
        if not (low <= value if lowest else low < value) or value > high:
            span = f"{low} to {high}" if lowest else f"in ({low}, {high}]"
            raise argparse.ArgumentTypeError(f"{what} is {span}, got {text}")
        return value

    check.__name__ = what.split()[-1]  # argparse names the type by it
    return check


seed_value = within(whole_number, 0, MAX_SEED, "a seed")
port = within(positive_int, 1, 65535, "a port")
share = within(positive_float, 0.0, 1.0, "a share", lowest=False)


def add_shift_share(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--shift-share", type=share, default=None, metavar="F",
                        help="share of each batch that the shift-consistency pass paints again (its extra cost; "
                             f"default {default})")


def name_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def layer_weights(text: str) -> dict[str, float]:
    """``relu4_2`` or ``relu3_1:0.5,relu4_2:1``: layer names, each with an optional weight (default 1)."""
    weights = {}
    for part in name_list(text):
        name, _, weight = part.partition(":")
        weights[name.strip()] = non_negative_float(weight) if weight else 1.0
    if not weights:
        raise argparse.ArgumentTypeError("name at least one layer (see `impasto layers`)")
    return weights


def float_list(text: str) -> list[float]:
    return [non_negative_float(part) for part in name_list(text)]


class MaskBox(tuple):
    """``X0,Y0,X1,Y1`` from ``--mask-box``: a region the content photo's subject is cut from."""


def mask_box(text: str) -> MaskBox:
    numbers = [whole_number(part.strip()) for part in text.split(",")]
    if len(numbers) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 numbers X0,Y0,X1,Y1, got {text!r}")
    if numbers[2] <= numbers[0] or numbers[3] <= numbers[1]:
        raise argparse.ArgumentTypeError(f"the box {text} is empty: X1 must be more than X0 and Y1 more than Y0")
    if min(numbers) < 0:
        raise argparse.ArgumentTypeError(f"the box {text} has a negative coordinate")
    return MaskBox(numbers)
