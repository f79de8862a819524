"""The history of runs: every studio result (and every CLI run with ``--record``) in one SQLite
database under the user's data folder, each run's files in a folder beside it.

A run keeps what is needed to look at it again and to make it again: the result (a video and its
poster frame), the inputs as they were used (photo, styles, mask; a clip and its sound), every setting, how it ended, and the exact ``impasto``
command that reproduces it from those files.  The studio's gallery reads it, so it survives a
reloaded page and a restarted server; a run can be deleted, or downloaded as a zip bundle.

Schema (table ``runs``; one row per run, ``id`` also names its folder)::

    id TEXT PRIMARY KEY      -- time-sortable: YYYYmmdd-HHMMSS-<8 hex>
    created REAL             -- seconds since the epoch
    method TEXT              -- a method's registry name
    status TEXT              -- done, converged, iterations, interrupted, ...
    seconds REAL             -- how long the work took
    width INTEGER, height INTEGER
    settings TEXT            -- JSON: the request's options as given
    inputs TEXT              -- JSON: [{"role": "content"|"style"|"mask"|"clip"|"sound", "file": NAME, "sha256": HEX}]
    command TEXT             -- the impasto command, run in the run's folder
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from impasto.core import images
from impasto.core.files import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, method TEXT NOT NULL, status TEXT NOT NULL,
    seconds REAL NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    settings TEXT NOT NULL, inputs TEXT NOT NULL, command TEXT NOT NULL
)
"""
RESULT = "result.png"
#: The kept pictures' zlib level: lossless as any, about five times faster to write than the default
#: (a run is kept while its page waits), the files about a tenth larger.
PNG_LEVEL = 1


def default_folder() -> Path:
    """``IMPASTO_HISTORY`` if set, else the user's data folder (platformdirs)."""
    if os.environ.get("IMPASTO_HISTORY"):
        return Path(os.environ["IMPASTO_HISTORY"])
    import platformdirs

    return Path(platformdirs.user_data_dir("impasto")) / "history"


@dataclass
class Run:
    id: str
    created: float
    method: str
    status: str
    seconds: float
    width: int
    height: int
    settings: dict[str, Any]
    inputs: list[dict[str, str]]
    command: str
    folder: Path

    @property
    def result(self) -> Path:
        """The run's picture (a video's poster frame)."""
        return self.folder / RESULT

    @property
    def made(self) -> Path | None:
        """What a run made that is not a picture (a video), kept beside its poster frame."""
        return next((path for path in sorted(self.folder.glob("result.*")) if path.name != RESULT), None)

    def caption(self) -> str:
        """'starry night · arbitrary, 512x384, 1.2 s, 2026-12-06 20:30': the painting(s) first."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        paintings = " + ".join(self.settings.get("paintings") or [])
        return (f"{paintings} · " if paintings else "") + f"{self.method}, {self.width}x{self.height}, " \
            f"{self.seconds:.1f} s, {when}"


def _keep(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """A file kept in a run's folder: a hard link where the file system allows (no second copy of a
    clip; the run keeps it when the original goes), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _sha256(path: Path) -> str:
    """A file's digest; a folder's: of its files' names and contents, in order."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if item.is_file():
            digest.update(item.relative_to(path).as_posix().encode() if path.is_dir() else b"")
            with open(item, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


class History:
    """The runs database and the runs' folders, in ``folder``."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "history.sqlite3"
        with self._connect() as db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)  # a studio and a CLI may write at once
        db.row_factory = sqlite3.Row
        return db

    def record(self, method: str, result: torch.Tensor, inputs: Sequence[tuple[str, torch.Tensor]],
               settings: dict[str, Any], status: str, seconds: float, command: Sequence[str],
               files: Sequence[tuple[str, str | os.PathLike]] = (), made: str | os.PathLike | None = None) -> Run:
        """Keep a finished run: ``inputs`` are (role, image) pairs; ``files`` (role, file) inputs kept
        as the files they are (a clip, a sound), named ``ROLE.ext``; ``made``: what the run made when
        it is not a picture (a video, kept as ``result.ext``; ``result`` is then its poster frame);
        ``command`` is the impasto command's arguments with the inputs named ``{content}``,
        ``{style1}``..., ``{mask1}``..., ``{clip}``, ``{sound}``."""
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
        folder = self.folder / run_id
        folder.mkdir()
        images.save_image(result, folder / RESULT, png_level=PNG_LEVEL)
        counts: dict[str, int] = {}
        names: dict[str, str] = {}
        listed = []
        for role, image in inputs:
            counts[role] = counts.get(role, 0) + 1
            name = f"{role}.png" if role == "content" else f"{role}{counts[role]}.png"
            path = images.save_image(image, folder / name, png_level=PNG_LEVEL)
            listed.append({"role": role, "file": name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
            names[name.removesuffix(".png")] = name
        for role, source in files:  # a file as it is; a folder of frames as a folder
            if Path(source).is_dir():
                name = role
                shutil.copytree(source, folder / name, copy_function=_keep)
            else:
                name = role + Path(source).suffix.lower()
                _keep(source, folder / name)
            listed.append({"role": role, "file": name, "sha256": _sha256(folder / name)})
            names[role] = name
        again = "again.png"
        if made is not None and Path(made).is_dir():  # a folder of frames
            again = "again"
            shutil.copytree(made, folder / "result.frames", copy_function=_keep)
        elif made is not None:
            again = "again" + Path(made).suffix.lower()
            _keep(made, folder / ("result" + Path(made).suffix.lower()))
        import shlex

        text = " ".join(shlex.quote(part.format(**names)) for part in ["impasto", *command, "-o", again])
        height, width = result.shape[-2:]
        run = Run(run_id, time.time(), method, status, float(seconds), int(width), int(height), dict(settings),
                  listed, text, folder)
        with self._connect() as db:
            db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run.id, run.created, run.method, run.status, run.seconds, run.width, run.height,
                        json.dumps(run.settings), json.dumps(run.inputs), run.command))
        return run

    def runs(self, limit: int = 200) -> list[Run]:
        """The latest runs first (those whose folder is gone are left out)."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC, id DESC LIMIT ?", (limit,)).fetchall()
        found = [self._run(row) for row in rows]
        return [run for run in found if run.result.exists()]

    def get(self, run_id: str) -> Run | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run(row)

    def _run(self, row: sqlite3.Row) -> Run:
        return Run(row["id"], row["created"], row["method"], row["status"], row["seconds"], row["width"],
                   row["height"], json.loads(row["settings"]), json.loads(row["inputs"]), row["command"],
                   self.folder / row["id"])

    def delete(self, run_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        if "/" not in run_id and run_id not in ("", ".", ".."):
            shutil.rmtree(self.folder / run_id, ignore_errors=True)

    def bundle(self, run_id: str, target: str | os.PathLike) -> Path:
        """A zip of the run: its result, its inputs, ``run.json`` and ``command.sh`` (run it inside)."""
        run = self.get(run_id)
        if run is None:
            raise KeyError(run_id)
        record = {"id": run.id, "created": run.created, "method": run.method, "status": run.status,
                  "seconds": run.seconds, "size": [run.width, run.height], "settings": run.settings,
                  "inputs": run.inputs, "command": run.command}

        def write(handle) -> None:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as bundle:
                bundle.write(run.result, f"{run.id}/{RESULT}")
                kept = [run.folder / item["file"] for item in run.inputs] + ([run.made] if run.made else [])
                for path in kept:  # files, and folders of frames file by file
                    for part in sorted(path.rglob("*")) if path.is_dir() else [path]:
                        bundle.write(part, f"{run.id}/{part.relative_to(run.folder).as_posix()}")
                bundle.writestr(f"{run.id}/run.json", json.dumps(record, indent=2))
                bundle.writestr(f"{run.id}/command.sh", f"#!/bin/sh\n# made {run.caption()}\n{run.command}\n")

        target = Path(target)
        atomic_write(target, write)
        return target
