"""Video: clips in and out (PyAV), optical flow and reliability, temporal coherence, resume, scoring."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from impasto.core import flow, images
from impasto.jobs import clip as video
from impasto.cli import main
from impasto.core.errors import ImpastoError
from impasto.networks.fast import KIND
from impasto.networks.transformer import TransformerNet
from impasto.core.modelfile import ModelFile, save_model
from impasto.core.clips import VideoSettings, open_clip
from impasto.methods.frames import FeedForwardFrames
from impasto.jobs.clip import stylize_video

from helpers import gradient_photo, stripes


def _texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture, wider than the frames, to slide under a moving camera."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 6 + 2, width // 6 + 2, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


def moving_frames(count: int = 8, width: int = 64, height: int = 40, step: int = 2) -> list[np.ndarray]:
    scene = _texture(width + step * count, height)
    return [np.ascontiguousarray(scene[:, step * i: step * i + width]) for i in range(count)]


def make_clip(path, frames, fps=24, audio=True, pts=None):
    """Encode frames (and a 440 Hz tone) with PyAV; ``pts`` gives irregular timestamps (variable rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        sound = container.add_stream("aac", rate=44100) if audio else None
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            seconds = len(frames) / fps
            t = np.arange(int(44100 * seconds)) / 44100
            tone = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                              format="fltp", layout="mono")
            tone.sample_rate = 44100
            for packet in sound.encode(tone):
                container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path


def _streams(path):
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        seconds = float(container.duration / 1e6) if container.duration else None
        return frames, v.average_rate, (audio.codec_context.name if audio else None), seconds, (v.width, v.height)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("video") / "tiny.pt"
    config = {"styles": 1, "width": 0.25, "residual_blocks": 5, "style_names": ["tiny"]}
    save_model(path, ModelFile(kind=KIND, config=config, state_dict=TransformerNet(1, 0.25).state_dict()))
    return path


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "in.mp4", moving_frames(8))


def _flicker(seed: int = 0):
    """A stand-in stylizer that flickers like independent per-frame stylization does."""
    generator = torch.Generator().manual_seed(seed)
    return lambda frame: (frame * 0.8 + 0.2 * torch.rand(frame.shape, generator=generator)).clamp(0, 1)


def test_flow_finds_a_shift_and_reliability_marks_the_disoccluded_edge():
    frames = moving_frames(2, 96, 64, step=3)
    backward, reliable = flow.frame_motion(frames[0], frames[1])
    centre = backward[16:48, 24:72]
    assert abs(float(np.median(centre[..., 0])) - 3.0) < 0.5 and abs(float(np.median(centre[..., 1]))) < 0.5
    warped = flow.warp(frames[0].astype(np.float32), backward)
    inside = (slice(8, 56), slice(8, 80))
    assert np.abs(warped[inside] - frames[1][inside]).mean() < 6
    assert reliable[inside].mean() > 0.8


def test_clip_to_mp4_keeps_count_rate_and_audio(tmp_path, clip_file, model_file):
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip_file), "-o", str(out), "--model", str(model_file), "-q"]) == 0
    frames, rate, audio, seconds, _ = _streams(out)
    in_frames, in_rate, _, in_seconds, _ = _streams(clip_file)
    assert (frames, rate, audio) == (in_frames, in_rate, "aac")
    assert abs(seconds - in_seconds) < 0.15
    assert not (tmp_path / "out.mp4.frames").exists()


@pytest.mark.parametrize("suffix, audio", [(".webm", "opus"), (".gif", None), (".mov", "aac")])
def test_other_containers(tmp_path, clip_file, model_file, suffix, audio):
    out = tmp_path / f"out{suffix}"
    report = stylize_video(clip_file, out, FeedForwardFrames(_flicker(), "test"), VideoSettings(end=4))
    frames, rate, got_audio, _, _ = _streams(out)
    assert frames == 4 and got_audio == audio
    assert abs(1 / float(rate) - 1 / 24) <= (0.005 if suffix == ".gif" else 1e-6)  # GIF: delays in 1/100 s
    assert report.audio.startswith({".webm": "re-encoded", ".gif": "dropped", ".mov": "copied"}[suffix])


def test_variable_frame_rate_clip(tmp_path):
    source = make_clip(tmp_path / "vfr.mp4", moving_frames(6), audio=False, pts=[0, 30, 90, 100, 160, 230])
    out = tmp_path / "frames"
    report = stylize_video(source, out, FeedForwardFrames(_flicker(), "test"), VideoSettings(size=45))
    assert report.frames == 6
    written = sorted(out.glob("frame_*.png"))
    assert len(written) == 6 and Image.open(written[0]).size == (44, 28)  # long side 45 -> even sizes
    encoded = stylize_video(source, tmp_path / "vfr_out.mp4", FeedForwardFrames(_flicker(), "test")).output
    with av.open(str(encoded)) as container:
        moments = [round(frame.time, 3) for frame in container.decode(video=0)]
    assert moments == [0.0, 0.03, 0.09, 0.1, 0.16, 0.23]


def test_odd_frame_sizes_become_a_video(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, array in enumerate(moving_frames(5, 63, 39)):
        Image.fromarray(array).save(folder / f"shot_{i + 1}.png")
    (folder / "shot_10.png").write_bytes((folder / "shot_1.png").read_bytes())  # numbered, not sorted by name
    out = tmp_path / "odd.mp4"
    stylize_video(folder, out, FeedForwardFrames(_flicker(), "test"), VideoSettings(fps=12))
    frames, rate, audio, _, size = _streams(out)
    assert (frames, float(rate), audio, size) == (6, 12.0, None, (62, 38))


def test_resume_skips_finished_frames_and_interrupt_keeps_them(tmp_path, clip_file):
    out = tmp_path / "frames"
    calls = []

    def stylize(frame):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return frame

    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip_file, out, FeedForwardFrames(stylize, "test"))
    assert len(list(out.glob("frame_*.png"))) == 3
    stamp = (out / "frame_000001.png").stat().st_mtime_ns
    calls.clear()
    report = stylize_video(clip_file, out, FeedForwardFrames(lambda f: f, "test"))
    assert report.skipped == 3 and report.frames == 8 and len(calls) == 0
    assert (out / "frame_000001.png").stat().st_mtime_ns == stamp
    with pytest.raises(ImpastoError, match="another job"):
        stylize_video(clip_file, out, FeedForwardFrames(lambda f: f, "other"))


def _fast_frames(model, blend=None):
    from impasto import methods

    return methods.get("fast").prepare([], methods.Request(model=model, device="cpu")).frames(methods.Temporal(blend))


def test_resume_refuses_another_model_or_style_and_an_unreadable_record(tmp_path, clip_file, model_file):
    """Rerunning into a half-done folder with another model once 'resumed' and mixed two styles."""
    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    config = {"styles": 1, "width": 0.25, "residual_blocks": 5, "style_names": ["other"]}
    save_model(other, ModelFile(kind=KIND, config=config, state_dict=TransformerNet(1, 0.25).state_dict()))
    out = tmp_path / "frames"
    settings = VideoSettings(size=32, end=3)
    stylize_video(clip_file, out, _fast_frames(model_file), settings)
    (out / "frame_000002.png").unlink()
    with pytest.raises(ImpastoError, match="another job"):
        stylize_video(clip_file, out, _fast_frames(other), settings)
    with pytest.raises(ImpastoError, match="another job"):  # same model, other options
        stylize_video(clip_file, out, _fast_frames(model_file, blend=0.5), settings)
    report = stylize_video(clip_file, out, _fast_frames(model_file), settings)
    assert report.skipped == 2 and report.frames == 3
    (out / ".impasto-job.json").write_bytes(b"")  # what a full disk used to leave
    with pytest.raises(ImpastoError, match="another job"):
        stylize_video(clip_file, out, _fast_frames(model_file), settings)


def test_coherent_feed_forward_is_steadier_than_independent(tmp_path, clip_file):
    independent = stylize_video(clip_file, tmp_path / "a", FeedForwardFrames(_flicker(1), "t"),
                                VideoSettings(coherent=False)).output
    coherent = stylize_video(clip_file, tmp_path / "b", FeedForwardFrames(_flicker(1), "t")).output
    error_independent, _ = video.score_video(clip_file, independent)
    error_coherent, _ = video.score_video(clip_file, coherent)
    assert error_coherent < 0.5 * error_independent


@pytest.mark.slow
def test_coherent_optimisation_is_steadier_than_independent(tmp_path):
    from helpers import stripes
    from impasto.methods.optimize import OptimizeFrames
    from impasto.engines.optimize import StyleSettings

    frames = tmp_path / "clip"
    frames.mkdir()
    for i, array in enumerate(moving_frames(4, 96, 64)):
        Image.fromarray(array).save(frames / f"f{i + 1:03d}.png")
    style = stripes(64)
    settings = StyleSettings(iterations=15, precision="fp32", seed=1)
    errors = {}
    for mode in ("independent", "coherent"):
        stylizer = OptimizeFrames([style], settings, iterations=10)
        out = stylize_video(frames, tmp_path / mode, stylizer, VideoSettings(coherent=mode == "coherent")).output
        errors[mode], _ = video.score_video(frames, out)
    assert errors["coherent"] < 0.6 * errors["independent"], errors


def test_long_term_targets_are_used(tmp_path):
    frames = tmp_path / "clip"
    frames.mkdir()
    for i, array in enumerate(moving_frames(4, 48, 32)):
        Image.fromarray(array).save(frames / f"{i:02d}.png")
    seen = []

    class Recorder:
        name = "record"

        def __call__(self, frame, history):
            seen.append(len(history))
            return frame

    stylize_video(frames, tmp_path / "out", Recorder(), VideoSettings(long_term=2))
    assert seen == [0, 1, 2, 3]


def test_a_failed_first_run_leaves_nothing_that_blocks_the_next(tmp_path, clip_file):
    out = tmp_path / "clip.mp4"
    with pytest.raises(ImpastoError, match="no frames"):
        stylize_video(clip_file, out, FeedForwardFrames(lambda f: f, "test"), VideoSettings(size=32, start=500))
    assert not (tmp_path / "clip.mp4.frames").exists()
    folder = tmp_path / "given"  # a folder the user made is kept, without the failed job's record
    folder.mkdir()
    with pytest.raises(ImpastoError, match="no frames"):
        stylize_video(clip_file, folder, FeedForwardFrames(lambda f: f, "test"), VideoSettings(size=32, start=500))
    assert folder.is_dir() and not any(folder.iterdir())
    report = stylize_video(clip_file, out, FeedForwardFrames(lambda f: f, "other"), VideoSettings(size=32))
    assert report.frames == 8


@pytest.mark.parametrize("make, fragment", [
    (lambda p: (p.write_bytes(b"\x00" * 100), p)[1], "not a video"),
    (lambda p: p, "no such video"),
    (lambda p: (p.mkdir(), p)[1], "no frames"),
])
def test_bad_input_is_a_clear_error(tmp_path, make, fragment):
    source = make(tmp_path / "broken.mp4")
    with pytest.raises(ImpastoError, match=fragment):
        open_clip(source)


def test_cli_mistakes_and_score(tmp_path, clip_file, model_file, capsys):
    assert main(["video", str(clip_file), "-o", str(tmp_path / "x.avi"), "--model", str(model_file)]) == 2
    assert "unknown video format" in capsys.readouterr().err
    assert main(["video", str(clip_file), "-o", str(tmp_path / "y.mp4"), "--method", "adain"]) == 2
    assert "needs at least one style image" in capsys.readouterr().err
    out = tmp_path / "frames"
    assert main(["video", str(clip_file), "-o", str(out), "--model", str(model_file), "--end", "3", "-q"]) == 0
    assert main(["score-video", str(clip_file), str(out)]) == 0  # the first 3 frames of the original
    assert main(["score-video", str(clip_file), str(out), "--start", "6"]) == 2
    assert "only 2 frames from frame 6" in capsys.readouterr().err
    full = tmp_path / "full"
    assert main(["video", str(clip_file), "-o", str(full), "--model", str(model_file), "-q"]) == 0
    capsys.readouterr()
    assert main(["score-video", str(clip_file), str(full)]) == 0
    assert "warping error" in capsys.readouterr().out


def test_histogram_colour_means_the_same_for_a_clip_as_for_a_still():
    """--preserve-color histogram recolours AdaIN's style to the picture, for stills and frames alike."""
    from impasto import methods

    frame = images.pil_to_tensor(gradient_photo(64, 48))
    style = images.pil_to_tensor(stripes(64))
    still = methods.stylize("adain", frame, [style], methods.Request(size=None, preserve_color="histogram",
                                                                      device="cpu", precision="fp32")).image
    def frames(colour):
        request = methods.Request(size=None, preserve_color=colour, device="cpu", precision="fp32")
        return methods.get("adain").prepare([style], request).frames(methods.Temporal())

    torch.testing.assert_close(frames("histogram")(frame, []), still, atol=1e-5, rtol=0)
    plain = frames("none")
    assert (plain(frame, []) - still).abs().mean() > 0.01  # the colour step does change the result


def test_the_pipeline_hands_errors_over_and_writes_every_queued_frame(tmp_path):
    import threading

    from impasto.core.errors import ImpastoError
    from impasto.jobs.clip import FrameWriter, ahead

    def broken():
        yield 1
        raise ImpastoError("the clip is damaged")

    got = []
    with pytest.raises(ImpastoError, match="damaged"):
        for item in ahead(broken()):
            got.append(item)
    assert got == [1]

    made = []

    def endless():
        for k in range(10_000):
            made.append(k)
            yield k

    stream = ahead(endless(), depth=2)
    assert next(stream) == 0
    stream.close()  # the consumer stops: so does the thread, a few items ahead at most
    threading.Event().wait(0.5)
    assert len(made) < 10

    writer = FrameWriter(depth=2)
    for k in range(6):
        writer.put(torch.full((1, 3, 8, 8), k / 10), tmp_path / f"frame_{k}.png")
    writer.close()  # waits: all six are on disk
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"frame_{k}.png" for k in range(6)]
    bad = FrameWriter()
    bad.put(torch.zeros(1, 3, 8, 8), tmp_path / "no-such-folder" / "frame.png")
    with pytest.raises(ImpastoError):
        bad.close()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fast", "adain"])
@pytest.mark.parametrize("coherent", [True, False])
def test_frames_painted_in_batches_match_one_at_a_time(tmp_path, clip_file, model_file, method, coherent):
    from impasto import methods

    def frames(batch):
        request = methods.Request(model=model_file if method == "fast" else None, device="cpu",
                                  precision="fp32", batch=batch, size=None)
        styles = [] if method == "fast" else [stripes()]
        return methods.get(method).prepare(styles, request).frames(methods.Temporal())

    calls = []
    batched = frames(3)
    network_pass = batched.stylize
    batched.stylize = lambda frame: calls.append(frame.shape[0]) or network_pass(frame)
    settings = VideoSettings(coherent=coherent, size=None, keep_frames=True)
    one = stylize_video(clip_file, tmp_path / "one", frames(1), settings)
    three = stylize_video(clip_file, tmp_path / "three", batched, settings)
    assert calls == [3, 3, 2] and one.frames == three.frames == 8
    for a, b in zip(sorted((tmp_path / "one").glob("*.png")), sorted((tmp_path / "three").glob("*.png"))):
        difference = np.abs(np.asarray(Image.open(a), np.int16) - np.asarray(Image.open(b), np.int16))
        assert difference.max() <= 2  # batched convolutions round a little differently


def test_a_resumed_clip_paints_only_the_missing_frames_in_batches(tmp_path, clip_file, model_file):
    from impasto import methods

    settings = VideoSettings(size=None)
    request = methods.Request(model=model_file, device="cpu", precision="fp32", batch=4, size=None)
    stylize_video(clip_file, tmp_path / "out", methods.get("fast").prepare([], request).frames(methods.Temporal()),
                  settings)
    for late in sorted((tmp_path / "out").glob("frame_*.png"))[5:]:
        late.unlink()  # as if stopped after five frames
    frames = methods.get("fast").prepare([], request).frames(methods.Temporal())
    calls = []
    network_pass = frames.stylize
    frames.stylize = lambda frame: calls.append(frame.shape[0]) or network_pass(frame)
    report = stylize_video(clip_file, tmp_path / "out", frames, settings)
    assert report.skipped == 5 and report.frames == 8 and calls == [3]


def test_a_frame_batch_must_be_a_positive_whole_number():
    with pytest.raises(ImpastoError, match="frame batch"):
        FeedForwardFrames(lambda frame: frame, "t", batch=0)


def _png_zlib_level(path) -> int:
    """FLEVEL of a PNG's zlib stream (0: fastest ... 2: default, 3: best)."""
    data = Path(path).read_bytes()
    position = 8
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        if data[position + 4:position + 8] == b"IDAT":
            return data[position + 9] >> 6  # the zlib header's second byte
        position += 12 + length
    raise AssertionError(f"no image data in {path}")


def test_an_encoded_clips_work_frames_are_written_fast_and_a_folder_of_frames_as_usual(tmp_path, clip_file):
    from impasto import methods

    request = methods.Request(model=None, device="cpu", precision="fp32", size=None)

    def frames():
        return methods.get("adain").prepare([stripes()], request).frames(methods.Temporal())

    stylize_video(clip_file, tmp_path / "out.mp4", frames(), VideoSettings(size=None, keep_frames=True, end=2))
    stylize_video(clip_file, tmp_path / "folder", frames(), VideoSettings(size=None, end=2))
    work = sorted((tmp_path / "out.mp4.frames").glob("frame_*.png"))
    folder = sorted((tmp_path / "folder").glob("frame_*.png"))
    assert len(work) == len(folder) == 2
    assert {_png_zlib_level(p) for p in work} == {0} and {_png_zlib_level(p) for p in folder} == {2}
    for a, b in zip(work, folder):  # lossless either way: the same pixels
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
