"""Atomic file writes, shared by everything that writes results: images, frames, model files.

A write goes to a temporary file beside the target, is flushed to disk, then renamed over the
target; a failure at any point (full disk, Ctrl-C) leaves no partial file and an existing file
untouched.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from impasto.core.errors import ImpastoError


#: A temporary file untouched for this long is a leftover of a crashed run, not a write in progress.
STALE_SECONDS = 600


def _temp_file(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, named as every write names them (``.NAME.XXXX.part``)."""
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent if str(path.parent) else ".")


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, not after the work, if ``path``'s temporary file cannot be made (folder, permissions,
    a name too long once the temporary prefix and suffix are added)."""
    path = Path(path)
    try:
        fd, probe = _temp_file(path)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ImpastoError("cannot write output: the file name is too long", path) from None
        raise ImpastoError(f"cannot write output: the folder is not writable ({exc.strerror or exc})", path) from None
    os.close(fd)
    os.unlink(probe)


def refuse_inputs(target: str | os.PathLike, inputs: Iterable[object], what: str = "output") -> None:
    """The one check every writer makes: ``target`` is not an input file, and not inside an input folder.

    ``inputs`` may hold anything (in-memory images, None, names of shipped models); only paths of
    existing files and folders count.  A file is compared by identity (hard links and other
    spellings of the same path are caught); a folder refuses targets anywhere beneath it, since
    impasto reads folders recursively (training sets) or by their contents (frames).
    """
    target = Path(target)
    resolved = target.resolve()
    for source in inputs:
        if not isinstance(source, (str, os.PathLike)):
            continue
        source = Path(source)
        if not source.exists():
            continue
        if source.is_dir():
            folder = source.resolve()
            if resolved == folder or folder in resolved.parents:
                raise ImpastoError(f"refusing to write the {what} inside an input folder ({source})", target)
        elif target.exists() and target.samefile(source):
            raise ImpastoError(f"refusing to overwrite an input (choose another {what})", target)


_cleaned: set[str] = set()
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.part")


def remove_stale_parts(path: Path) -> None:
    """Delete temporary files a crashed run left in ``path``'s folder (older than :data:`STALE_SECONDS`).

    Once per folder and process: a clip writes thousands of frames into one folder.
    """
    import time

    folder = path.parent if str(path.parent) else Path(".")
    key = os.fspath(folder.resolve())
    if key in _cleaned:
        return
    _cleaned.add(key)
    now = time.time()
    for part in folder.glob(".*.part"):
        if not TEMP_NAME.fullmatch(part.name):  # only names this module makes: .NAME.XXXXXXXX.part
            continue
        try:
            if now - part.stat().st_mtime > STALE_SECONDS:
                part.unlink()
        except OSError:
            pass


def remove_parts_of(path: Path) -> None:
    """Delete the temporary files of writes to ``path`` that died (a killed worker's), once no
    writer of ``path`` is left running."""
    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        if TEMP_NAME.fullmatch(part.name):
            part.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file and move it to ``path`` when it succeeded."""
    path = Path(path)
    remove_stale_parts(path)
    try:
        fd, tmp_name = _temp_file(path)
    except OSError as exc:
        raise ImpastoError(f"cannot write output ({exc.strerror or exc})", path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise ImpastoError(f"cannot write output ({exc.strerror or exc})", path) from None
        raise
    return path


def file_digest(path: str | os.PathLike) -> str:
    """A short hash of a file's bytes (which model file a job used)."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
