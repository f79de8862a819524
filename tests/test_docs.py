"""What README.md and the command's help say about defaults is what the code does (texts written by
hand drift; these read the figures back out of them)."""

from __future__ import annotations

import re
from pathlib import Path

from impasto import images, methods
from impasto.cli import build_parser
from impasto.methods.neighbours import NeighbourSettings
from impasto.optimize import StyleSettings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def _options_table() -> dict[str, str]:
    """The README's options table: flag cell -> default cell."""
    start = README.index("### Options")
    rows = re.findall(r"^\| (`[^|]+`) \| ([^|]+) \|", README[start:], flags=re.M)
    return {flag: default.strip() for flag, default in rows}


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def test_the_readme_options_table_gives_the_codes_defaults():
    table = _options_table()
    request, settings = methods.Request(), StyleSettings()
    assert _numbers(table["`-s/--size`"]) == [request.size] == [settings.size]
    assert _numbers(table["`--style-scale`"]) == [request.style_scale]
    assert _numbers(table["`-n/--iterations`"]) == [settings.iterations, NeighbourSettings().iterations]
    assert _numbers(table["`--tolerance`, `--patience`"]) == [settings.tolerance, settings.patience]
    assert _numbers(table["`--tile-size`, `--tile-overlap`"]) == [settings.tile_size, settings.tile_overlap]
    assert _numbers(table["`--pyramid`, `--pyramid-min`"]) == [settings.pyramid_min]
    assert _numbers(table["`--max-pixels`"]) == [images.DEFAULT_MAX_PIXELS]


def _strength_defaults(text: str) -> dict[str, float]:
    """'optimize 0.5 ..., adain/arbitrary/fast 1, neighbours 0.7' -> {method: figure}."""
    found = {}
    for names, figure in re.findall(r"\b([a-z]+(?:/[a-z]+)*) (\d+(?:\.\d+)?)\b", text):
        for name in names.split("/"):
            if name in methods.names():
                found[name] = float(figure)
    return found


def test_the_strength_help_names_every_methods_own_default():
    stylize = next(action for action in build_parser()._subparsers._group_actions[0].choices["stylize"]._actions
                   if "--strength" in action.option_strings)
    said = _strength_defaults(stylize.help)
    assert said == {name: methods.get(name).default_strength for name in methods.names()}


def test_the_readme_strength_row_gives_the_methods_defaults():
    row = next(line for line in README.splitlines() if line.startswith("| `--strength`"))
    defaults = dict(re.findall(r"(Optimisation|AdaIN|fast models|neighbours)[^;|]*?(?:default |\()(\d+(?:\.\d+)?)",
                               row))
    assert float(defaults["Optimisation"]) == methods.get("optimize").default_strength
    assert float(defaults["AdaIN"]) == methods.get("adain").default_strength
    assert float(defaults["fast models"]) == methods.get("fast").default_strength
    assert float(defaults["neighbours"]) == methods.get("neighbours").default_strength
