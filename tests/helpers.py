"""Test helpers: small synthetic images and the test data folder beside the project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


#: Test and training images live beside the project, never inside it.
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def need_data(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data not present: {path}")
    return path


def stripes(size: int = 64, colours=((220, 40, 30), (250, 220, 60)), period: int = 8, vertical: bool = True) -> Image.Image:
    """A two-colour stripe texture: a simple, strong 'style'."""
    idx = np.arange(size) // (period // 2) % 2
    mask = np.broadcast_to(idx[None, :] if vertical else idx[:, None], (size, size))
    array = np.where(mask[..., None] == 1, np.array(colours[1]), np.array(colours[0])).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def gradient_photo(width: int = 64, height: int = 48) -> Image.Image:
    """A smooth 'photo' with a bright disc: some structure for content losses."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / width * 255
    g = y / height * 255
    b = 255 * ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 4) ** 2)
    return Image.fromarray(np.stack([r, g, b], axis=-1).astype(np.uint8), "RGB")


def image_folder(folder: Path, count: int, kind: str = "photo", size: int = 48) -> Path:
    """``count`` small PNGs: smooth 'photos' or striped 'paintings' in varied colours."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count + len(kind))
    for i in range(count):
        if kind == "photo":
            img = gradient_photo(size + 8 * (i % 3), size)
            img = Image.fromarray(np.roll(np.asarray(img), 7 * i, axis=1))
        else:
            colours = tuple(tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(2))
            img = stripes(size, colours, period=4 + 2 * (i % 4), vertical=bool(i % 2))
        img.save(folder / f"{kind}_{i:02d}.png")
    return folder


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the ``impasto`` command in this process: (exit code, stdout, stderr)."""
    from impasto.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The single non-empty line of ``err`` (a user mistake is one line, never a traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]
