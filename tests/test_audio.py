"""Sound: the soundtrack kept bit for bit, its analysis (loudness, onsets, bands), and sound that
drives the painting (strength and blend weights per frame), with bad inputs as one-line errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from impasto.core import audio, images
from impasto.jobs import sound as react, clip as video
from impasto.core import clips
from impasto.cli import main
from impasto.core.errors import ImpastoError
from impasto.methods import Request, Temporal
from impasto.core.clips import VideoSettings

from helpers import one_error_line, stripes
from palette_method import Palette
from test_video import make_clip, moving_frames

RATE = 22_050


def make_sound(path, envelope, seconds, pitches=(330.0,), rate=RATE):
    """A WAV file: ``pitches`` one after the other, loudness following ``envelope`` (linear amplitude)."""
    t = np.arange(int(rate * seconds)) / rate
    amplitude = np.interp(t, np.linspace(0, seconds, len(envelope)), envelope)
    pitch = np.asarray(pitches)[np.minimum((t / seconds * len(pitches)).astype(int), len(pitches) - 1)]
    samples = (amplitude * np.sin(2 * np.pi * np.cumsum(pitch) / rate) * 32767).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


ENVELOPE = [0.02, 0.8, 0.05, 0.5, 0.9, 0.02, 0.6, 0.1, 0.7, 0.03]


def _loudness_db(samples: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """The test's own measure: each frame's RMS in decibels, straight from the samples."""
    hop = RATE / fps
    rms = [np.sqrt(np.mean(samples[int(i * hop): int((i + 1) * hop)] ** 2) + 1e-12) for i in range(frames)]
    return 20 * np.log10(np.asarray(rms) / max(rms))


def _audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(audio=0) if packet.size]


def test_the_soundtrack_is_copied_bit_for_bit(tmp_path):
    source = make_clip(tmp_path / "in.mp4", moving_frames(12, 64, 48))
    Image.fromarray(moving_frames(1, 64, 48)[0]).save(tmp_path / "painting.png")
    code = main(["video", str(source), "-o", str(tmp_path / "out.mp4"), "--method", "adain", "--style",
                 str(tmp_path / "painting.png"), "--size", "64", "-q"])
    assert code == 0
    original, kept = _audio_packets(source), _audio_packets(tmp_path / "out.mp4")
    assert len(original) > 5 and kept == original


def test_loudness_and_strength_follow_the_envelope(tmp_path):
    sound = make_sound(tmp_path / "beat.wav", ENVELOPE, 2.0)
    samples = audio.read_audio(sound)
    track = audio.analyse(samples, 25.0)
    assert track.frames == 50
    measured = _loudness_db(samples, 25.0, track.frames)
    assert np.corrcoef(track.loudness, measured)[0, 1] > 0.9
    strengths = audio.strength_curve(track, 0.8)
    assert np.corrcoef(strengths, measured)[0, 1] >= 0.8
    assert strengths.max() <= 0.8 + 1e-6 and strengths.min() >= 0.8 * 0.2 - 1e-6


def test_each_painting_follows_its_band(tmp_path):
    sound = make_sound(tmp_path / "bass-then-treble.wav", [0.5, 0.5], 2.0, pitches=(110.0, 3520.0))
    weights = audio.weight_curves(audio.analyse(audio.read_audio(sound), 25.0, bands=2))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert weights[5:20, 0].mean() > 0.7 and weights[30:45, 1].mean() > 0.7


def test_sound_drives_a_still_photo_into_a_clip(tmp_path):
    """Strength follows the loudness in the painted frames themselves (correlation >= 0.8)."""
    sound = make_sound(tmp_path / "beat.wav", ENVELOPE, 2.0)
    photo = tmp_path / "photo.png"
    Image.fromarray(moving_frames(1, 64, 48)[0]).save(photo)
    clip = clips.still_clip(photo, 2.0, 25)
    styles = [images.pil_to_tensor(stripes(48))]
    stylizer, curves = react.scheduled_frames(Palette(), styles, Request(size=64, device="cpu"),
                                              Temporal(blend=0.0), sound, clip, 0, clip.count)
    out = tmp_path / "frames"
    report = video.stylize_video(clip, out, stylizer, VideoSettings(size=64))
    assert report.frames == 50
    still = images.read_image(photo)
    moved = [float((images.read_image(p) - still).abs().mean()) for p in sorted(out.glob("frame_*.png"))]
    measured = _loudness_db(audio.read_audio(sound), 25.0, 50)
    assert np.corrcoef(moved, measured)[0, 1] >= 0.8
    assert len(stylizer._made) < 40  # painters are shared between frames of one setting


def test_the_cli_paints_a_photo_to_a_sound_and_keeps_the_sound(tmp_path):
    sound = make_sound(tmp_path / "beat.wav", ENVELOPE, 1.0)
    photo = tmp_path / "photo.png"
    Image.fromarray(moving_frames(1, 64, 48)[0]).save(photo)
    stripes(48).save(tmp_path / "a.png")
    stripes(48, colours=((20, 40, 200), (240, 240, 240))).save(tmp_path / "b.png")
    code = main(["video", str(photo), "--audio", str(sound), "-o", str(tmp_path / "out.mp4"), "--method", "adain",
                 "--style", str(tmp_path / "a.png"), "--style", str(tmp_path / "b.png"), "--size", "64", "-q"])
    assert code == 0
    clip = clips.open_clip(tmp_path / "out.mp4")
    assert clip.has_audio and clip.count == 25


@pytest.mark.parametrize("case, message", [
    ("no sound", "has no audio stream"),
    ("damaged sound", "the audio could not be decoded"),
    ("photo without sound", "a still photo becomes a clip with --audio"),
    ("with keyframes", "does not go with keyframes"),
    ("a soundtrack without sound", "has no audio stream"),
])
def test_bad_sound_is_one_line_and_writes_nothing(tmp_path, capsys, case, message):
    silent = make_clip(tmp_path / "silent.mp4", moving_frames(4, 64, 48), audio=False)
    stripes(48).save(tmp_path / "a.png")
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    args = {"no sound": [str(silent), "--audio-react"],
            "damaged sound": [str(silent), "--audio-react", "--audio", str(tmp_path / "broken.wav")],
            "photo without sound": [str(tmp_path / "a.png")],
            "with keyframes": [str(silent), "--audio-react", "--keyframes", "4"],
            "a soundtrack without sound": [str(silent), "--audio", str(silent)]}[case]
    code = main(["video", *args, "-o", str(tmp_path / "out.mp4"), "--method", "adain", "--style",
                 str(tmp_path / "a.png"), "--size", "64", "-q"])
    assert code == 2 and message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out.mp4.frames").exists()


def test_read_audio_names_the_file():
    with pytest.raises(ImpastoError, match="no such audio"):
        audio.read_audio("missing.wav")
