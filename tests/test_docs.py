"""The documentation: the site builds strictly (a broken link, a missing anchor or a page left out of
the navigation fails), the README's links lead somewhere, and what the docs and the command's help
say about defaults is what the code does (texts written by hand drift; these read the figures back
out of them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from impasto.core import images
from impasto import methods
from impasto.cli import build_parser
from impasto.methods.neighbours import NeighbourSettings
from impasto.engines.optimize import StyleSettings

ROOT = Path(__file__).parents[1]
CONTROLS = (ROOT / "docs" / "controls.md").read_text(encoding="utf-8")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of ``config`` into ``site``, with this interpreter."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # the theme's notice about MkDocs' own future
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=config.parent, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_site_builds_strictly(tmp_path):
    built = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    for page in ("index.html", "architecture.html", "figures.html", "archive/benchmarks-history.html"):
        assert (tmp_path / "site" / page).is_file(), page
    assert not list((tmp_path / "site").glob("*.py")), "the gallery scripts are not pages"


@pytest.mark.parametrize("fault, pages, expected", [
    ("a link to a page that is not there", {"index.md": "# Home\n\n[gone](nowhere.md)\n"}, "nowhere.md"),
    ("a link to a heading that is not there", {"index.md": "# Home\n\n[gone](other.md#nowhere)\n",
                                               "other.md": "# Other\n"}, "#nowhere"),
    ("a page left out of the navigation", {"index.md": "# Home\n", "stray.md": "# Stray\n"}, "stray.md"),
])
def test_the_site_build_fails_on(tmp_path, fault, pages, expected):
    """The project's own settings (validation, strictness) on a small site with one fault."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text, encoding="utf-8")
    config["docs_dir"] = str(docs)
    config["nav"] = [{"Home": "index.md"}] + ([{"Other": "other.md"}] if "other.md" in pages else [])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    built = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0, fault
    assert expected in built.stdout + built.stderr


def _relative_links(text: str) -> list[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    return [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]


@pytest.mark.parametrize("page", ["README.md", "BENCHMARKS.md"])
def test_the_pages_outside_the_site_link_to_files_that_exist(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    missing = [link for link in _relative_links(text) if not (ROOT / link).exists()]
    assert _relative_links(text) and not missing


def test_the_readme_keeps_the_two_commands_and_stays_short():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
    assert len(readme.splitlines()) <= 200


def _options_table() -> dict[str, str]:
    """The options table of docs/controls.md: flag cell -> default cell."""
    start = CONTROLS.index("## Every option")
    rows = re.findall(r"^\| (`[^|]+`) \| ([^|]+) \|", CONTROLS[start:], flags=re.M)
    return {flag: default.strip() for flag, default in rows}


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", text)]


def test_the_options_table_gives_the_codes_defaults():
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


def test_the_strength_row_gives_the_methods_defaults():
    row = next(line for line in CONTROLS.splitlines() if line.startswith("| `--strength`"))
    defaults = dict(re.findall(r"(Optimisation|AdaIN|fast models|neighbours)[^;|]*?(?:default |\()(\d+(?:\.\d+)?)",
                               row))
    assert float(defaults["Optimisation"]) == methods.get("optimize").default_strength
    assert float(defaults["AdaIN"]) == methods.get("adain").default_strength
    assert float(defaults["fast models"]) == methods.get("fast").default_strength
    assert float(defaults["neighbours"]) == methods.get("neighbours").default_strength
