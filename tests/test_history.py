"""The history of runs: SQLite plus a folder per run; survives restarts; bundles reproduce."""

from __future__ import annotations

import json
import shlex
import zipfile

import numpy as np
import pytest
import torch
from helpers import gradient_photo, stripes

from impasto.core import images
from impasto.jobs.history import History


def _record(history: History, method="adain", status="done"):
    photo, style = images.pil_to_tensor(gradient_photo(40, 32)), images.pil_to_tensor(stripes(32))
    return history.record(method, photo * 0.5, [("content", photo), ("style", style)], {"size": 40}, status, 1.5,
                          ["stylize", "--method", method, "{content}", "{style1}", "--size", "40"])


def test_runs_are_kept_newest_first_and_survive_a_new_connection(tmp_path):
    history = History(tmp_path)
    first, second = _record(history), _record(history, status="interrupted")
    again = History(tmp_path)  # a restarted server
    assert [run.id for run in again.runs()] == [second.id, first.id]
    run = again.get(first.id)
    assert run.method == "adain" and run.settings == {"size": 40} and (run.width, run.height) == (40, 32)
    assert [item["role"] for item in run.inputs] == ["content", "style"]
    assert run.command == "impasto stylize --method adain content.png style1.png --size 40 -o again.png"
    assert run.result.exists() and (run.folder / "style1.png").exists()


def test_a_deleted_run_is_gone_with_its_files(tmp_path):
    history = History(tmp_path)
    run = _record(history)
    history.delete(run.id)
    assert history.runs() == [] and not run.folder.exists() and history.get(run.id) is None
    history.delete("../../etc")  # a bad id deletes nothing outside
    assert tmp_path.exists()


def test_a_bundle_holds_everything_and_its_command_makes_the_result_again(tmp_path, monkeypatch, capsys):
    from impasto.cli import main

    pytest.importorskip("gradio")
    from impasto.studio import Studio, create

    history = History(tmp_path / "history")
    studio = Studio(tmp_path / "work", history=history)
    photo = np.asarray(gradient_photo(48, 40))
    style = tmp_path / "style.png"
    stripes(48).save(style)
    editor = {"background": photo, "layers": [], "composite": photo}
    list(create(studio, editor, [str(style)], "", "adain", None, 48, 0.8, 10, "none", "first", [], "s"))
    (run,) = history.runs()
    bundle = history.bundle(run.id, tmp_path / "run.zip")
    with zipfile.ZipFile(bundle) as archive:
        names = sorted(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    assert names == sorted(f"{run.id}/{n}" for n in ("result.png", "content.png", "style1.png", "run.json",
                                                     "command.sh"))
    folder = tmp_path / "unpacked" / run.id
    record = json.loads((folder / "run.json").read_text())
    assert record["method"] == "adain" and record["settings"]["request"]["strength"] == 0.8
    command = (folder / "command.sh").read_text().strip().splitlines()[-1]
    monkeypatch.chdir(folder)
    assert main(shlex.split(command)[1:] + ["-q"]) == 0
    made, kept = images.read_image(folder / "again.png"), images.read_image(folder / "result.png")
    assert made.shape == kept.shape and (made - kept).abs().max() <= 2 / 255


def test_the_studio_gallery_comes_from_the_history_after_a_restart(tmp_path):
    pytest.importorskip("gradio")
    from impasto.studio import Studio
    from impasto.studio.gallery_tab import gallery_items

    history = History(tmp_path / "history")
    run = _record(history)
    restarted = Studio(tmp_path / "other", history=History(tmp_path / "history"))
    items = gallery_items(restarted)
    assert [item["id"] for item in items] == [run.id] and items[0]["command"] == run.command
    assert torch.equal(images.read_image(items[0]["image"]), images.read_image(run.result))


def test_the_command_line_records_a_run_that_the_studio_shows(tmp_path, monkeypatch, capsys):
    from helpers import run_cli

    monkeypatch.setenv("IMPASTO_HISTORY", str(tmp_path / "history"))
    photo, style = tmp_path / "my photo.png", tmp_path / "style.png"
    gradient_photo(48, 40).save(photo)
    stripes(48).save(style)
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", photo, style, "-o", tmp_path / "out.png",
                           "--size", 48, "--strength", "0.6", "--record")
    assert code == 0 and "recorded run" in err
    (run,) = History(tmp_path / "history").runs()
    assert run.method == "adain" and run.settings["request"]["strength"] == 0.6
    assert run.command == "impasto stylize --method adain content.png style1.png --size 48 --strength 0.6 -o again.png"
    assert torch.equal(images.read_image(run.result), images.read_image(tmp_path / "out.png"))


def test_a_recorded_run_with_a_built_in_painting_keeps_the_painting(tmp_path, monkeypatch, capsys):
    from helpers import run_cli

    from impasto.core.samples import paintings

    monkeypatch.setenv("IMPASTO_HISTORY", str(tmp_path / "history"))
    monkeypatch.chdir(tmp_path)
    gradient_photo(48, 40).save(tmp_path / "photo.png")
    code, _, err = run_cli(capsys, "stylize", "--method", "adain", "./photo.png", "the_scream", "-o", "out.png",
                           "--size", 48, "--record")
    assert code == 0, err
    (run,) = History(tmp_path / "history").runs()
    assert run.command == "impasto stylize --method adain content.png style1.png --size 48 -o again.png"
    kept = images.read_image(run.folder / "style1.png")
    assert kept.shape == images.read_image(paintings()["the_scream"]).shape


def test_a_recorded_clip_keeps_its_video_and_paints_again_from_its_folder(tmp_path, monkeypatch, capsys):
    """`impasto video --record`: the run keeps the video, its poster frame, the clip and painting
    as files, and its command, run in the run's folder, paints the same clip again."""
    from helpers import run_cli
    from test_video import make_clip, moving_frames

    from impasto.core import clips

    monkeypatch.setenv("IMPASTO_HISTORY", str(tmp_path / "history"))
    source = make_clip(tmp_path / "in.mp4", moving_frames(4, 64, 48))
    stripes(48).save(tmp_path / "style.png")
    code, _, err = run_cli(capsys, "video", source, "-o", tmp_path / "out.mp4", "--method", "adain", "--style",
                           tmp_path / "style.png", "--size", 48, "--independent", "--record")
    assert code == 0 and "recorded run" in err
    (run,) = History(tmp_path / "history").runs()
    assert run.command == "impasto video clip.mp4 --method adain --style style1.png --size 48 --independent -o again.mp4"
    assert [item["role"] for item in run.inputs] == ["style", "clip"] and run.made.name == "result.mp4"
    assert images.read_image(run.result).shape[-2:] == (36, 48)
    monkeypatch.chdir(run.folder)
    code, _, err = run_cli(capsys, *run.command.split()[1:])
    assert code == 0, err
    assert clips.open_clip(run.folder / "again.mp4").count == clips.open_clip(run.made).count == 4


def test_a_clip_of_frames_into_frames_is_kept_folder_by_folder(tmp_path):
    """A folder of frames as the clip and as the output: both kept as folders, in the bundle too."""
    import zipfile

    from impasto.core.clips import VideoReport
    from impasto.jobs.clip_job import ClipJob
    from impasto.methods import Request

    frames, made = tmp_path / "frames", tmp_path / "out"
    frames.mkdir()
    made.mkdir()
    for k in range(3):
        gradient_photo(32, 24).save(frames / f"frame_{k:06d}.png")
        gradient_photo(32, 24).save(made / f"frame_{k:06d}.png")
    stripes(24).save(tmp_path / "style.png")
    job = ClipJob(frames, made, styles=[tmp_path / "style.png"], method="adain", request=Request(size=32))
    run = job.record(VideoReport(made, 3, 0, 25, 1.0, "none"), History(tmp_path / "history"))
    assert (run.folder / "clip" / "frame_000001.png").is_file() and run.made.name == "result.frames"
    assert run.command.startswith("impasto video clip --method adain") and run.command.endswith("-o again")
    with zipfile.ZipFile(History(tmp_path / "history").bundle(run.id, tmp_path / "run.zip")) as bundle:
        names = bundle.namelist()
    assert f"{run.id}/clip/frame_000002.png" in names and f"{run.id}/result.frames/frame_000000.png" in names
