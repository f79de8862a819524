"""Painting many photos into files: the use case a front end (the CLI's folders, a script) calls.

One bad photo is reported and skipped, the others are written; Ctrl-C keeps every finished file
and ends the batch; one-pass methods paint the loaded photos of one size several per network call
(``request.frame_batch()``: 8 on a GPU, 1 on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from impasto.core.errors import ImpastoError
from impasto.core.images import save_image
from impasto.methods import Method, Painter


@dataclass
class BatchReport:
    """How a batch ended: files written, left as they were (``skip_existing``), failed; and
    whether Ctrl-C stopped it."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False


def paint_files(method: Method, painter: Painter, sources: Sequence[Path], targets: Sequence[Path],
                skip_existing: bool = False, on_progress: Callable[[int], None] | None = None,
                on_error: Callable[[ImpastoError], None] | None = None) -> BatchReport:
    """Paint ``sources[k]`` into ``targets[k]`` with a prepared painter; ``on_progress(photos
    handled so far)`` after each, ``on_error`` for each photo that could not be painted."""
    report = BatchReport()
    batch = painter.request.frame_batch() if method.one_pass else 1
    waiting: dict[tuple, list[tuple[Path, torch.Tensor]]] = {}  # loaded photos by size

    def handled() -> None:
        if on_progress is not None:
            on_progress(report.done + report.skipped + report.failed)

    def failed(error: ImpastoError, count: int = 1) -> None:
        report.failed += count  # one bad photo does not stop a batch
        if on_error is not None:
            on_error(error)

    def paint_waiting(shape: tuple) -> None:
        group, written = waiting.pop(shape), 0
        try:
            for (target, _), image in zip(group, painter.paint_many([photo for _, photo in group])):
                save_image(image, target)
                written += 1
        except ImpastoError as error:
            failed(error, len(group) - written)
        report.done += written

    try:
        for source, target in zip(sources, targets):
            if skip_existing and target.exists():
                report.skipped += 1
            else:
                try:
                    if batch > 1:
                        photo = painter.request.load(source)
                        waiting.setdefault(tuple(photo.shape), []).append((target, photo))
                        if len(waiting[tuple(photo.shape)]) == batch:
                            paint_waiting(tuple(photo.shape))
                    else:
                        result = painter.paint(source)
                        if result.stop_reason == "interrupted":
                            raise KeyboardInterrupt
                        save_image(result.image, target)
                        report.done += 1
                except ImpastoError as error:
                    failed(error)
            handled()
        for shape in list(waiting):
            paint_waiting(shape)
            handled()
    except KeyboardInterrupt:
        report.interrupted = True
    return report
