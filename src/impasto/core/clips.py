"""Clips as data: reading frames from a video file (PyAV, which carries its own FFmpeg), a folder of
numbered images or a still photo; a clip's settings and report; writing the finished frames into a
video with the input's sound.  No optical flow here (:mod:`impasto.core.flow`), no painting."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.fields import CLIP, setting


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



@dataclass
class VideoSettings:
    """How a clip is processed, whatever the method."""

    size: int | None = 480
    start: int = setting(0, group=CLIP, check="non_negative", help="first frame (0-based)")
    end: int | None = setting(None, group=CLIP, check="positive", default_text="the end",
                              help="stop before this frame")
    fps: float | None = setting(None, group=CLIP, check="positive", default_text="25",
                                help="frame rate of a folder of frames (a video keeps its own)")
    coherent: bool = setting(True, flag="--independent", negate=True, group=CLIP,
                             help="stylize every frame on its own (no temporal coherence)")
    flow: str = setting("dis", group=CLIP, choices=("dis", "farneback"), help="optical flow")
    long_term: int = setting(0, group=CLIP, check="non_negative", metavar="K",
                             help="optimize: also stay consistent with K frames further back")
    keep_frames: bool = setting(False, group=CLIP, help="keep OUTPUT.frames/ after encoding")
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



def read_clip(path: str | os.PathLike, size: tuple[int, int] | None = None, fps: float | None = None) -> list[np.ndarray]:
    """Every frame of a clip as RGB uint8, optionally resized (for scoring)."""
    clip = open_clip(path, fps)
    frames = []
    for frame, _ in clip.frames():
        if size is not None and frame.shape[:2] != size:
            frame = np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.Resampling.LANCZOS))
        frames.append(frame)
    return frames

