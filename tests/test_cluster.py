"""Folders and clips on a local Ray cluster of two workers (started by the tests, small images)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

pytest.importorskip("ray")
pytestmark = pytest.mark.cluster  # starts a local cluster: minutes

from helpers import gradient_photo  # noqa: E402
from impasto.jobs import cluster
from impasto.core import images
from impasto.core import clips
from impasto.cli import main  # noqa: E402
from impasto.core.flow import warping_error  # noqa: E402
from impasto.methods import Request  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    cluster.start(cpus=2)
    yield
    cluster.stop()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from test_fast import _model_file

    return _model_file(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for k in range(8):
        gradient_photo(80 + 4 * k, 60).rotate(45 * k).save(folder / f"p{k}.png")
    return folder


def _same_folders(a, b) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_folder_on_the_cluster_gives_the_same_files_as_on_one_machine(tmp_path, photos, model_file):
    assert main(["stylize", "--model", str(model_file), str(photos), "-o", str(tmp_path / "one"), "-q"]) == 0
    assert main(["stylize", "--model", str(model_file), str(photos), "-o", str(tmp_path / "two"), "-q",
                 "--cluster", "--workers", "2"]) == 0
    _same_folders(tmp_path / "one", tmp_path / "two")


def test_a_bad_photo_is_reported_and_the_rest_are_written_then_skip_existing_resumes(tmp_path, photos, model_file,
                                                                                       capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in list(photos.iterdir())[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    out = tmp_path / "out"
    assert main(["stylize", "--model", str(model_file), str(folder), "-o", str(out), "-q", "--cluster"]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert len(list(out.glob("p*.png"))) == 3
    stamp = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (folder / "broken.png").unlink()
    assert main(["stylize", "--model", str(model_file), str(folder), "-o", str(out), "-q", "--cluster",
                 "--skip-existing"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamp  # nothing done twice


def test_a_killed_worker_is_restarted_and_its_photos_are_done_elsewhere(tmp_path, photos, model_file):
    import ray

    actors = cluster.workers("fast", [], Request(model=model_file, device="cpu"), count=2)  # the CLI's defaults
    victim = ray.get(actors[0].pid.remote())
    jobs = [(p, tmp_path / "out" / p.name) for p in sorted(photos.iterdir())]
    (tmp_path / "out").mkdir()
    results = []

    def on_done(source, error):
        results.append((source.name, error))
        if len(results) == 1:
            os.kill(victim, signal.SIGKILL)  # mid-job: its running and queued photos must still come out

    cluster.paint_folder(actors, jobs, on_done)
    assert sorted(name for name, _ in results) == sorted(p.name for p in photos.iterdir())
    assert all(error is None for _, error in results)
    assert main(["stylize", "--model", str(model_file), str(photos), "-o", str(tmp_path / "one"), "-q"]) == 0
    _same_folders(tmp_path / "one", tmp_path / "out")


def _clip(tmp_path):
    from test_video import moving_frames

    folder = tmp_path / "clip"
    folder.mkdir()
    for k, frame in enumerate(moving_frames(20, 64, 48)):
        images.save_image(images.as_tensor(frame), folder / f"{k:04d}.png")
    return folder


def test_a_clip_in_chunks_has_seams_no_worse_than_one_machine_and_resumes(tmp_path, model_file):
    clip = _clip(tmp_path)
    one, chunked = tmp_path / "one", tmp_path / "chunked"
    assert main(["video", str(clip), "-o", str(one), "--model", str(model_file), "-q"]) == 0
    args = ["video", str(clip), "-o", str(chunked), "--model", str(model_file), "-q", "--cluster", "--chunk", "6",
            "--overlap", "3"]
    assert main(args) == 0
    frames = clips.read_clip(clip)
    single = warping_error(frames, clips.read_clip(one))[0]
    seams = warping_error(frames, clips.read_clip(chunked))[0]
    assert len(list(chunked.glob("frame_*.png"))) == 20
    print(f"warping error: one machine {single:.5f}, chunks of 6 with 3 cross-faded {seams:.5f}")
    assert seams <= 1.2 * single, (seams, single)
    # stopped part-way: the finished frames stay, the rerun completes the same clip
    for path in sorted(chunked.glob("frame_*.png"))[8:]:
        path.unlink()
    assert main(args) == 0
    assert len(list(chunked.glob("frame_*.png"))) == 20
    assert not (chunked / ".chunks").exists()


def test_a_keyframed_clip_in_chunks_has_no_seam_keeps_the_users_keyframe_and_resumes(tmp_path, model_file):
    from PIL import Image

    clip = _clip(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    Image.new("RGB", (64, 48), (255, 0, 0)).save(mine / "frame_000011.png")  # inside the second (odd) chunk
    one, chunked = tmp_path / "one", tmp_path / "chunked"
    common = ["--model", str(model_file), "-q", "--keyframes", "3", "--keyframe-dir", str(mine)]
    assert main(["video", str(clip), "-o", str(one), *common]) == 0
    args = ["video", str(clip), "-o", str(chunked), *common, "--cluster", "--chunk", "5", "--overlap", "3"]
    assert main(args) == 0  # chunks of 6 (whole keyframe gaps): 0..6, 6..12, 12..18, 18..19; lead-ins of 6
    painted = clips.read_clip(chunked)
    assert len(painted) == 20 and not (chunked / ".chunks").exists()
    assert np.abs(painted[10].astype(int) - [255, 0, 0]).max() <= 1  # the user's keyframe, as they made it
    frames = clips.read_clip(clip)
    single, per_pair_single = warping_error(frames, clips.read_clip(one))
    seams, per_pair = warping_error(frames, painted)
    print(f"keyframed warping error: one machine {single:.5f}, in chunks {seams:.5f}")
    assert seams <= 1.2 * single, (seams, single)
    # where chunks meet (frames 6, 12, 18: each painted once, by the even chunk) the steps are as steady
    # as the clip's own: no jump at a seam
    for seam in (6, 12, 18):
        assert per_pair[seam - 1] <= 2.0 * max(per_pair_single), (seam, per_pair[seam - 1], per_pair_single)
    for path in sorted(chunked.glob("frame_*.png"))[9:]:
        path.unlink()
    assert main(args) == 0
    assert np.array_equal(clips.read_clip(chunked)[:9], painted[:9]) and len(clips.read_clip(chunked)) == 20


def test_a_wrong_keyframe_on_the_cluster_is_one_line_and_nothing_is_written(tmp_path, model_file, capsys):
    from PIL import Image

    from helpers import one_error_line

    clip = _clip(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    Image.new("RGB", (32, 24), (255, 0, 0)).save(mine / "frame_000005.png")
    out = tmp_path / "out.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", str(model_file), "-q", "--keyframe-dir", str(mine),
                 "--cluster"]) == 2
    assert "is 32x24; the clip's frames are 64x48" in one_error_line(capsys.readouterr().err)
    assert not out.exists() and not (tmp_path / "out.mp4.frames").exists()


def test_a_sound_driven_clip_in_chunks_follows_the_loudness(tmp_path, model_file):
    from PIL import Image
    from test_audio import ENVELOPE, _loudness_db, make_sound
    from test_video import moving_frames

    from impasto.core import audio

    sound = make_sound(tmp_path / "beat.wav", ENVELOPE, 2.0)
    photo = tmp_path / "photo.png"
    Image.fromarray(moving_frames(1, 64, 48)[0]).save(photo)
    out = tmp_path / "out.mp4"
    args = ["video", str(photo), "--audio", str(sound), "--model", str(model_file), "-q", "--keep-frames",
            "--blend", "0"]  # as in test_audio: the painting at each frame's strength, not held to the one before
    assert main([*args, "-o", str(out), "--cluster", "--chunk", "12", "--overlap", "4"]) == 0
    assert clips.open_clip(out).has_audio
    frames = sorted((tmp_path / "out.mp4.frames").glob("frame_*.png"))
    assert len(frames) == 50
    still = images.read_image(photo)
    moved = [float((images.read_image(path) - still).abs().mean()) for path in frames]
    measured = _loudness_db(audio.read_audio(sound), 25.0, 50)
    assert np.corrcoef(moved, measured)[0, 1] >= 0.8
    assert main([*args, "-o", str(tmp_path / "one.mp4")]) == 0  # the same frames as on one machine
    alone = sorted((tmp_path / "one.mp4.frames").glob("frame_*.png"))
    assert max(float((images.read_image(a) - images.read_image(b)).abs().max()) for a, b in zip(alone, frames)) < 0.02


def test_keyframed_chunks_share_their_end_frames():
    assert cluster.plan_keyed_chunks(0, 20, 5, 3, 2) == ([(0, 7), (6, 13), (12, 19), (18, 20)], 6)  # two gaps
    assert cluster.plan_keyed_chunks(0, 40, 16, 4, 9) == ([(0, 17), (16, 33), (32, 40)], 12)
    # no one-frame chunk at the end; the lead-in is at most a chunk
    assert cluster.plan_keyed_chunks(0, 19, 6, None, 8) == ([(0, 7), (6, 13), (12, 19)], 6)
    assert cluster.plan_keyed_chunks(4, 5, 6, 2, 0) == ([(4, 5)], 4)


def test_chunks_cover_the_clip_with_overlaps_and_fade_across_them():
    assert cluster.plan_chunks(0, 20, 6, 3) == [(0, 6), (3, 12), (9, 18), (15, 20)]
    weights = [cluster.crossfade_weight(k, 3) for k in range(3)]
    assert weights == [0.0625, 0.25, 0.5625]  # the later chunk counts least while it has no history
    with pytest.raises(Exception):
        cluster.plan_chunks(0, 20, 4, 4)
