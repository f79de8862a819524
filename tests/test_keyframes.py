"""Keyframed video: keyframes painted by the method, carried along the flow, holes repainted, the
user's keyframes handed back, resume, and wrong keyframe folders as one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from impasto.jobs import keyframes
from impasto.core import clips
from impasto.cli import main
from impasto.core.errors import ImpastoError
from impasto.jobs.keyframes import KeyframeSettings, stylize_keyframed
from impasto.core.clips import VideoSettings
from impasto.methods.frames import FeedForwardFrames

from helpers import one_error_line
from test_video import _texture, make_clip, moving_frames


class Counting:
    """A stand-in method that paints a frame by a fixed colour mapping and counts its calls."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls = 0
        self.stop_after = stop_after

    def paint(self, frame: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        return (1.0 - frame.flip(1)).clamp(0, 1)

    def stylizer(self) -> FeedForwardFrames:
        return FeedForwardFrames(self.paint, "counting", 0.0)


def _folder(path, frames):
    path.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"f{i:03d}.png")
    return path


def _read(folder, pattern="frame_*.png"):
    return [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255 for p in sorted(folder.glob(pattern))]


@pytest.fixture()
def moving(tmp_path):
    return _folder(tmp_path / "clip", moving_frames(9, 96, 64, step=2))


def test_keyframes_are_painted_and_carried_along_the_motion(tmp_path, moving):
    method = Counting()
    report = stylize_keyframed(moving, tmp_path / "out", method.stylizer(), method.stylizer(), VideoSettings(size=None),
                               KeyframeSettings(every=4))
    assert report.keyframes == [0, 4, 8] and report.frames == 9
    assert method.calls == 3  # a sliding camera: every pixel of the frames between is seen by a keyframe
    painted = [1.0 - f[..., ::-1] for f in _read(moving, "f*.png")]  # what painting every frame would give
    carried = _read(tmp_path / "out")
    assert np.abs(carried[0] - painted[0]).max() < 2 / 255
    inside = (slice(6, -6), slice(10, -10))
    for index in range(1, 9):  # later keyframes arrive half-blended with the frame before: near too
        assert np.abs(carried[index] - painted[index])[inside].mean() < 0.03, index
    assert not list((tmp_path / "out").glob("key_*"))  # a finished folder holds the frames alone


def test_what_no_keyframe_sees_is_repainted_by_the_fill(tmp_path):
    frames = [np.array(f) for f in moving_frames(5, 96, 64, step=0)]
    frames[2][20:44, 30:60] = (250, 250, 250)  # an object only frame 2 shows
    clip = _folder(tmp_path / "clip", frames)
    method, fill = Counting(), Counting()
    stylize_keyframed(clip, tmp_path / "out", method.stylizer(), fill.stylizer(), VideoSettings(size=None),
                      KeyframeSettings(every=4))
    assert method.calls == 2 and fill.calls == 1
    out = _read(tmp_path / "out")[2]
    assert np.abs(out[24:40, 34:56] - 1.0 + 250 / 255).max() < 0.02  # the fill's painting of the white object
    assert np.abs(out[:, :20] - (1.0 - frames[2][:, :20, ::-1] / 255)).max() < 0.02  # elsewhere the carried paint


def test_auto_keyframes_at_a_cut(tmp_path):
    first = moving_frames(5, 96, 64, step=2)
    scene = _texture(96 + 20, 64, seed=7)
    second = [np.ascontiguousarray(scene[:, 2 * i: 2 * i + 96]) for i in range(5)]
    clip = _folder(tmp_path / "clip", first + second)
    method = Counting()
    report = stylize_keyframed(clip, tmp_path / "out", method.stylizer(), method.stylizer(), VideoSettings(size=None),
                               KeyframeSettings(every=None, auto=True))
    assert 5 in report.keyframes and report.keyframes[0] == 0 and report.keyframes[-1] == 9
    assert len(report.keyframes) <= 4


def test_a_keyframe_painted_over_by_the_user_is_carried(tmp_path, moving):
    mine = tmp_path / "mine"
    mine.mkdir()
    Image.new("RGB", (96, 64), (255, 0, 0)).save(mine / "frame_000005.png")
    method = Counting()
    report = stylize_keyframed(moving, tmp_path / "out", method.stylizer(), method.stylizer(), VideoSettings(size=None),
                               KeyframeSettings(every=None, folder=mine))
    assert report.keyframes == [0, 4, 8] and method.calls == 2  # the first and the last; the user's is theirs
    out = _read(tmp_path / "out")
    assert np.abs(out[4] - np.array([1.0, 0, 0])).max() < 1 / 255
    assert out[3][10:50, 20:70, 0].mean() > out[1][10:50, 20:70, 0].mean()  # redder towards the user's keyframe


@pytest.mark.parametrize("name, size, message", [
    ("frame_000005.png", (48, 32), "is 48x32; the clip's frames are 96x64"),
    ("frame_000030.png", (96, 64), "is frame 30, outside the frames painted (1..9)"),
    ("painted.png", (96, 64), "must end in its frame number"),
])
def test_wrong_keyframes_are_one_line_errors_and_nothing_is_written(tmp_path, moving, capsys, name, size, message):
    mine = tmp_path / "mine"
    mine.mkdir()
    Image.new("RGB", size, (255, 0, 0)).save(mine / name)
    code = main(["video", str(moving), "-o", str(tmp_path / "out.mp4"), "--method", "adain", "--style", str(mine / name),
                 "--keyframe-dir", str(mine), "--size", "96", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in one_error_line(err) and name in err
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.mp4.frames").exists()


def test_empty_keyframe_folder_and_bad_schedule(tmp_path, moving, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImpastoError, match="holds no keyframes"):
        stylize_keyframed(moving, tmp_path / "out", Counting().stylizer(), Counting().stylizer(),
                          VideoSettings(size=None), KeyframeSettings(every=None, folder=tmp_path / "empty"))
    code = main(["video", str(moving), "-o", str(tmp_path / "o.mp4"), "--method", "adain", "--style",
                 str(moving / "f000.png"), "--keyframes", "often", "-q"])
    assert code == 2 and "--keyframes" in one_error_line(capsys.readouterr().err)


def test_an_interrupted_keyframed_run_resumes_to_the_same_frames(tmp_path, moving):
    whole = Counting()
    stylize_keyframed(moving, tmp_path / "whole", whole.stylizer(), whole.stylizer(), VideoSettings(size=None),
                      KeyframeSettings(every=4))
    stopped = Counting(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        stylize_keyframed(moving, tmp_path / "out", stopped.stylizer(), stopped.stylizer(), VideoSettings(size=None),
                          KeyframeSettings(every=4))
    kept = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert "key_000001.png" in kept and "key_000005.png" in kept
    again = Counting()
    report = stylize_keyframed(moving, tmp_path / "out", again.stylizer(), again.stylizer(), VideoSettings(size=None),
                               KeyframeSettings(every=4))
    assert again.calls == 1 and report.skipped >= 1  # only the last keyframe was left to paint
    for a, b in zip(_read(tmp_path / "whole"), _read(tmp_path / "out")):
        assert np.abs(a - b).max() < 1e-6


def test_keyframed_video_keeps_its_sound_through_the_cli(tmp_path):
    source = make_clip(tmp_path / "in.mp4", moving_frames(9, 64, 48))
    code = main(["video", str(source), "-o", str(tmp_path / "out.mp4"), "--method", "adain", "--style",
                 str(tmp_path / "in.mp4"), "--keyframes", "4", "--size", "64", "-q"])
    assert code == 2  # a video is not a painting
    Image.fromarray(moving_frames(1, 64, 48)[0]).save(tmp_path / "painting.png")
    code = main(["video", str(source), "-o", str(tmp_path / "out.mp4"), "--method", "adain", "--style",
                 str(tmp_path / "painting.png"), "--keyframes", "4", "--size", "64", "-q"])
    assert code == 0
    clip = clips.open_clip(tmp_path / "out.mp4")
    assert clip.has_audio and clip.count == 9
    assert keyframes.parse_keyframes("auto").auto and keyframes.parse_keyframes("4").every == 4


def test_what_appears_between_keyframes_is_repainted_once_and_then_carried(tmp_path):
    frames = [np.array(f) for f in moving_frames(5, 96, 64, step=0)]
    for index in (1, 2, 3):
        frames[index][20:44, 30:60] = (250, 250, 250)  # an object that frames 1-3 show, the keyframes do not
    clip = _folder(tmp_path / "clip", frames)
    method = Counting()
    fills = []

    def fill_paint(frame: torch.Tensor) -> torch.Tensor:  # a different painting each call
        fills.append(1)
        return torch.full_like(frame, 0.1 * len(fills))

    stylize_keyframed(clip, tmp_path / "out", method.stylizer(), FeedForwardFrames(fill_paint, "fill", 0.0),
                      VideoSettings(size=None), KeyframeSettings(every=4))
    assert len(fills) == 1  # frame 1 repaints the object; frames 2 and 3 carry frame 1's paint one step on
    out = _read(tmp_path / "out")
    for index in (2, 3):
        assert np.abs(out[index][24:40, 34:56] - out[1][24:40, 34:56]).max() < 2 / 255, index


def test_a_frame_is_steadied_by_half_of_the_frame_before_where_the_step_reaches():
    h, w = 16, 24
    still = np.zeros((h, w, 2), np.float32)
    reliable = np.ones((h, w), np.float32)
    reliable[:, :8] = 0  # the frame before does not reach the left third
    link = keyframes._Link(still, reliable, still, reliable)
    photo = np.full((h, w, 3), 120, np.uint8)
    key, before = np.full((h, w, 3), 0.8, np.float32), np.full((h, w, 3), 0.2, np.float32)
    out = keyframes._steady(key, *keyframes._step(before, link, photo, photo))
    assert np.allclose(out[:, 8:], 0.5) and np.allclose(out[:, :8], 0.8)
    changed = photo.copy()
    changed[:, 16:] = 250  # where the photo changed, the keyframe stays as painted
    assert np.allclose(keyframes._steady(key, *keyframes._step(before, link, photo, changed))[:, 16:], 0.8)
