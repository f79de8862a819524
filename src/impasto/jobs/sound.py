"""A clip painted to its sound: the soundtrack's curves (:mod:`impasto.core.audio`) become each frame's
strength and blend weights, and a method paints every frame with its own (:class:`ScheduledFrames`)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from impasto.core import audio, images
from impasto.core.errors import ImpastoError
from impasto.core.files import file_digest
from impasto.methods import Method, Request, Temporal
from impasto.core.clips import Clip
from impasto.methods.frames import ScheduledFrames


@dataclasses.dataclass
class Drive:
    """The curves a soundtrack gives a clip, one value (or row) per frame from the clip's start."""

    strengths: np.ndarray
    weights: np.ndarray | None  # frames x paintings, with two paintings or more
    loudness: np.ndarray


def drive(sound: str | os.PathLike, clip: Clip, start: int, frames: int, strength: float, paintings: int,
          quietest: float = 0.2) -> Drive:
    """Read ``sound`` and turn it into ``frames`` frames of controls from the clip's frame ``start``;
    ``quietest``: the strength in silence, as a share of ``strength``."""
    samples = audio.read_audio(sound)
    track = audio.analyse(samples, float(clip.fps), start + frames, bands=max(1, paintings))
    track = audio.Soundtrack(track.fps, track.loudness[start:], track.onsets[start:], track.bands[start:])
    weights = audio.weight_curves(track) if paintings >= 2 else None
    return Drive(audio.strength_curve(track, strength, quietest), weights, track.loudness)


def full_strength(method: Method, request: Request, quietest: float) -> float:
    """The strength the loudest moments get (``request``'s, or the method's default), after checking
    that it and ``quietest`` (the share of it in silence) can drive a clip."""
    base = method.default_strength if request.strength is None else request.strength
    if base <= 0:
        raise ImpastoError(f"--audio-react needs a strength above 0, got {base}", parameter="strength")
    if not 0.0 <= quietest <= 1.0:
        raise ImpastoError(f"the strength in silence must be a share in [0, 1], got {quietest}", parameter="quietest")
    return base


def scheduled_frames(method: Method, styles: Sequence[images.ImageLike], request: Request, temporal: Temporal,
                     sound: str | os.PathLike, clip: Clip, start: int, frames: int,
                     quietest: float = 0.2) -> tuple[ScheduledFrames, Drive]:
    """A stylizer that paints each frame with the strength and weights the sound gives it."""
    if method.model_required and not method.uses_styles:
        paintings = 1  # a model's own styles: the strength follows the sound, the blend stays as asked
    else:
        paintings = len(styles)
    curves = drive(sound, clip, start, frames, full_strength(method, request, quietest), paintings, quietest)
    styles = [images.as_tensor(style, request.max_pixels) for style in styles]  # read once, not per setting

    def make(strength: float, weights: tuple[float, ...] | None):
        # one painter per setting; the one-pass methods' style codes are cached, so this is cheap
        asked = dataclasses.replace(request, strength=strength, style_blend=list(weights) if weights else request.style_blend)
        return method.prepare(styles, asked).frames(temporal)

    recipe = {"audio": file_digest(Path(sound)), "audio_react": True, "quietest": quietest}
    weights = None if curves.weights is None else [tuple(row) for row in curves.weights]
    return ScheduledFrames(make, list(curves.strengths), weights, recipe), curves


def sound_clip(source: str | os.PathLike, sound: str | os.PathLike | None,
               fps: float | None) -> tuple[Clip, str | os.PathLike, int]:
    """(the clip to paint, the sound that drives it, its frame count): a video (driven by ``sound``,
    or by its own soundtrack), or a still photo held as long as ``sound`` lasts."""
    from impasto.core import clips

    still = Path(source).suffix.lower() in clips.FRAME_SUFFIXES and Path(source).is_file()
    if still and sound is None:
        raise ImpastoError("a still photo becomes a clip with --audio FILE (the sound that paints it)", source)
    sound = sound if sound is not None else source
    seconds = None
    if still:
        seconds = len(audio.read_audio(sound)) / audio.RATE
        clip = clips.still_clip(source, seconds, fps)
    else:
        clip = clips.open_clip(source, fps)
    frames = clip.count
    if frames is None:
        seconds = seconds if seconds is not None else len(audio.read_audio(sound)) / audio.RATE
        frames = int(seconds * clip.fps)
    return clip, sound, frames


def reacting_clip(method: Method, styles: Sequence[images.ImageLike], request: Request, temporal: Temporal,
                  source: str | os.PathLike, sound: str | os.PathLike | None, fps: float | None, start: int = 0,
                  quietest: float = 0.2) -> tuple[Clip, ScheduledFrames]:
    """The clip to paint (see :func:`sound_clip`) and its sound-driven stylizer from frame ``start``."""
    clip, sound, frames = sound_clip(source, sound, fps)
    stylizer, _ = scheduled_frames(method, styles, request, temporal, sound, clip, start, max(1, frames - start),
                                   quietest)
    return clip, stylizer
