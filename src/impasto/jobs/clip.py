"""Video in and out, and stylizing clips so that the result is stable over time.

Frames come from a video file (decoded by PyAV, which carries its own FFmpeg) or a folder of
numbered images, and go to a video file (audio copied from the input) or a folder of frames.

Work is done frame by frame into a folder of PNG frames (the output folder itself, or
``OUTPUT.frames/`` beside an output video), each written atomically.  Running the same command
again skips the frames already there, so Ctrl-C or a crash loses nothing; the video is encoded
once every frame exists, and the frame folder is then removed.

The work is a pipeline of three threads, so that the slowest stage sets the pace: one decodes
frames and computes the optical flow between originals ahead of time, the caller's thread warps
the previous outputs and stylizes, and one writes the finished frames (all queued frames are
written before a stop or an error is reported).

Temporal coherence (see :mod:`impasto.core.flow` for the flow and the reliability masks):

- optimisation (Ruder et al. 2016): each frame starts from the previous stylized frame warped into
  it and adds a temporal loss that keeps reliable pixels close to it (optionally also to frames
  further back, ``long_term``), with fewer iterations than a still image needs;
- feed-forward models and AdaIN: each output is blended with the previous (stabilised) output
  warped into the frame, where the flow is reliable; AdaIN's style statistics are computed once.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from impasto.core import flow as flowlib
from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.clips import Clip, VIDEO_FORMATS, VideoReport, VideoSettings, encode_video, frame_array, frame_size, frame_tensor, open_clip, read_clip, soundtrack
from impasto.core.files import atomic_write, file_digest
from impasto.methods.frames import FrameStylizer, ScheduledFrames



def job_stamp(source: Path, stylizer: FrameStylizer, settings: VideoSettings, size: tuple[int, int]) -> dict:
    recipe = getattr(stylizer, "recipe", None) or {"method": stylizer.name}
    stamp = {"source": os.fspath(source.resolve()), "method": stylizer.name, "size": list(size),
             "start": settings.start, "end": settings.end, "coherent": settings.coherent, "flow": settings.flow,
             "long_term": settings.long_term, "recipe": recipe}
    if settings.audio is not None:
        stamp["audio"] = file_digest(soundtrack(settings.audio))
    return json.loads(json.dumps(stamp, default=str, sort_keys=True))  # as it reads back from the file


def stylize_video(source: str | os.PathLike | Clip, output: str | os.PathLike, stylizer: FrameStylizer,
                  settings: VideoSettings | None = None,
                  on_frame: Callable[[int, int | None, bool], None] | None = None,
                  anchors: Callable[[int], list[tuple[torch.Tensor, torch.Tensor]]] | None = None) -> VideoReport:
    """Stylize a clip into a video file or a folder of frames; reruns resume where the last one stopped.

    ``anchors(index)``: extra (image, weight) targets for the frame ``index`` (0-based in the clip),
    after the warped earlier outputs (alone, on a chunk's first frame: its start) -- how a chunk of
    a clip is joined to its neighbours' frames."""
    settings = settings or VideoSettings()
    if settings.flow not in flowlib.METHODS:
        raise ImpastoError(f"unknown flow method {settings.flow!r}; choose {' or '.join(flowlib.METHODS)}")
    if settings.start < 0 or (settings.end is not None and settings.end <= settings.start):
        raise ImpastoError(f"empty frame range {settings.start}..{settings.end}")
    clip = source if isinstance(source, Clip) else open_clip(source, settings.fps)
    output, work, to_folder = output_folders(output, clip)
    size = frame_size(clip.height, clip.width, settings.size)
    created = claim_work_folder(work, job_stamp(clip.path, stylizer, settings, size))
    try:
        return _stylize_frames(clip, output, work, stylizer, settings, size, to_folder, on_frame, anchors)
    except ImpastoError:
        release_work_folder(work, created)
        raise


def release_work_folder(work: Path, created: bool) -> None:
    """After a run failed before its first frame (bad input, a range past the end): leave nothing
    behind that would block the next job."""
    if not any(p.name.startswith(("frame_", "key_")) for p in work.iterdir()):
        if created:
            shutil.rmtree(work, ignore_errors=True)
        else:
            (work / JOB_RECORD).unlink(missing_ok=True)


JOB_RECORD = ".impasto-job.json"


def output_folders(output: str | os.PathLike, clip: Clip) -> tuple[Path, Path, bool]:
    """(output, the folder its frames are made in, whether the output is that folder), after checking
    the output's format, its folder and that it is not the input."""
    output = Path(output)
    to_folder = output.suffix == ""
    if not to_folder and output.suffix.lower() not in VIDEO_FORMATS:
        known = ", ".join(sorted(VIDEO_FORMATS))
        raise ImpastoError(f"unknown video format {output.suffix!r}; use one of {known}, or a folder (no extension)", output)
    if not output.parent.is_dir():
        raise ImpastoError("cannot write output: the folder does not exist", output)
    if output.exists() and clip.path.resolve() == output.resolve():
        raise ImpastoError("refusing to overwrite the input (choose another output)", output)
    return output, (output if to_folder else output.with_name(output.name + ".frames")), to_folder


def claim_work_folder(work: Path, stamp: dict[str, Any]) -> bool:
    """Make ``work`` this job's: a folder holding another job's frames (or an unreadable record) is
    refused, else ``stamp`` (everything that shapes a frame) is recorded.  True if it was created."""
    stamp = json.loads(json.dumps(stamp, sort_keys=True, default=lambda o: getattr(o, "__dict__", str(o))))
    record = work / JOB_RECORD
    if work.exists() and any(work.iterdir()):
        try:
            recorded = json.loads(record.read_text()) if record.exists() else None
        except (OSError, ValueError):
            recorded = None  # an unreadable record proves nothing about the frames: refuse, never guess
        if recorded != stamp:
            raise ImpastoError("holds frames of another job (other input, method, model, styles, options, size "
                               "or range); delete it or choose another output", work)
    created = not work.exists()
    work.mkdir(parents=True, exist_ok=True)
    atomic_write(record, lambda handle: handle.write(json.dumps(stamp, sort_keys=True).encode()))
    return created


def _stylize_frames(clip, output: Path, work: Path, stylizer: FrameStylizer, settings: VideoSettings,
                    size: tuple[int, int], to_folder: bool,
                    on_frame: Callable[[int, int | None, bool], None] | None,
                    anchors: Callable[[int], list[tuple[torch.Tensor, torch.Tensor]]] | None = None) -> VideoReport:
    import time

    started = time.perf_counter()
    total = None
    if clip.count is not None:
        total = max(0, min(clip.count, settings.end or clip.count) - settings.start)
    previous_outputs: list[np.ndarray] = []  # stylized, float32 H x W x 3, nearest first
    keep = 1 + max(0, settings.long_term)
    written = skipped = count = 0
    times: list[float] = []
    writer = FrameWriter(work_frames=not to_folder)
    batch = getattr(stylizer, "batch", 1)  # one-pass stylizers paint several frames per network call
    source = ahead(_prepared_frames(clip, work, settings, size), depth=max(3, batch + 1))
    try:
        for group in _groups(source, batch):
            fresh = [frame.content for frame in group if not frame.done_before]
            painted = iter(stylizer.paint_many(fresh)) if batch > 1 and fresh else None
            for frame in group:
                times.append(frame.moment)
                if frame.done_before:
                    stylized = images.read_image(frame.target)
                    skipped += 1
                else:
                    history = _history(frame.motions, previous_outputs) if settings.coherent else []
                    if anchors is not None:
                        history += anchors(frame.index)
                    if painted is not None:
                        stylized = stylizer.settle(next(painted), history).clamp(0, 1)
                    else:
                        if isinstance(stylizer, ScheduledFrames):
                            stylizer.seek(frame.index - settings.start)
                        stylized = stylizer(frame.content, history).clamp(0, 1)
                    writer.put(stylized, frame.target)
                    written += 1
                count += 1
                previous_outputs = [flowlib.to_array(stylized), *previous_outputs][:keep]
                if on_frame is not None:
                    on_frame(count, total, frame.done_before)
    finally:
        source.close()
        writer.close()  # every stylized frame reaches the disk, also on Ctrl-C
    if count == 0:
        raise ImpastoError(f"no frames in the range {settings.start}..{settings.end}", clip.path)
    audio = "none"
    if not to_folder:
        frames = [work / f"frame_{settings.start + i + 1:06d}.png" for i in range(count)]
        audio = encode_video(frames, output, clip, settings, times)
        if not settings.keep_frames:
            shutil.rmtree(work)
    return VideoReport(output, count, skipped, clip.fps, time.perf_counter() - started, audio, times)


@dataclass
class PreparedFrame:
    """A decoded frame with what the stylizer will need, made ahead on the decoding thread."""

    target: Path  # its PNG in the work folder
    index: int  # in the clip, from 0
    moment: float
    content: torch.Tensor  # (1, 3, H, W) at the working size
    done_before: bool  # an earlier run wrote it
    motions: list[tuple[np.ndarray, np.ndarray]]  # (backward flow, reliability) to each earlier frame


def _prepared_frames(clip: Clip, work: Path, settings: VideoSettings, size: tuple[int, int]) -> Iterator[PreparedFrame]:
    previous: list[np.ndarray] = []  # originals at working size, nearest first
    keep = 1 + max(0, settings.long_term)
    for index, (frame, moment) in enumerate(clip.frames(settings.start, settings.end)):
        content = frame_tensor(frame, size)
        original = frame_array(content)
        target = work / f"frame_{settings.start + index + 1:06d}.png"
        done_before = target.exists()
        motions = []
        if settings.coherent and not done_before:
            motions = [flowlib.frame_motion(earlier, original, settings.flow) for earlier in previous]
        previous = [original, *previous][:keep]
        yield PreparedFrame(target, settings.start + index, moment, content, done_before, motions)


def _groups(items: Iterator, size: int) -> Iterator[list]:
    """Consecutive items in lists of up to ``size``."""
    group: list = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def ahead(items: Iterator, depth: int = 3) -> Iterator:
    """``items``, made on a background thread up to ``depth`` ahead (decoding and optical flow run
    while the caller stylizes); an error there is raised here, and closing this stops the thread."""
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((end, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            box.put((end, exc))

    thread = threading.Thread(target=produce, name="impasto-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = box.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()


#: zlib level of the frames an encoded clip keeps in its work folder (to resume, then to encode):
#: level 1 writes a frame several times faster than Pillow's default 6, on the thread that shares
#: the CPU with the network, for somewhat larger files (docs/figures.md, Video).  Frames the user
#: asked for as a folder keep the default.
WORK_FRAME_PNG_LEVEL = 1


class FrameWriter:
    """Writes stylized frames (atomically) on a thread of its own, in order; ``close`` waits for all
    of them and raises the first error a write met.  ``work_frames``: an encoded clip's work folder
    (:data:`WORK_FRAME_PNG_LEVEL`)."""

    def __init__(self, depth: int = 4, work_frames: bool = False) -> None:
        import queue
        import threading

        self._box: queue.Queue = queue.Queue(maxsize=depth)
        self._png_level = WORK_FRAME_PNG_LEVEL if work_frames else None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="impasto-write", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while True:
            job = self._box.get()
            if job is None:
                return
            if self._error is None:
                try:
                    images.save_image(*job, png_level=self._png_level)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def put(self, image: torch.Tensor, path: Path) -> None:
        if self._error is not None:
            self.close()
        self._box.put((image, path))

    def close(self) -> None:
        if self._thread.is_alive():
            self._box.put(None)
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _history(motions: Sequence[tuple[np.ndarray, np.ndarray]],
             previous_outputs: list[np.ndarray]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Earlier outputs warped into this frame, with the pixels where each is the reliable prediction.

    Long-term targets only count where no nearer frame is reliable (Ruder et al.'s long-term weights).
    """
    history = []
    covered = None  # pixels a nearer frame already predicts reliably
    for (backward, reliable), output in zip(motions, previous_outputs):
        weight = reliable if covered is None else np.clip(reliable - covered, 0.0, 1.0)
        covered = reliable if covered is None else np.maximum(covered, reliable)
        history.append((flowlib.to_tensor(flowlib.warp(output, backward)).clamp(0, 1), flowlib.to_tensor(weight)))
    return history



def score_video(original: str | os.PathLike, stylized: str | os.PathLike, method: str = "dis",
                fps: float | None = None, start: int = 0) -> tuple[float, list[float]]:
    """Warping error of ``stylized`` measured with the flow of ``original`` (at the stylized size).

    ``start``: the original's frame where the stylized clip begins (a clip made with --start/--end)."""
    styled = read_clip(stylized, fps=fps)
    for index, frame in enumerate(styled):
        if frame.shape != styled[0].shape:
            raise ImpastoError(f"frames differ in size: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                               f"frame 0 {styled[0].shape[1]}x{styled[0].shape[0]}", stylized)
    frames = read_clip(original, styled[0].shape[:2], fps=fps)[start:start + len(styled)]
    if len(frames) < len(styled):
        raise ImpastoError(f"the original has only {len(frames)} frames from frame {start}, the stylized clip "
                           f"{len(styled)}", original)
    return flowlib.warping_error(frames, styled, method)
