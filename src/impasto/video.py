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

Temporal coherence (see :mod:`impasto.flow` for the flow and the reliability masks):

- optimisation (Ruder et al. 2016): each frame starts from the previous stylized frame warped into
  it and adds a temporal loss that keeps reliable pixels close to it (optionally also to frames
  further back, ``long_term``), with fewer iterations than a still image needs;
- feed-forward models and AdaIN: each output is blended with the previous (stabilised) output
  warped into the frame, where the flow is reliable; AdaIN's style statistics are computed once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

from . import flow as flowlib
from . import images
from .errors import ImpastoError
from .files import atomic_write, file_digest

#: Output containers: codec and pixel format of the video stream.
VIDEO_FORMATS = {
    ".mp4": ("mp4", "libx264", "yuv420p"),
    ".m4v": ("mp4", "libx264", "yuv420p"),
    ".mov": ("mov", "libx264", "yuv420p"),
    ".mkv": ("matroska", "libx264", "yuv420p"),
    ".webm": ("webm", "libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "gif", "rgb8"),
}
#: Audio codecs each container takes as they are; others are re-encoded to the first one listed.
AUDIO_CODECS = {
    "mp4": ("aac", "mp3", "alac", "opus"),
    "mov": ("aac", "mp3", "alac", "pcm_s16le"),
    "matroska": ("aac", "opus", "vorbis", "mp3", "flac", "pcm_s16le"),
    "webm": ("opus", "vorbis"),
    "gif": (),
}
TIME_BASE = Fraction(1, 90_000)  # the usual video clock: exact for 24, 25, 30 and NTSC rates
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_FOLDER_FPS = 25


# ------------------------------------------------------------------------------------------ input


@dataclass
class Clip:
    """An opened clip: where it comes from, its rate, and (when known) its frame count."""

    path: Path
    fps: Fraction
    count: int | None
    width: int
    height: int
    has_audio: bool
    files: list[Path] | None = None  # a folder of frames

    def frames(self, start: int = 0, end: int | None = None) -> Iterator[tuple[np.ndarray, float]]:
        """(RGB uint8 frame H x W x 3, its time in seconds) from ``start`` to ``end`` (exclusive).

        Times are the file's own timestamps, so variable-frame-rate clips keep their timing."""
        if self.files is not None:
            for index, path in enumerate(self.files[start:end], start=start):
                yield np.asarray(images.tensor_to_pil(images.read_image(path))), float(index / self.fps)
            return
        import av

        try:
            with av.open(os.fspath(self.path)) as container:
                for index, frame in enumerate(container.decode(video=0)):
                    if end is not None and index >= end:
                        break
                    if index >= start:
                        moment = frame.time if frame.time is not None else float(index / self.fps)
                        yield frame.to_ndarray(format="rgb24"), moment
        except av.FFmpegError as exc:
            raise ImpastoError(f"the video is damaged and could not be decoded further ({exc})", self.path) from None


def _frame_number(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def open_clip(path: str | os.PathLike, fps: float | None = None) -> Clip:
    """Open a video file or a folder of numbered frames; anything unreadable is a one-line error."""
    path = Path(path)
    if not path.exists():
        raise ImpastoError("no such video or folder of frames", path)
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()),
                       key=_frame_number)
        if not files:
            raise ImpastoError("no frames (numbered images) in this folder", path)
        first = images.read_image(files[0])
        rate = Fraction(fps if fps else DEFAULT_FOLDER_FPS).limit_denominator(1001)
        return Clip(path, rate, len(files), first.shape[-1], first.shape[-2], False, files)
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise ImpastoError("has no video stream", path)
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if fps:
                rate = Fraction(fps)
            if not rate:
                raise ImpastoError("the video has no frame rate; give one with --fps", path)
            count = stream.frames or None
            return Clip(path, Fraction(rate).limit_denominator(100_000), count, stream.codec_context.width,
                        stream.codec_context.height, bool(container.streams.audio))
    except av.FFmpegError as exc:
        raise ImpastoError(f"not a video impasto can read ({type(exc).__name__}: {exc.strerror or exc})", path) from None


def still_clip(photo: str | os.PathLike, seconds: float, fps: float | None = None) -> Clip:
    """A photo held for ``seconds``: a clip of the same frame (for sound to drive its painting)."""
    photo = Path(photo)
    first = images.read_image(photo)
    rate = Fraction(fps if fps else DEFAULT_FOLDER_FPS).limit_denominator(1001)
    count = max(1, int(round(seconds * rate)))
    return Clip(photo, rate, count, first.shape[-1], first.shape[-2], False, [photo] * count)


def soundtrack(path: str | os.PathLike) -> Path:
    """A file given as the output's soundtrack, checked before any frame is painted: it exists and
    has an audio stream (else a one-line error naming it)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ImpastoError("no such audio or video file", path)
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.audio:
                raise ImpastoError("has no audio stream", path)
    except av.FFmpegError as exc:
        raise ImpastoError(f"the audio could not be decoded ({type(exc).__name__}: {exc.strerror or exc})",
                           path) from None
    return path


def frame_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """The working size: long side ``max_side`` (never upscaled), both sides even (video codecs need it)."""
    if max_side and max(height, width) > max_side:
        height, width = images.scaled_size(height, width, max_side)
    return max(2, height - height % 2), max(2, width - width % 2)


def frame_tensor(frame: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A decoded RGB uint8 frame as a (1, 3, H, W) tensor at the working ``size`` (H, W)."""
    tensor = torch.from_numpy(np.array(frame, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.0
    return images.resize(tensor, size) if tuple(tensor.shape[-2:]) != size else tensor


def frame_array(image: torch.Tensor) -> np.ndarray:
    """A (1, 3, H, W) tensor as an RGB uint8 frame (what the optical flow reads)."""
    return np.asarray(images.tensor_to_pil(image))


# -------------------------------------------------------------------------------------- stylizers


class FrameStylizer(Protocol):
    """Stylizes one frame; ``history`` holds (warped earlier output, reliability) pairs, nearest first.

    A stylizer with a ``batch`` above 1 also has ``paint_many(frames)`` (the part of the work that
    does not depend on earlier frames, for several at once) and ``settle(painted, history)`` (the
    rest, frame by frame); :class:`FeedForwardFrames` is one.
    """

    name: str

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        ...


#: Weight of the warped previous output in a one-pass method's frame, where the flow is reliable.
DEFAULT_BLEND = 0.7


class FeedForwardFrames:
    """A one-pass stylizer, stabilised by blending with the warped previous output where reliable."""

    def __init__(self, stylize: Callable[[torch.Tensor], torch.Tensor], name: str, blend: float | None = None,
                 recipe: dict | None = None, batch: int = 1) -> None:
        blend = DEFAULT_BLEND if blend is None else blend
        if not 0.0 <= blend < 1.0:
            raise ImpastoError(f"the temporal blend must be in [0, 1), got {blend}")
        if not isinstance(batch, int) or batch < 1:
            raise ImpastoError(f"the frame batch must be a positive whole number, got {batch}", parameter="batch")
        self.stylize = stylize
        self.name = name
        self.blend = blend
        #: frames per network call: the network's pass does not depend on earlier frames (only the
        #: blend does), so a clip's frames can go through it together
        self.batch = batch
        #: everything that shapes a frame (model file's hash, styles' hashes, options): a resumed job must match it
        self.recipe = {"method": name, "blend": blend, **(recipe or {})}

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        return self.settle(self.stylize(frame), history)

    def paint_many(self, frames: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The network's pass over several frames of one clip (same size) in one call."""
        return list(self.stylize(torch.cat(list(frames))).split(1))

    def settle(self, out: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Blend a painted frame with the warped previous output where the flow is reliable."""
        if history:
            warped, reliable = history[0]
            weight = self.blend * reliable
            out = weight * warped + (1.0 - weight) * out
        return out


class ScheduledFrames:
    """A stylizer whose controls change from frame to frame (sound-driven strength and blend
    weights): ``make(strength, weights)`` builds a stylizer for one setting, and one is kept per
    distinct setting after rounding (strength to 0.02, weights to 0.05), so a clip needs a few dozen."""

    batch = 1

    def __init__(self, make: Callable[[float, tuple[float, ...] | None], FrameStylizer],
                 strengths: Sequence[float], weights: Sequence[Sequence[float]] | None, recipe: dict) -> None:
        if weights is not None and len(weights) != len(strengths):
            raise ImpastoError(f"{len(strengths)} strengths but {len(weights)} sets of weights")
        self.make = make
        self.strengths = [round(float(s) / 0.02) * 0.02 for s in strengths]
        self.weights = None if weights is None else [self._rounded(w) for w in weights]
        self._made: dict[tuple, FrameStylizer] = {}
        self.index = 0
        first = self._stylizer(0)
        self.name = first.name
        self.recipe = {**(getattr(first, "recipe", None) or {"method": first.name}), **recipe}

    @staticmethod
    def _rounded(weights: Sequence[float]) -> tuple[float, ...]:
        steps = [round(float(w) / 0.05) for w in weights]
        if sum(steps) == 0:
            steps = [1] * len(steps)
        return tuple(step / sum(steps) for step in steps)

    def _stylizer(self, index: int) -> FrameStylizer:
        index = min(index, len(self.strengths) - 1)
        key = (self.strengths[index], None if self.weights is None else self.weights[index])
        if key not in self._made:
            self._made[key] = self.make(*key)
        return self._made[key]

    def seek(self, index: int) -> None:
        """The next call paints the frame ``index`` (from the first frame painted, 0-based)."""
        self.index = index

    def __call__(self, frame: torch.Tensor, history: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        return self._stylizer(self.index)(frame, history)


# ---------------------------------------------------------------------------------------- pipeline


@dataclass
class VideoSettings:
    """How a clip is processed, whatever the method."""

    size: int | None = 480
    start: int = 0
    end: int | None = None
    fps: float | None = None  # frame folders only (default 25); a video's own rate otherwise
    coherent: bool = True
    flow: str = "dis"
    long_term: int = 0  # optimisation: also keep close to this many frames further back
    keep_frames: bool = False
    crf: int = 18  # x264 / VP9 quality (lower = better, larger)
    audio: Path | None = None  # the soundtrack to put in the video instead of the clip's own


@dataclass
class VideoReport:
    output: Path
    frames: int
    skipped: int
    fps: Fraction
    seconds: float
    audio: str  # "copied", "re-encoded (codec)", "none", or why not
    times: list[float] = dataclasses.field(default_factory=list)  # each frame's time in seconds
    keyframes: list[int] = dataclasses.field(default_factory=list)  # keyframed runs: their frames (0-based)


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
#: a 1920x1080 frame takes 61 ms at level 1 against 169 ms at Pillow's default 6, on the thread
#: that shares the CPU with the network, for files 25% larger.  Frames the user asked for as a
#: folder keep the default.
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


# ---------------------------------------------------------------------------------------- output


def encode_video(frames: Sequence[Path], output: Path, clip: Clip, settings: VideoSettings,
                 times: Sequence[float] | None = None) -> str:
    """Encode frames (PNG files) to ``output``, copying the clip's audio; atomic.

    With ``times`` (seconds, one per frame) each frame keeps its moment, so a variable frame rate
    survives; GIF, whose delays are in 1/100 s, uses the clip's average rate.
    """
    import av

    fmt, codec, pix_fmt = VIDEO_FORMATS[output.suffix.lower()]
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    first = Image.open(frames[0])
    width, height = first.size
    audio_note = "none"
    try:
        with av.open(os.fspath(partial), mode="w", format=fmt) as container:
            stream = container.add_stream(codec, rate=clip.fps)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if codec == "libx264":
                stream.options = {"crf": str(settings.crf), "preset": "medium"}
            elif codec == "libvpx-vp9":
                stream.options = {"crf": str(settings.crf + 13), "b": "0"}
            timed = times is not None and fmt != "gif"
            if timed:
                stream.codec_context.time_base = TIME_BASE
            sound = Path(settings.audio) if settings.audio is not None else (clip.path if clip.has_audio else None)
            audio_copy = _audio_plan(container, sound, fmt)
            last_pts = -1
            for index, path in enumerate(frames):
                with Image.open(path) as img:
                    frame = av.VideoFrame.from_ndarray(np.asarray(img.convert("RGB")), format="rgb24")
                if timed:
                    pts = round((times[index] - times[0]) / TIME_BASE)
                    last_pts = frame.pts = max(pts, last_pts + 1)  # strictly increasing, whatever the input did
                    frame.time_base = TIME_BASE
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            if audio_copy is not None:
                audio_note = audio_copy(container, settings.start / clip.fps,
                                        None if settings.end is None else settings.end / clip.fps)
            elif sound is not None:
                audio_note = f"dropped ({output.suffix} cannot hold audio)"
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return audio_note


def _audio_plan(container, sound: Path | None, fmt: str):
    """Add the output audio stream (the first of ``sound``'s) now, before any packet is written;
    return a function that fills it."""
    if sound is None or not AUDIO_CODECS[fmt]:
        return None
    import av

    source = av.open(os.fspath(sound))
    if not source.streams.audio:
        source.close()
        raise ImpastoError("has no audio stream", sound)
    in_stream = source.streams.audio[0]
    name = in_stream.codec_context.name
    if name in AUDIO_CODECS[fmt]:
        out_stream = container.add_stream_from_template(in_stream)

        def copy(container, begin: Fraction, end: Fraction | None) -> str:
            base = in_stream.time_base
            offset = None
            for packet in source.demux(in_stream):
                if packet.dts is None or packet.pts is None:
                    continue
                moment = packet.pts * base
                if moment < begin - Fraction(1, 100) or (end is not None and moment >= end):
                    continue
                if offset is None:
                    offset = packet.pts
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = out_stream
                container.mux(packet)
            source.close()
            return "copied"

        return copy
    target = AUDIO_CODECS[fmt][0]
    rate = in_stream.codec_context.sample_rate or 48_000
    if target == "opus":
        rate = 48_000
    out_stream = container.add_stream(target, rate=rate)
    # mono stays mono; anything with more channels (or a layout the codec cannot name) is mixed to stereo
    out_stream.layout = "mono" if in_stream.codec_context.channels == 1 else "stereo"

    def transcode(container, begin: Fraction, end: Fraction | None) -> str:
        resampler = av.AudioResampler(format=out_stream.codec_context.format.name,
                                      layout=out_stream.codec_context.layout.name, rate=rate)
        for frame in source.decode(in_stream):
            if frame.time is not None and (frame.time < float(begin) or (end is not None and frame.time >= float(end))):
                continue
            frame.pts = None
            for converted in resampler.resample(frame):
                for packet in out_stream.encode(converted):
                    container.mux(packet)
        for packet in out_stream.encode(None):
            container.mux(packet)
        source.close()
        return f"re-encoded ({name} -> {target})"

    return transcode


# ----------------------------------------------------------------------------------------- scoring


def read_clip(path: str | os.PathLike, size: tuple[int, int] | None = None, fps: float | None = None) -> list[np.ndarray]:
    """Every frame of a clip as RGB uint8, optionally resized (for scoring)."""
    clip = open_clip(path, fps)
    frames = []
    for frame, _ in clip.frames():
        if size is not None and frame.shape[:2] != size:
            frame = np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.Resampling.LANCZOS))
        frames.append(frame)
    return frames


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
