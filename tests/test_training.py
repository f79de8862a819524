"""The shared training loop: data folders, checkpoints, resume, previews, distributed launch."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import torch

from helpers import image_folder
from impasto.networks.adain_training import AdainTask
from impasto.core.errors import ImpastoError
from impasto.core.modelfile import load_model
from impasto.networks.training import ImageFolder, TrainSettings, train


def _task(tmp_path):
    content = ImageFolder(image_folder(tmp_path / "photos", 5), crop=32, shorter_side=40)
    style = ImageFolder(image_folder(tmp_path / "paintings", 3, "painting"), crop=32, shorter_side=40)
    return AdainTask(content, style)


def test_folder_skips_unreadable_files_and_counts_them(tmp_path):
    folder = image_folder(tmp_path / "photos", 3)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("ignored: not an image name")
    data = ImageFolder(folder, crop=32)
    assert len(data) == 3
    assert len(data.skipped) == 1 and "broken.jpg" in data.skipped_note()
    batch = data.sample(4, random.Random(0))
    assert batch.shape == (4, 3, 32, 32) and 0 <= batch.min() and batch.max() <= 1


def test_folder_that_turns_out_corrupt_past_the_header_is_skipped(tmp_path):
    folder = image_folder(tmp_path / "photos", 2)
    good = (folder / "photo_00.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])  # header fine, data cut short
    data = ImageFolder(folder, crop=32)
    for seed in range(6):
        data.sample(2, random.Random(seed))
    assert [path.name for path, _ in data.skipped] == ["truncated.png"] and len(data) == 2


@pytest.mark.parametrize("make", ["empty", "missing", "only_broken", "file"])
def test_bad_data_folder_is_a_clear_error(tmp_path, make):
    folder = tmp_path / "data"
    if make == "empty":
        folder.mkdir()
    elif make == "only_broken":
        folder.mkdir()
        (folder / "a.png").write_bytes(b"\x89PNG garbage")
    elif make == "file":
        folder.write_text("x")
    with pytest.raises(ImpastoError) as info:
        ImageFolder(folder, crop=32, what="content photos")
    assert str(folder) in str(info.value)
    if make == "only_broken":
        assert "1 unreadable" in str(info.value)


@pytest.mark.train
def test_training_lowers_the_loss(tmp_path):
    task = _task(tmp_path)
    device = torch.device("cpu")

    def loss() -> float:
        with torch.no_grad():
            return float(task.losses(task.network, 4, random.Random(123), device, None)["total"])

    before = loss()
    train(task, TrainSettings(steps=25, batch_size=4, learning_rate=1e-3, precision="fp32", checkpoint_every=25),
          tmp_path / "decoder.pt")
    assert loss() < 0.7 * before


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    settings = dict(batch_size=2, learning_rate=1e-3, precision="fp32", checkpoint_every=3)
    torch.manual_seed(0)
    straight = _task(tmp_path)
    train(straight, TrainSettings(steps=6, **settings), tmp_path / "straight.pt")

    torch.manual_seed(0)  # the same first weights (building the backbone, once, draws random numbers)
    first = _task(tmp_path)
    report = train(first, TrainSettings(steps=3, **settings), tmp_path / "resumed.pt")
    assert report.steps == 3 and report.checkpoint_path.exists()
    second = _task(tmp_path)
    report = train(second, TrainSettings(steps=6, resume=True, **settings), tmp_path / "resumed.pt")
    assert report.steps == 6
    for a, b in zip(straight.network.parameters(), second.network.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    record = load_model(tmp_path / "resumed.pt", "adain-decoder").training
    assert record["steps_done"] == 6 and record["final_losses"]["total"] > 0


def test_resume_with_other_loss_weights_is_refused_and_more_photos_are_fine(tmp_path):
    settings = dict(batch_size=1, precision="fp32", checkpoint_every=1)
    train(_task(tmp_path), TrainSettings(steps=1, **settings), tmp_path / "m.pt")
    heavier = _task(tmp_path)
    heavier.style_weight *= 2
    with pytest.raises(ImpastoError, match=r"other settings \(style_weight 10.0 -> 20.0\).*--init"):
        train(heavier, TrainSettings(steps=2, resume=True, **settings), tmp_path / "m.pt")
    image_folder(tmp_path / "photos", 7)  # two more photos in the content folder
    report = train(_task(tmp_path), TrainSettings(steps=2, resume=True, **settings), tmp_path / "m.pt")
    assert report.steps == 2


def test_existing_checkpoint_needs_resume_and_resume_needs_a_checkpoint(tmp_path):
    task = _task(tmp_path)
    settings = TrainSettings(steps=1, batch_size=1, precision="fp32", checkpoint_every=1)
    with pytest.raises(ImpastoError, match="nothing to resume"):
        train(task, TrainSettings(steps=1, resume=True), tmp_path / "m.pt")
    train(task, settings, tmp_path / "m.pt")
    with pytest.raises(ImpastoError, match="--resume"):
        train(_task(tmp_path), settings, tmp_path / "m.pt")


def test_interrupt_saves_a_checkpoint_and_model(tmp_path):
    task = _task(tmp_path)
    calls = []

    def progress(step, total, losses):
        calls.append(step)
        if step == 2:
            raise KeyboardInterrupt

    report = train(task, TrainSettings(steps=50, batch_size=1, precision="fp32", checkpoint_every=100, log_every=1),
                   tmp_path / "m.pt", progress=progress)
    assert report.stop_reason == "interrupted" and report.steps == 2
    assert load_model(tmp_path / "m.pt", "adain-decoder").training["steps_done"] == 2
    assert torch.load(report.checkpoint_path, weights_only=True)["step"] == 2


def test_previews_are_written(tmp_path):
    task = _task(tmp_path)
    train(task, TrainSettings(steps=2, batch_size=1, precision="fp32", checkpoint_every=2, preview_every=1),
          tmp_path / "m.pt", preview_dir=tmp_path / "previews")
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == ["step-000001.png", "step-000002.png"]


@pytest.mark.train
def test_distributed_training_with_two_cpu_processes(tmp_path):
    """torchrun (PyTorch's launcher) with two processes and the gloo backend."""
    photos = image_folder(tmp_path / "photos", 4)
    paintings = image_folder(tmp_path / "paintings", 2, "painting")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "impasto", "train", "adain", "--content", str(photos), "--style", str(paintings),
        "-o", str(tmp_path / "ddp.pt"), "--crop", "32", "--batch-size", "1", "--steps", "3",
        "--checkpoint-every", "3", "--precision", "fp32", "-q",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = load_model(tmp_path / "ddp.pt", "adain-decoder").training
    assert record["processes"] == 2 and record["steps_done"] == 3


def test_device_resident_folder_draws_the_same_batches(tmp_path):
    """Uploading the decoded set once (``to``) changes where crops are cut, not which crops are drawn."""
    lazy = ImageFolder(image_folder(tmp_path / "photos", 5), crop=24, shorter_side=40)
    resident = ImageFolder(tmp_path / "photos", crop=24, shorter_side=40).to(torch.device("cpu"))
    assert len(resident._cache) == 5
    for seed in range(3):
        torch.testing.assert_close(lazy.sample(4, random.Random(seed)), resident.sample(4, random.Random(seed)),
                                   rtol=0, atol=0)


def test_reading_losses_every_n_steps_trains_the_same_weights(tmp_path):
    """Losses stay on the device between reads; how often they are read must not change training."""
    settings = dict(steps=6, batch_size=2, learning_rate=1e-3, precision="fp32", checkpoint_every=6)
    torch.manual_seed(0)
    every_step = _task(tmp_path)
    torch.manual_seed(0)
    every_fifth = _task(tmp_path)
    seen = []
    train(every_step, TrainSettings(log_every=1, **settings), tmp_path / "a.pt")
    train(every_fifth, TrainSettings(log_every=5, **settings), tmp_path / "b.pt",
          progress=lambda step, total, losses: seen.append(step))
    assert seen == [5, 6]
    for a, b in zip(every_step.network.parameters(), every_fifth.network.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (load_model(tmp_path / "a.pt", "adain-decoder").training["final_losses"]
            == load_model(tmp_path / "b.pt", "adain-decoder").training["final_losses"])


def test_init_warm_starts_from_a_model_and_keeps_the_lineage(tmp_path):
    settings = dict(batch_size=2, learning_rate=1e-3, precision="fp32")
    first = _task(tmp_path)
    train(first, TrainSettings(steps=3, checkpoint_every=3, **settings), tmp_path / "stage1.pt")
    second = _task(tmp_path)
    before = [p.detach().clone() for p in second.network.parameters()]
    captured = {}

    def progress(step, total, losses):
        if step == 1:  # the weights the first step started from are stage 1's (modulo fp16 storage)
            captured["losses"] = losses

    train(second, TrainSettings(steps=2, checkpoint_every=2, init=str(tmp_path / "stage1.pt"), log_every=1, **settings),
          tmp_path / "stage2.pt", progress=progress)
    assert any(not torch.equal(a, b) for a, b in zip(before, second.network.parameters()))
    third = _task(tmp_path)
    train(third, TrainSettings(steps=1, checkpoint_every=1, init=str(tmp_path / "stage2.pt"), **settings),
          tmp_path / "stage3.pt")
    record = load_model(tmp_path / "stage3.pt", "adain-decoder").training
    assert [stage["model"] for stage in record["lineage"]] == ["stage1.pt", "stage2.pt"]
    assert [stage["steps_done"] for stage in record["lineage"]] == [3, 2]
    assert record["steps_done"] == 1 and "hardware" in record["lineage"][0]
    assert record["init"] == "stage2.pt"  # the name, never the path
    # a fresh run from stage 1 starts at stage 1's weights: its first loss is far below a random decoder's
    fresh = _task(tmp_path)
    with torch.no_grad():
        random_loss = float(fresh.losses(fresh.network, 2, random.Random("0/0/0"), torch.device("cpu"), None)["total"])
    assert captured["losses"]["total"] < random_loss


def test_init_refuses_a_model_of_another_kind_or_shape(tmp_path):
    from impasto.networks.fast_training import FastTask

    train(_task(tmp_path), TrainSettings(steps=1, batch_size=1, precision="fp32", checkpoint_every=1), tmp_path / "d.pt")
    content = ImageFolder(image_folder(tmp_path / "photos", 3), crop=32)
    task = FastTask(content, [torch.rand(1, 3, 32, 32)], ["s"], width=0.25)
    with pytest.raises(ImpastoError, match="not a 'fast' model"):
        train(task, TrainSettings(steps=1, batch_size=1, precision="fp32", init=str(tmp_path / "d.pt")),
              tmp_path / "f.pt")


@pytest.mark.train
def test_sigterm_saves_the_training_like_ctrl_c(tmp_path):
    """kill (SIGTERM) stops a training with its model and checkpoint written, exit status 143, one line."""
    import signal
    import time

    photos = image_folder(tmp_path / "photos", 3)
    paintings = image_folder(tmp_path / "paintings", 2, "painting")
    output = tmp_path / "m.pt"
    command = [sys.executable, "-m", "impasto", "train", "adain", "--content", str(photos), "--style", str(paintings),
               "-o", str(output), "--crop", "32", "--batch-size", "1", "--steps", "100000", "--checkpoint-every",
               "100000", "--precision", "fp32", "--preview-every", "1", "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    previews = tmp_path / "m-previews"
    deadline = time.monotonic() + 120
    while not (previews.exists() and any(previews.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until training steps are being taken
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    assert "interrupted at step" in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    record = load_model(output, "adain-decoder").training
    assert record["steps_done"] >= 1 and (tmp_path / "m.pt.ckpt").exists()


@pytest.mark.parametrize("backend", ["eager"])  # inductor needs a C compiler and minutes; its maths is the same
def test_compiled_training_matches_eager_and_saves_plain_weights(tmp_path, backend):
    settings = dict(steps=3, batch_size=2, learning_rate=1e-3, precision="fp32", checkpoint_every=3)
    torch.manual_seed(0)
    plain = _task(tmp_path)
    torch.manual_seed(0)
    compiled = _task(tmp_path)
    train(plain, TrainSettings(**settings), tmp_path / "a.pt")
    train(compiled, TrainSettings(compile=backend, **settings), tmp_path / "b.pt")
    for a, b in zip(plain.network.parameters(), compiled.network.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    saved = load_model(tmp_path / "b.pt", "adain-decoder").state_dict
    assert not any(key.startswith("_orig_mod") for key in saved)  # loads into an uncompiled network


def test_adain_training_adds_the_shift_term_when_asked(tmp_path):
    task = _task(tmp_path)
    cpu = torch.device("cpu")
    with torch.no_grad():
        plain = task.losses(task.network, 2, random.Random(0), cpu, None)
        task.shift_weight = 50.0
        shifted = task.losses(task.network, 2, random.Random(0), cpu, None)
    assert "shift" not in plain and float(shifted["shift"]) > 0
    torch.testing.assert_close(shifted["content"], plain["content"])  # the same batch
    torch.testing.assert_close(shifted["total"], shifted["content"] + task.style_weight * shifted["style"]
                               + shifted["shift"])
    assert task.describe()["shift_weight"] == 50.0


def test_adain_shift_pass_paints_its_share_of_the_batch(tmp_path):
    task = _task(tmp_path)
    task.shift_weight, task.shift_share = 50.0, 0.5
    batches = []
    task.network.register_forward_hook(lambda module, inputs, output: batches.append(inputs[0].shape[0]))
    with torch.no_grad():
        terms = task.losses(task.network, 4, random.Random(0), torch.device("cpu"), None)
    assert batches == [4, 2] and float(terms["shift"]) > 0 and task.describe()["shift_share"] == 0.5


def test_a_script_builds_the_same_training_tasks_as_the_command(tmp_path, monkeypatch):
    from impasto.networks import training_tasks
    from impasto.networks.arbitrary_training import ArbitraryTask
    from impasto.cli import build_parser

    photos, paintings = image_folder(tmp_path / "photos", 4), image_folder(tmp_path / "paintings", 3, "painting")
    args = build_parser().parse_args(["train", "arbitrary", "--content", str(photos), "--style", str(paintings),
                                      "--crop", "32", "--procedural", "0", "--style-weight", "15", "-o", "x.pt"])
    from_command = training_tasks.task_from("arbitrary", vars(args))
    from_script = training_tasks.arbitrary_task(photos, paintings, crop=32, procedural=0, style_weight=15)
    assert isinstance(from_command, ArbitraryTask) and from_command.describe() == from_script.describe()
    assert args.width == training_tasks.default("arbitrary", "width")  # the command's defaults are the use case's
    adain = training_tasks.task_from("adain", {"content": photos, "style": paintings, "crop": 32, "hold_out": None})
    assert isinstance(adain, AdainTask) and adain.style_weight == training_tasks.default("adain", "style_weight")
    with pytest.raises(ImpastoError, match="unknown kind"):
        training_tasks.task_from("cubism", {})
    monkeypatch.setenv("IMPASTO_MODELS", str(tmp_path / "mine"))
    assert training_tasks.output_path(tmp_path / "a.pt") == (tmp_path / "a.pt", False)
    assert training_tasks.output_path("mine") == (tmp_path / "mine" / "mine.pt", True)  # used by name afterwards
    with pytest.raises(ImpastoError, match="end in .pt"):
        training_tasks.output_path(tmp_path / "a.onnx")
