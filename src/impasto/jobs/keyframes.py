"""Video painted at keyframes and carried between them along the optical flow.

Painting every frame with the optimisation method costs tens of seconds a frame on a CPU.  As
EbSynth and "style the first frame" tools do, a clip can instead be painted well at a few
keyframes and the paint carried along the motion in between:

- keyframes: every N frames (and the last frame), or ``auto``: a new keyframe where the last one,
  carried forward, covers less than ``min_coverage`` of the frame (a shot cut covers nothing) or
  after ``max_gap`` frames; frames the user painted over in an editor (``folder``) are keyframes too.
- each keyframe is painted by the method starting from the previous keyframe carried to it, with
  the temporal loss where that carry is reliable, so that neighbouring keyframes agree.  A keyframe
  gets the iterations a frame gets in frame-by-frame video: that kept the style distance of
  painting every frame in a fraction of the time, while more iterations move keyframes further from
  the paint carried to them, so they jump more (docs/figures.md, Keyframes);
- a frame between keyframes A and B takes A carried forward and B carried backward (flows composed
  along the chain, the painting sampled once, so it stays sharp), each where its whole chain is
  reliable, blended by distance in time;
- what neither keyframe covers is repainted by the method (a few iterations with the temporal loss
  for the iterative methods, a pass for the one-pass ones) and joined softly; when the holes (specks
  aside) are under ``fill_min`` of the frame, the carries' own guess there is kept instead;
- every frame the method makes (keyframes too) is put out with half of the frame before carried
  one step where that step holds, so that no step of the clip is taken at once (:func:`_steady`).

The work folder, job record, resume and encoding (sound included) are those of :mod:`impasto.jobs.clip`;
keyframe paintings are kept there as ``key_NNNNNN.png`` until the video is encoded.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import torch

from impasto.core import flow as flowlib
from impasto.core import images
from impasto.jobs import clip as video
from impasto.core import clips
from impasto.core.errors import ImpastoError
from impasto.core.files import file_digest
from impasto.core.clips import VideoReport, VideoSettings
from impasto.methods.frames import FeedForwardFrames, FrameStylizer
from impasto.jobs.clip import FrameWriter

#: How a painting is sampled where the flow carries it: bicubic keeps brushwork sharper than
#: bilinear, which smooths it a little at every sub-pixel shift.
CARRY = cv2.INTER_CUBIC
#: Keyframes every this many frames unless told otherwise.
DEFAULT_EVERY = 8


@dataclass
class KeyframeSettings:
    """Where keyframes go and how the frames between them are made."""

    every: int | None = DEFAULT_EVERY  # a keyframe every this many frames; None: auto, or the user's alone
    auto: bool = False  # keyframes where the carried one covers too little (cuts too) or after max_gap
    folder: Path | None = None  # the user's own keyframes, named by frame number (1-based, as output frames)
    min_coverage: float = 0.7  # auto: a new keyframe when the carried one covers less of the frame
    max_gap: int = 24  # auto: at most this many frames between keyframes
    fill_min: float = 0.02  # share of a frame in holes (specks aside) below which nothing is repainted

    def validate(self) -> None:
        if self.auto and self.every is not None:
            raise ImpastoError("keyframes are either 'auto' or every N frames, not both", parameter="keyframes")
        if self.every is None and not self.auto and self.folder is None:
            raise ImpastoError("keyframes: give 'auto', every N frames, or a folder of your own", parameter="keyframes")
        if self.every is not None and (not isinstance(self.every, int) or self.every < 1):
            raise ImpastoError(f"keyframes must be 'auto' or a positive whole number of frames, got {self.every!r}",
                               parameter="keyframes")
        if not 0.0 < self.min_coverage < 1.0:
            raise ImpastoError(f"the keyframe coverage must be in (0, 1), got {self.min_coverage}",
                               parameter="min_coverage")
        if self.max_gap < 1:
            raise ImpastoError(f"the largest keyframe gap must be at least 1 frame, got {self.max_gap}",
                               parameter="max_gap")
        if not 0.0 <= self.fill_min < 1.0:
            raise ImpastoError(f"fill_min must be in [0, 1), got {self.fill_min}", parameter="fill_min")


def parse_keyframes(text: str, folder: str | os.PathLike | None = None) -> KeyframeSettings:
    """The CLI's ``--keyframes`` (``auto`` or a positive whole number; None: the user's folder alone)."""
    folder = Path(folder) if folder is not None else None
    if text is None:
        return KeyframeSettings(every=None, folder=folder)
    if text.strip().lower() == "auto":
        return KeyframeSettings(every=None, auto=True, folder=folder)
    try:
        every = int(text)
    except ValueError:
        every = 0
    if every < 1:
        raise ImpastoError(f"keyframes must be 'auto' or a positive whole number of frames, got {text!r}",
                           parameter="keyframes")
    return KeyframeSettings(every=every, folder=folder)


def user_keyframes(folder: Path, first: int, count: int | None, size: tuple[int, int]) -> dict[int, Path]:
    """The user's keyframes in ``folder`` by clip index (0-based): files whose last number is the
    frame's number (1-based, as the output frames are named), at the working size."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImpastoError("no such folder of keyframes", folder)
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in clips.FRAME_SUFFIXES or not path.is_file():
            continue
        number, _ = clips._frame_number(path)
        if number < 1:
            raise ImpastoError("a keyframe's name must end in its frame number (as frame_000009.png)", path)
        index = number - 1
        last = None if count is None else count - 1
        if index < first or (last is not None and index > last):
            span = f"{first + 1}..{last + 1}" if last is not None else f"from {first + 1}"
            raise ImpastoError(f"is frame {number}, outside the frames painted ({span})", path)
        height, width = images.read_image(path).shape[-2:]
        if (height, width) != size:
            raise ImpastoError(f"is {width}x{height}; the clip's frames are {size[1]}x{size[0]} at this --size", path)
        if index in found:
            raise ImpastoError(f"is a second keyframe for frame {number} (also {found[index].name})", path)
        found[index] = path
    if not found:
        raise ImpastoError("holds no keyframes (images named by frame number, as frame_000009.png)", folder)
    return found


def stylize_keyframed(source: str | os.PathLike, output: str | os.PathLike, stylizer: FrameStylizer,
                      fill: FrameStylizer, settings: VideoSettings | None = None,
                      keys: KeyframeSettings | None = None,
                      on_frame: Callable[[int, int | None, bool], None] | None = None,
                      user: dict[int, Path] | None = None) -> VideoReport:
    """Paint a clip at keyframes with ``stylizer`` and carry them along the flow; ``fill`` repaints
    what no keyframe covers.  Reruns resume (finished frames and keyframes are kept).

    ``user``: paintings taken as they are, by clip index (default: those in ``keys.folder``); how a
    stretch of a clip painted elsewhere is joined to the paintings of the stretches beside it."""
    settings = settings or VideoSettings()
    keys = keys or KeyframeSettings()
    keys.validate()
    if settings.flow not in flowlib.METHODS:
        raise ImpastoError(f"unknown flow method {settings.flow!r}; choose {' or '.join(flowlib.METHODS)}")
    if settings.start < 0 or (settings.end is not None and settings.end <= settings.start):
        raise ImpastoError(f"empty frame range {settings.start}..{settings.end}")
    clip = clips.open_clip(source, settings.fps)
    output, work, to_folder = video.output_folders(output, clip)
    size = clips.frame_size(clip.height, clip.width, settings.size)
    last = clip.count if settings.end is None or clip.count is None else min(clip.count, settings.end)
    if user is None:
        user = user_keyframes(keys.folder, settings.start, last, size) if keys.folder is not None else {}
    stamp = video.job_stamp(clip.path, stylizer, settings, size)
    stamp["keyframes"] = {"every": keys.every, "min_coverage": keys.min_coverage, "max_gap": keys.max_gap,
                          "fill_min": keys.fill_min, "fill": getattr(fill, "recipe", None) or fill.name,
                          "gaps": "the previous frame carried one step, then the fill", "steady": STEADY,
                          "user": {str(index): file_digest(path) for index, path in sorted(user.items())}}
    created = video.claim_work_folder(work, stamp)
    try:
        return _run(clip, output, work, to_folder, stylizer, fill, settings, keys, size, user, on_frame)
    except ImpastoError:
        video.release_work_folder(work, created)
        raise


@dataclass
class _Frame:
    index: int  # in the clip, 0-based
    moment: float
    content: torch.Tensor  # (1, 3, H, W) at the working size
    original: np.ndarray  # RGB uint8, what the flow reads
    flat: np.ndarray  # where the photo is flat (see _flat)


@dataclass
class _Link:
    """The motion between one frame and the next."""

    backward: np.ndarray  # next -> this
    backward_reliable: np.ndarray  # the next frame's pixels seen in this one
    forward: np.ndarray  # this -> next
    forward_reliable: np.ndarray  # this frame's pixels seen in the next one


def _decoded(clip: clips.Clip, settings: VideoSettings, size: tuple[int, int]) -> Iterator[tuple[_Frame, _Link | None]]:
    """Each frame with the motion from the one before (None for the first): made on the decoding
    thread, ahead of the painting."""
    previous = None
    for offset, (frame, moment) in enumerate(clip.frames(settings.start, settings.end)):
        content = clips.frame_tensor(frame, size)
        original = clips.frame_array(content)
        current = _Frame(settings.start + offset, moment, content, original, _flat(original))
        link = None
        if previous is not None:
            # occlusions only: a motion boundary inside a carried painting moves with it (the temporal
            # loss of frame-by-frame video needs the stricter mask, carrying does not)
            backward, backward_reliable, forward, forward_reliable = flowlib.pair_motion(
                previous.original, current.original, settings.flow, boundaries=False)
            link = _Link(backward, np.maximum(backward_reliable, current.flat), forward,
                         np.maximum(forward_reliable, previous.flat))
        yield current, link
        previous = current


#: A photo's local spread of grey (0..255, over a Gaussian of sigma 3 px) below which it is flat.
FLAT = 3.0


def _flat(original: np.ndarray) -> np.ndarray:
    """H x W float32 in {0, 1}: where the photo is flat (sky, snow, a wall).

    The flow there is a guess and rarely agrees both ways, so the consistency check would call half
    of a snowfield occluded and every frame would be repainted (at 480 px on a camera clip: 2-8% of
    each frame in holes, a repaint on 40 of 42 frames; with flat areas carried, holes under 0.5%).
    Any guess carries a painting across a flat patch equally well, and the photo check still stops
    paint where the picture changed."""
    grey = cv2.cvtColor(original, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.GaussianBlur(grey, (0, 0), 3.0)
    spread = np.sqrt(np.maximum(cv2.GaussianBlur(grey * grey, (0, 0), 3.0) - mean * mean, 0.0))
    return (spread < FLAT).astype(np.float32)


def _run(clip: clips.Clip, output: Path, work: Path, to_folder: bool, stylizer: FrameStylizer, fill: FrameStylizer,
         settings: VideoSettings, keys: KeyframeSettings, size: tuple[int, int], user: dict[int, Path],
         on_frame: Callable[[int, int | None, bool], None] | None) -> VideoReport:
    started = time.perf_counter()
    total = None
    if clip.count is not None:
        total = max(0, min(clip.count, settings.end or clip.count) - settings.start)
    frames = video.ahead(_decoded(clip, settings, size), depth=4)
    writer = FrameWriter(work_frames=not to_folder)
    done = {"count": 0, "skipped": 0}
    times: list[float] = []
    keyframes: list[int] = []

    def target(index: int) -> Path:
        return work / f"frame_{index + 1:06d}.png"

    last: dict[str, Any] = {}  # the last frame put out: its painting, or the file a resumed run kept

    def emit(frame: _Frame, make: Callable[[], torch.Tensor]) -> None:
        path = target(frame.index)
        times.append(frame.moment)
        skipped = path.exists()
        if skipped:
            done["skipped"] += 1
            last.update(painting=None, path=path)
        else:
            painted = make().clamp(0, 1)
            writer.put(painted, path)
            # the next frame starts from this one as its file holds it, so that a resumed run (which
            # reads the file back) makes the same frames
            last.update(painting=torch.floor(painted * 255.0 + 0.5) / 255.0, path=path)
        done["count"] += 1
        if on_frame is not None:
            on_frame(done["count"], total, skipped)

    def previous() -> np.ndarray:
        """The frame put out last, as an array (read back when a resumed run kept it)."""
        if last["painting"] is None:
            last["painting"] = images.read_image(last["path"])
        return flowlib.to_array(last["painting"])

    try:
        first, _ = next(frames, (None, None))
        if first is None:
            raise ImpastoError(f"no frames in the range {settings.start}..{settings.end}", clip.path)
        key_a = _keyframe(work, first, stylizer, None, user)
        keyframes.append(first.index)
        emit(first, lambda: flowlib.to_tensor(key_a))
        segment, links, forward = [first], [], []
        chain: tuple = (None, None)  # flow from this frame to the segment's first, where every link is reliable
        for frame, link in frames:
            segment.append(frame)
            links.append(link)
            chain = flowlib.chain(link.backward, link.backward_reliable, *chain)
            forward.append((chain[0], chain[1] * _alike(segment[0].original, chain[0], frame.original)))
            if _is_keyframe(frame, len(segment) - 1, forward[-1][1], keys, work, user, settings.start):
                key_a = _paint_segment(segment, links, forward, key_a, work, stylizer, fill, keys, user, emit,
                                       previous)
                keyframes.append(frame.index)
                segment, links, forward, chain = [frame], [], [], (None, None)
        if len(segment) > 1:  # the clip's last frame is a keyframe, so that its end is painted, not only carried
            key_a = _paint_segment(segment, links, forward, key_a, work, stylizer, fill, keys, user, emit,
                                   previous)
            keyframes.append(segment[-1].index)
    finally:
        frames.close()
        writer.close()
    audio = "none"
    if not to_folder:
        paths = [target(settings.start + i) for i in range(done["count"])]
        audio = clips.encode_video(paths, output, clip, settings, times)
        if not settings.keep_frames:
            shutil.rmtree(work)
    elif not settings.keep_frames:
        for path in work.glob("key_*.png"):  # a finished folder holds the frames alone
            path.unlink()
    return VideoReport(output, done["count"], done["skipped"], clip.fps, time.perf_counter() - started, audio,
                       times, keyframes)


def _backward_chains(segment: list[_Frame], links: list[_Link]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each frame before the segment's last: (flow to the last frame, where reliable)."""
    chains: list[tuple[np.ndarray, np.ndarray]] = []
    chain: tuple = (None, None)
    last = segment[-1].original
    for frame, link in zip(reversed(segment[:-1]), reversed(links)):
        chain = flowlib.chain(link.forward, link.forward_reliable, *chain)
        chains.append((chain[0], chain[1] * _alike(last, chain[0], frame.original)))
    return chains[::-1]


#: Largest mean RGB difference (0..1) between a keyframe's photo carried here and this frame's
#: photo for its paint to be carried: flows can agree both ways over something that appeared,
#: vanished or changed its light, and the photos tell.
ALIKE = 0.1


def _alike(far: np.ndarray, flow: np.ndarray, here: np.ndarray) -> np.ndarray:
    """H x W float32 in {0, 1}: where the photo ``far``, carried here by ``flow``, still looks like ``here``."""
    carried = flowlib.warp(far.astype(np.float32), flow)
    return (np.abs(carried - here.astype(np.float32)).mean(axis=-1) <= ALIKE * 255).astype(np.float32)


def _is_keyframe(frame: _Frame, gap: int, reliable_to_last_key: np.ndarray, keys: KeyframeSettings, work: Path,
                 user: dict[int, Path], start: int) -> bool:
    """``gap``: frames since the last keyframe; ``reliable_to_last_key``: where that keyframe,
    carried here, is reliable."""
    if frame.index in user:
        return True
    if keys.every is not None:
        return (frame.index - start) % keys.every == 0
    if not keys.auto:
        return False  # the user's keyframes alone
    if (work / f"key_{frame.index + 1:06d}.png").exists():
        return True  # chosen by the run that painted it (a resumed run keeps its keyframes)
    return gap >= keys.max_gap or float(reliable_to_last_key.mean()) < keys.min_coverage


def _keyframe(work: Path, frame: _Frame, stylizer: FrameStylizer,
              carried: tuple[torch.Tensor, torch.Tensor] | None, user: dict[int, Path]) -> np.ndarray:
    """A keyframe's painting (H x W x 3 float32): the user's, one painted before, or painted now
    (from the previous keyframe carried here, where that carry is reliable enough to start from)."""
    if frame.index in user:
        return flowlib.to_array(images.read_image(user[frame.index]))
    path = work / f"key_{frame.index + 1:06d}.png"
    if path.exists():
        return flowlib.to_array(images.read_image(path))
    history = [carried] if carried is not None and float(carried[1].mean()) > 0.1 else []
    painted = stylizer(frame.content, history).clamp(0, 1)
    if carried is None and not isinstance(stylizer, FeedForwardFrames):
        # an iterative method's first keyframe: the still-image run, then a keyframe's own iterations
        # from it, as every later keyframe gets from the one before (so the first stretch is not the
        # clip's weakest); a one-pass method would only paint the same again
        painted = stylizer(frame.content, [(painted, torch.ones_like(painted[:, :1]))]).clamp(0, 1)
    images.save_image(painted, path)
    return flowlib.to_array(images.read_image(path))  # as a resumed run will read it


def _paint_segment(segment: list[_Frame], links: list[_Link], forward: list[tuple[np.ndarray, np.ndarray]],
                   key_a: np.ndarray, work: Path, stylizer: FrameStylizer, fill: FrameStylizer,
                   keys: KeyframeSettings, user: dict[int, Path],
                   emit: Callable[[_Frame, Callable[[], torch.Tensor]], None],
                   previous: Callable[[], np.ndarray]) -> np.ndarray:
    """Emit the segment's frames after its first (a keyframe, emitted before) up to its last keyframe;
    return that keyframe's painting.  ``forward``: for each frame after the first, (flow to the first
    frame, where reliable); ``previous()``: the frame emitted last."""
    b = segment[-1]
    to_b, reliable_to_b = forward[-1]
    carried = (flowlib.to_tensor(flowlib.warp(key_a, to_b)).clamp(0, 1), flowlib.to_tensor(reliable_to_b))
    key_b = _keyframe(work, b, stylizer, carried, user)
    backward = _backward_chains(segment, links)
    span = len(segment) - 1
    for offset in range(1, span):
        frame = segment[offset]
        emit(frame, lambda frame=frame, offset=offset: _between(
            frame, key_a, forward[offset - 1], key_b, backward[offset], offset / span, fill, keys,
            (previous(), links[offset - 1], segment[offset - 1].original)))
    if b.index in user:  # the user's own painting, as they made it
        emit(b, lambda: flowlib.to_tensor(key_b))
    else:
        emit(b, lambda: flowlib.to_tensor(_steady(key_b, *_step(previous(), links[-1], segment[-2].original,
                                                                 b.original))))
    return key_b


#: Share of the frame put out before, carried one step, in every frame the method makes (the
#: keyframes and the frames between; where that step is reliable and the photo alike).
STEADY = 0.5


def _steady(made: np.ndarray, carried: np.ndarray, reaches: np.ndarray) -> np.ndarray:
    """A frame's output: what was made for it with ``STEADY`` of the frame before, carried one step
    (``carried``), mixed in where that step holds (``reaches``).

    Each frame between keyframes is its keyframes' paintings sampled once along composed flows,
    sharp but not exactly the frame before moved on; and a keyframe is its painting as made, with
    fresh strokes, so arriving at it was the clip's largest step (more warping error than painting
    every frame has on those pairs).  Half of the frame before, carried, takes half of every such
    step in this frame and leaves the rest to the next (squared: half); sampled bicubic, the
    brushwork loses little style for a steadier clip (docs/figures.md, Keyframes)."""
    share = reaches[..., None] * STEADY
    return ((1.0 - share) * made + share * carried).astype(np.float32)


def _step(painting: np.ndarray, link: _Link, photo: np.ndarray, here: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame put out before, carried one step along ``link``; and where that carry holds (the
    step is reliable and the photo, ``photo`` carried the same way, still looks like ``here``)."""
    reaches = link.backward_reliable * _alike(photo, link.backward, here)
    return np.clip(flowlib.warp(painting, link.backward, CARRY), 0, 1), reaches


def _between(frame: _Frame, key_a: np.ndarray, from_a: tuple[np.ndarray, np.ndarray], key_b: np.ndarray,
             from_b: tuple[np.ndarray, np.ndarray], position: float, fill: FrameStylizer,
             keys: KeyframeSettings, before: tuple[np.ndarray, _Link, np.ndarray] | None = None) -> torch.Tensor:
    """A frame ``position`` (0..1) of the way from keyframe A to B: both carried here and blended;
    ``before``: the frame put out before this one, the motion from it and its photo: its paint is
    carried one step into what neither keyframe reaches (as painting every frame does) where the
    step is reliable and the photo still alike, before anything is repainted; and the result is
    steadied by it (:func:`_steady`)."""
    carried_a, reliable_a = np.clip(flowlib.warp(key_a, from_a[0], CARRY), 0, 1), from_a[1]
    carried_b, reliable_b = np.clip(flowlib.warp(key_b, from_b[0], CARRY), 0, 1), from_b[1]
    weight_a, weight_b = (1.0 - position) * reliable_a, position * reliable_b
    total = weight_a + weight_b
    either = (1.0 - position) * carried_a + position * carried_b  # where neither is reliable: a start
    blended = np.where(total[..., None] > 0,
                       (weight_a[..., None] * carried_a + weight_b[..., None] * carried_b)
                       / np.maximum(total, 1e-6)[..., None], either).astype(np.float32)
    blended = _keep_contrast(blended, carried_a, carried_b, weight_a, weight_b)
    covered = np.maximum(reliable_a, reliable_b).astype(np.float32)
    carried = reaches = None
    if before is not None:
        carried, reaches = _step(*before, frame.original)
        stepped = (covered < 0.5) & (reaches > 0.5)  # no keyframe here, the last frame is
        blended = np.where(stepped[..., None], carried, blended).astype(np.float32)
        covered = np.maximum(covered, stepped.astype(np.float32))
    holes = cv2.morphologyEx((covered < 0.5).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    if float(holes.mean()) <= keys.fill_min:
        made = blended  # specks and slivers: the carries, unreliable there, are near enough
    else:
        repainted = flowlib.to_array(fill(frame.content, [(flowlib.to_tensor(blended), flowlib.to_tensor(covered))]))
        soft = cv2.GaussianBlur(covered, (0, 0), 2.0) * covered  # a soft seam, inside the covered side
        made = soft[..., None] * blended + (1.0 - soft[..., None]) * repainted
    return flowlib.to_tensor(made if before is None else _steady(made, carried, reaches))


#: Local statistics' reach (px, Gaussian sigma) for keeping a blend's contrast.
DETAIL_SIGMA = 3.0


def _keep_contrast(blended: np.ndarray, carried_a: np.ndarray, carried_b: np.ndarray, weight_a: np.ndarray,
                   weight_b: np.ndarray) -> np.ndarray:
    """Give a cross-fade of two paintings the local contrast of its parts.

    Averaging two brushwork textures that do not line up flattens them (half and half keeps about
    0.7 of the contrast), which reads as a blur between keyframes; as in histogram-preserving
    texture blending (Heitz and Neyret 2018), each pixel's detail around its local mean is scaled
    back to the weighted variance of the two, never more than 2x and never below 1x, so where the
    two agree nothing changes."""
    if DETAIL_SIGMA <= 0:
        return blended

    def stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = cv2.GaussianBlur(image, (0, 0), DETAIL_SIGMA)
        return mean, np.maximum(cv2.GaussianBlur(image * image, (0, 0), DETAIL_SIGMA) - mean * mean, 0.0)

    total = np.maximum(weight_a + weight_b, 1e-6)[..., None]
    mean, variance = stats(blended)
    _, variance_a = stats(carried_a)
    _, variance_b = stats(carried_b)
    target = (weight_a[..., None] * variance_a + weight_b[..., None] * variance_b) / total
    gain = np.clip(np.sqrt((target + 1e-5) / (variance + 1e-5)), 1.0, 2.0)
    gain = np.where((weight_a > 0) & (weight_b > 0), gain.mean(axis=-1), 1.0)[..., None]
    return np.clip(mean + gain * (blended - mean), 0.0, 1.0).astype(np.float32)
