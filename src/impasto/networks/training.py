"""The training loop shared by the trained methods (feed-forward networks, the AdaIN decoder).

A method supplies a :class:`Task`: the network to train, a function that draws a batch and
returns its losses, a preview, and how to describe the result in a model file.  This module
does the rest, the same way for every method:

- folders of images: scanned once, unreadable files skipped and counted, an empty set an error;
  decoded images kept in memory (up to a budget) so that later epochs cost no decoding;
- random crops drawn from a generator seeded by (seed, rank, step), so a resumed run draws the
  same batches the uninterrupted one would have;
- Adam with an optional hyperbolic learning-rate decay, bf16/fp16 autocast where it pays off;
- a checkpoint (network, optimiser, step, loss history, time) every N steps and on Ctrl-C,
  written atomically; ``resume=True`` continues from it; the model file is refreshed at each
  checkpoint, so a stopped run always leaves a usable model;
- previews every N steps, a progress bar with the running losses;
- several processes with PyTorch's launcher (``torchrun``): DDP over gloo (CPU) or NCCL (GPUs),
  each process drawing its own batches, rank 0 writing files.
"""

from __future__ import annotations

import io
import math
import os
import platform
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch
import torch.distributed as dist

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.core.files import TEMP_NAME, atomic_write, check_writable, refuse_inputs
from impasto.core.modelfile import ModelFile, save_model
from impasto.core.losses import random_shift, shift_consistency, shift_images
from impasto.core.runtime import autocast, resolve_device, resolve_precision

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


# ------------------------------------------------------------------------------------------ data


class ImageFolder:
    """The images under a folder (recursively), served as random square crops.

    ``exclude`` names files (by name) to leave out, e.g. those kept for a held-out evaluation.
    Each image is scaled so that its shorter side is ``shorter_side`` (then cropped to ``crop``),
    which sets the scale at which the network sees textures and strokes.
    """

    def __init__(self, root: str | os.PathLike, crop: int, shorter_side: int | None = None,
                 cache_mb: int = 1024, what: str = "images", exclude: Sequence[str] = ()) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise ImpastoError(f"no such folder of {what}", self.root)
        if not self.root.is_dir():
            raise ImpastoError(f"is not a folder (expected a folder of {what})", self.root)
        if crop < 16:
            raise ImpastoError(f"crop size must be at least 16 px, got {crop}", parameter="crop")
        self.crop = crop
        self.shorter_side = max(crop, shorter_side or crop)
        self.what = what
        self.skipped: list[tuple[Path, str]] = []
        self.files: list[Path] = []
        held_out = set(exclude)  # file names kept out of training (for a held-out check)
        candidates = sorted(p for p in self.root.rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.name not in held_out)
        for path in candidates:
            try:
                images.image_size(path)  # the header only: unreadable files and bombs are skipped and counted
                self.files.append(path)
            except ImpastoError as exc:
                self.skipped.append((path, exc.problem))
        if not self.files:
            note = f" ({len(self.skipped)} unreadable files skipped)" if self.skipped else ""
            raise ImpastoError(f"no readable {what} in this folder{note}", self.root)
        self._cache: dict[Path, torch.Tensor] = {}
        self.device = torch.device("cpu")
        self._cache_budget = cache_mb * 2**20
        self._cache_bytes = 0

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path: Path) -> torch.Tensor:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        image = images.read_image(path)
        h, w = image.shape[-2:]
        scale = self.shorter_side / min(h, w)
        size = (max(self.crop, round(h * scale)), max(self.crop, round(w * scale)))
        image = images.resize(image, size)
        stored = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8)[0]
        if self._cache_bytes + stored.numel() <= self._cache_budget:
            self._cache[path] = stored
            self._cache_bytes += stored.numel()
        return stored

    def to(self, device: torch.device) -> "ImageFolder":
        """Decode every image now and keep them on ``device`` as uint8, so batches are cut there.

        Uploading once and cropping on the device takes the host out of each step (on a GPU,
        a batch then costs no copy and no synchronisation).  Files that fail to decode are
        skipped and counted, as during sampling.
        """
        for path in list(self.files):
            try:
                self._load(path)
            except ImpastoError as exc:
                self.files.remove(path)
                self.skipped.append((path, str(exc)))
        if not self.files:
            raise ImpastoError(f"every file turned out unreadable ({len(self.skipped)} skipped)", self.root)
        self._cache = {path: image.to(device) for path, image in self._cache.items()}
        self.device = device
        return self

    def sample(self, count: int, generator: random.Random) -> torch.Tensor:
        """``count`` random crops, ``(count, 3, crop, crop)`` floats in [0, 1], on the folder's device."""
        crops = []
        while len(crops) < count:
            if not self.files:
                raise ImpastoError(f"every file turned out unreadable ({len(self.skipped)} skipped)", self.root)
            path = self.files[generator.randrange(len(self.files))]
            try:
                image = self._load(path)
            except ImpastoError as exc:  # corrupt beyond the header: skip it from now on
                self.files.remove(path)
                self.skipped.append((path, str(exc)))
                continue
            h, w = image.shape[-2:]
            top = generator.randrange(h - self.crop + 1)
            left = generator.randrange(w - self.crop + 1)
            crops.append(image[:, top: top + self.crop, left: left + self.crop])
        return torch.stack(crops).to(self.device).float() / 255.0

    def skipped_note(self) -> str | None:
        if not self.skipped:
            return None
        first, reason = self.skipped[0]
        return f"skipped {len(self.skipped)} unreadable file(s) in {self.root} (first: {first.name}: {reason[:80]})"


# ------------------------------------------------------------------------------------------ loop


@dataclass
class TrainSettings:
    """How to train, for any method."""

    steps: int = 10_000
    batch_size: int = 8
    learning_rate: float = 1e-4
    lr_decay: float = 0.0  # lr = learning_rate / (1 + lr_decay * step)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 0  # read the losses back every N steps (a host sync on GPUs); 0: 1 on CPUs, 10 elsewhere
    preview_every: int = 0  # 0: at each checkpoint
    resume: bool = False
    init: str | None = None  # warm start: a model file whose weights the network starts from (fresh optimiser)
    compile: str | None = None  # torch.compile the trained network with this backend ("inductor"); None: eager


def shift_term(paint: Callable[[torch.Tensor, int], torch.Tensor], content: torch.Tensor, output: torch.Tensor,
               batch_size: int, share: float, rng: random.Random, device: torch.device,
               dtype: torch.dtype | None) -> torch.Tensor:
    """A transformer's shift-consistency loss in a training step (:func:`impasto.core.losses.shift_consistency`),
    unweighted, on the first ``share`` of the batch: ``paint(moved, part)`` paints the first ``part``
    photos of the batch, moved (channels last)."""
    part = shift_images(batch_size, share)
    with autocast(device, dtype):
        return shift_consistency(lambda moved: paint(moved.contiguous(memory_format=torch.channels_last), part),
                                 content[:part], output[:part], random_shift(rng))


class PaintingTask:
    """What the training tasks of the painting networks (fast, arbitrary, AdaIN) hold alike: how much
    the painting counts, the shift-consistency term's weight and the share of a batch it paints
    again, and the network's upsampling."""

    def __init__(self, style_weight: float, shift_weight: float, shift_share: float, upsample: str) -> None:
        shift_images(1, shift_share)  # checked here, not at the first step
        self.style_weight = style_weight
        self.shift_weight = shift_weight
        self.shift_share = shift_share
        self.upsample = upsample


class Task(Protocol):
    """What a method gives the loop."""

    kind: str  # the model file's kind
    network: torch.nn.Module

    def losses(self, network: torch.nn.Module, batch_size: int, rng: random.Random,
               device: torch.device, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        """Draw a batch and return named losses, ``"total"`` among them (the one minimised)."""

    def preview(self, network: torch.nn.Module, device: torch.device) -> torch.Tensor:
        """An image showing the network's current output (``(1, 3, H, W)``)."""

    def config(self) -> dict[str, Any]:
        """How to rebuild the network (stored in the model file)."""

    def describe(self) -> dict[str, Any]:
        """What the network was trained on (stored in the model file's training record)."""

    def setup(self, device: torch.device, dtype: torch.dtype | None) -> None:
        """Once before the first step: put the data on the device, compute fixed targets."""


@dataclass
class TrainReport:
    steps: int
    seconds: float
    losses: dict[str, float]
    model_path: Path
    checkpoint_path: Path
    stop_reason: str  # "steps" or "interrupted"
    notes: list[str] = field(default_factory=list)


def checkpoint_path_for(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt")


def hardware_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"CPU {line.split(':', 1)[1].strip()} ({os.cpu_count()} threads)"
    except OSError:
        pass
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} threads)"


def _distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), world


PREVIEW_NAME = re.compile(r"step-\d{6}\.png")


def _check_preview_folder(folder: Path, data_folders: Sequence[Path]) -> None:
    """Previews go to a folder of their own: not into training data (read recursively), and not
    among files they did not make."""
    refuse_inputs(folder, data_folders, "previews folder")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if not PREVIEW_NAME.fullmatch(p.name)
                         and not TEMP_NAME.fullmatch(p.name))
        if foreign:
            raise ImpastoError(f"the previews folder holds other files ({foreign[0]}, ...); choose a new or "
                               "empty folder with --previews", folder)
    elif folder.exists():
        raise ImpastoError("is a file, not a folder for previews", folder)


def train(task: Task, settings: TrainSettings, output: str | os.PathLike,
          preview_dir: str | os.PathLike | None = None,
          progress: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainReport:
    """Train ``task.network`` and write the model file ``output`` (plus ``output.ckpt``)."""
    output = Path(output)
    checkpoint_path = checkpoint_path_for(output)
    if settings.steps < 1 or settings.batch_size < 1:
        raise ImpastoError("steps and batch size must be at least 1",
                           parameter="steps" if settings.steps < 1 else "batch_size")
    if settings.checkpoint_every < 1:
        raise ImpastoError("checkpoint every must be at least 1", parameter="checkpoint_every")
    if not output.parent.is_dir():
        raise ImpastoError("cannot write the model: the folder does not exist", output)
    check_writable(output)  # before step 1, not at the first checkpoint
    folders = [value.root for value in vars(task).values() if isinstance(value, ImageFolder)]
    refuse_inputs(output, [settings.init, *folders], "model file")
    if preview_dir is not None:
        _check_preview_folder(Path(preview_dir), folders)
    if settings.resume and not checkpoint_path.exists():
        raise ImpastoError("nothing to resume: no checkpoint beside the output", checkpoint_path)
    if not settings.resume and checkpoint_path.exists():
        raise ImpastoError("a checkpoint of an earlier run exists; pass --resume to continue it, "
                           "or delete it to start over", checkpoint_path)

    rank, world = _distributed()
    device = resolve_device(settings.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dtype = resolve_precision(settings.precision, device)
    torch.manual_seed(settings.seed)

    network = task.network.to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    start, elapsed, history = 0, 0.0, []
    lineage: list[dict[str, Any]] = []
    if settings.init is not None and not settings.resume:  # a resumed run has the warm start in its checkpoint
        lineage = warm_start(network, settings.init, task.kind)
    if settings.resume:
        start, elapsed, history, lineage = _load_checkpoint(checkpoint_path, network, optimizer, task)
    trained = network
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )
    if settings.compile:  # same parameters, fused kernels; compiled at the first step (seconds to minutes)
        trained = torch.compile(trained, backend=settings.compile, dynamic=False)

    def save(step: int) -> None:
        if rank != 0:
            return
        state = {
            "kind": task.kind,
            "config": task.config(),
            "losses": _resume_settings(task),
            "step": step,
            "elapsed": elapsed + (time.perf_counter() - began),
            "history": history,
            "lineage": lineage,
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write(checkpoint_path, lambda handle: handle.write(buffer.getvalue()))
        record = {
            **asdict(settings),
            **task.describe(),
            "steps_done": step,
            "processes": world,
            "hardware": hardware_name(device),
            "precision": str(dtype).replace("torch.", "") if dtype else "float32",
            "seconds": round(state["elapsed"], 1),
            "final_losses": history[-1]["losses"] if history else {},
            "lineage": lineage,
        }
        record.pop("resume", None)
        if settings.init is not None:  # the file's name only: a record never carries this machine's paths
            record["init"] = Path(settings.init).name
        save_model(output, ModelFile(kind=task.kind, config=task.config(), state_dict=network.state_dict(),
                                     training=record))

    def write_preview(step: int) -> None:
        if rank != 0 or preview_dir is None:
            return
        network.eval()
        with torch.no_grad():
            image = task.preview(network, device)
        network.train()
        folder = Path(preview_dir)
        folder.mkdir(parents=True, exist_ok=True)
        images.save_image(image.float().cpu(), folder / f"step-{step:06d}.png")

    began = time.perf_counter()
    window: dict[str, torch.Tensor] = {}  # running sums, kept on the device between reads
    window_count = 0
    step = start
    stop_reason = "steps"
    preview_every = settings.preview_every or settings.checkpoint_every
    log_every = settings.log_every or (1 if device.type == "cpu" else 10)

    def running_means() -> dict[str, float]:
        means = {name: float(value) / window_count for name, value in window.items()}
        bad = [name for name, value in means.items() if not math.isfinite(value)]
        if bad:
            raise ImpastoError(f"the {bad[0]} loss became {means[bad[0]]} before step {step}; lower the learning "
                               "rate (the last checkpoint is kept)")
        return means

    task.setup(device, dtype)
    network.train()
    try:
        while step < settings.steps:
            rng = random.Random(f"{settings.seed}/{rank}/{step}")
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate / (1.0 + settings.lr_decay * step)
            losses = task.losses(trained, settings.batch_size, rng, device, dtype)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            step += 1
            for name, value in losses.items():
                value = value.detach().float()
                window[name] = window[name] + value if name in window else value
            window_count += 1
            at_checkpoint = step % settings.checkpoint_every == 0 or step == settings.steps
            if at_checkpoint or step % log_every == 0:
                running = running_means()
                if progress is not None and rank == 0:
                    progress(step, settings.steps, running)
            if at_checkpoint:
                history.append({"step": step, "losses": {k: round(v, 6) for k, v in running.items()}})
                window, window_count = {}, 0
                save(step)
            if step % preview_every == 0 or step == settings.steps:
                write_preview(step)
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        means = {k: float(v) / window_count for k, v in window.items()} if window_count else {}
        if means:
            history.append({"step": step, "losses": {k: round(v, 6) for k, v in means.items()}})
        if step > start and all(math.isfinite(v) for v in means.values()):  # never save diverged weights
            save(step)
    finally:
        if world > 1 and dist.is_initialized() and stop_reason == "steps":
            dist.barrier()
    seconds = elapsed + time.perf_counter() - began
    return TrainReport(
        steps=step,
        seconds=seconds,
        losses=history[-1]["losses"] if history else {},
        model_path=output,
        checkpoint_path=checkpoint_path,
        stop_reason=stop_reason,
    )


def _resume_settings(task: Task) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint: the task's record without its data
    folders (adding photos to a folder between runs is fine; changing a loss weight is not)."""
    return {key: value for key, value in task.describe().items() if not key.endswith("_data")}


def _load_checkpoint(path: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     task: Task) -> tuple[int, float, list]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same user problem
        raise ImpastoError(f"cannot read the checkpoint ({str(exc).splitlines()[0][:100]})", path) from None
    if not isinstance(state, dict) or state.get("kind") != task.kind:
        raise ImpastoError(f"the checkpoint is not for a {task.kind!r} model", path)
    if state.get("config") != task.config():
        raise ImpastoError("the checkpoint was made with other network settings "
                           f"({state.get('config')}); resume with the same ones", path)
    before, now = state.get("losses"), _resume_settings(task)
    if before is not None and before != now:  # checkpoints from before this check have none: accepted
        changed = ", ".join(f"{key} {before.get(key)!r} -> {now.get(key)!r}"
                            for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key))
        raise ImpastoError(f"the checkpoint was trained with other settings ({changed}); resume with the same "
                           "ones, or start a new run from its model file with --init", path)
    network.load_state_dict(state["network"])
    optimizer.load_state_dict(state["optimizer"])
    return (int(state["step"]), float(state.get("elapsed", 0.0)), list(state.get("history", [])),
            list(state.get("lineage", [])))


#: What each earlier stage of a warm-started model keeps in the new model's record.
STAGE_FIELDS = ("steps_done", "batch_size", "crop", "learning_rate", "hardware", "precision", "processes",
                "seconds", "final_losses", "style_images", "style_weight", "content_data", "style_data")


def warm_start(network: torch.nn.Module, path: str | os.PathLike, kind: str) -> list[dict[str, Any]]:
    """Load a model file's weights into ``network``; returns the lineage: every earlier stage, oldest first.

    Only the weights come over (the optimiser starts afresh), so a model trained elsewhere -- on
    another machine, with other settings -- can be continued here.
    """
    from impasto.core.modelfile import load_model, load_weights

    model = load_model(path, kind)
    load_weights(network, model.state_dict, Path(path))
    earlier = list(model.training.get("lineage") or [])
    stage = {key: model.training[key] for key in STAGE_FIELDS if key in model.training}
    stage["model"] = Path(path).name
    stage["version"] = model.version
    return [*earlier, stage]


def random_flip(batch: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2 (cheap augmentation)."""
    flips = [rng.random() < 0.5 for _ in range(batch.shape[0])]
    if not any(flips):
        return batch
    out = batch.clone()
    for i, flip in enumerate(flips):
        if flip:
            out[i] = batch[i].flip(-1)
    return out


def format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in losses.items() if math.isfinite(v))
