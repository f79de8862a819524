"""Sample images that need no download: a photo from scikit-image, a style the project paints itself,
and the built-in public-domain paintings (``paintings/``, credited in ``paintings/CREDITS.md``).

The style is a procedural "brushstroke" painting: thousands of short strokes that follow a smooth
swirling flow field, in a palette of blues, ochres and whites.  It has the texture, strong
orientation and limited palette that make a good style target, and no licence question.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from impasto.core.errors import ImpastoError

#: Palettes (RGB): five background colours, three accents, one outline colour.
PALETTES = {
    "night": [  # deep blues, cobalt, teal; ochre, lemon, cream
        (18, 32, 78), (30, 60, 130), (52, 96, 170), (86, 140, 196), (40, 110, 120),
        (212, 170, 60), (236, 210, 90), (246, 236, 190), (12, 20, 40),
    ],
    "ember": [  # maroon, brick, vermilion, rust, plum; amber, gold, pale yellow
        (90, 20, 24), (150, 40, 30), (200, 70, 40), (170, 90, 50), (110, 40, 70),
        (240, 160, 40), (250, 210, 80), (255, 240, 200), (30, 10, 10),
    ],
}


PAINTINGS = Path(__file__).parents[1] / "paintings"


def paintings() -> dict[str, Path]:
    """The built-in paintings: name -> file (public domain; see paintings/CREDITS.md)."""
    return {path.stem: path for path in sorted(PAINTINGS.glob("*.jpg"))}


def painting_credits() -> dict[str, str]:
    """name -> "Title, Artist (dates), year", from the credits table."""
    credits = {}
    for line in (PAINTINGS / "CREDITS.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in paintings():
            credits[cells[0]] = f"{cells[1]}, {cells[2]}, {cells[3]}"
    return credits


def resolve_style(value: str) -> str:
    """A style argument: a file that exists as it is, else a built-in painting's name -> its file."""
    if Path(value).exists():
        return value
    found = paintings().get(value)
    return str(found) if found is not None else value


def sample_photo_path(name: str = "chelsea.png") -> Path:
    """A photo that scikit-image ships in its wheel (``chelsea.png``, ``astronaut.png``, ``coffee.png``...)."""
    try:
        import importlib.resources as resources

        path = Path(str(resources.files("skimage") / "data" / name))
    except ModuleNotFoundError:
        raise ImpastoError("the sample photo comes with scikit-image: pip install 'impasto[demo]'") from None
    if not path.is_file():
        raise ImpastoError("sample photo not found in the installed scikit-image", path)
    return path


def _flow_angle(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth angle field: the direction of a sum of a few vortices and a gentle wave."""
    vx = np.ones_like(x) * 0.3
    vy = 0.4 * np.sin(x * rng.uniform(1, 3) * 2 * math.pi / size + rng.uniform(0, 2 * math.pi))
    for _ in range(5):
        cx, cy = rng.uniform(0, size, 2)
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy + (0.02 * size) ** 2
        falloff = np.exp(-r2 / (2 * (rng.uniform(0.15, 0.3) * size) ** 2))
        spin = rng.choice([-1.0, 1.0]) * falloff / np.sqrt(r2) * size * 0.05
        vx, vy = vx - spin * dy, vy + spin * dx
    return np.arctan2(vy, vx)


def painted_style(size: int = 512, seed: int = 0, strokes: int = 6000, palette: str = "night") -> Image.Image:
    """Paint the procedural brushstroke style image (square, ``size`` px, deterministic per seed)."""
    if palette not in PALETTES:
        raise ImpastoError(f"unknown palette {palette!r}; choose one of {', '.join(PALETTES)}")
    colours = PALETTES[palette]
    rng = np.random.default_rng(seed)
    grid = np.arange(size, dtype=np.float64)
    gx, gy = np.meshgrid(grid, grid)
    angle = _flow_angle(gx, gy, rng, size)
    # Background: a vertical blend from deep blue to teal, so gaps between strokes are not white.
    top, bottom = np.array(colours[0], float), np.array(colours[4], float)
    t = (gy / size)[..., None]
    canvas = Image.fromarray(((1 - t) * top + t * bottom).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    # Warm colours cluster around a few "stars"; cool ones fill the rest.
    stars = rng.uniform(0, size, (5, 2))
    for _ in range(strokes):
        x, y = rng.uniform(0, size, 2)
        near_star = np.min(np.hypot(stars[:, 0] - x, stars[:, 1] - y)) < size * 0.09
        base = colours[rng.integers(5, 8)] if near_star or rng.random() < 0.12 else colours[rng.integers(0, 5)]
        colour = tuple(int(np.clip(c + rng.normal(0, 14), 0, 255)) for c in base)
        width = int(rng.integers(2, 7))
        points = [(x, y)]
        for _ in range(int(rng.integers(4, 12))):
            a = angle[int(y) % size, int(x) % size]
            x, y = x + 4.0 * math.cos(a), y + 4.0 * math.sin(a)
            points.append((x, y))
        draw.line(points, fill=colour, width=width, joint="curve")
        if rng.random() < 0.25:  # a dark edge beside some strokes, like a painted outline
            draw.line([(px + 2, py + 2) for px, py in points], fill=colours[8], width=1)
    return canvas.filter(ImageFilter.SMOOTH)
