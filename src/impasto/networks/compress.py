"""Smaller, faster feed-forward networks: structured channel pruning and int8 quantisation.

**Pruning** removes whole channels, so the result is an ordinary, narrower network (any device,
exports like any model).  A channel's importance is the size of its instance-norm scale: the norm
makes the convolution's own weight scale irrelevant, and a channel whose scale is near zero
contributes only a constant.  Channels on the residual stream are shared by the stem and every
residual block, so they are scored and removed together.  The narrower network is then fine-tuned
to reproduce the original network's images on photos (distillation: their pixels, and their
texture as Gram matrices of VGG features): no style image, no dataset beyond some photos, through
the shared training loop (checkpoints, Ctrl-C, ``--resume``).

**int8** (:mod:`impasto.networks.int8`): PyTorch's post-training static quantisation, calibrated here on
some photos and converted once (the file holds the converted network, so loading it is cheap); the
int8 file and the float model are timed on this CPU as ``stylize`` runs them, start-up included, and
the file records whether int8 runs here.
"""

from __future__ import annotations

import dataclasses
import os
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.core import images
from impasto.core.errors import ImpastoError
from impasto.networks.fast import KIND, FastModel
from impasto.networks.fast_training import STYLE_LAYERS
from impasto.networks import int8 as int8_networks
from impasto.networks.int8 import INT8_RECIPE, FrozenNet, freeze_int8, prepare_int8
from impasto.core.losses import gram_matrix, relative_gram_loss
from impasto.core.modelfile import ModelFile, save_model
from impasto.core.runtime import autocast, default_encoder
from impasto.networks.training import IMAGE_SUFFIXES, ImageFolder, TrainSettings, random_flip, train
from impasto.networks.transformer import MULTIPLE, ConvNorm, TransformerNet

CALIBRATION_SIDE = 256  # px, the long side of each calibration photo
#: The distillation after pruning: short (the texture term's VGG is most of its cost).
DISTILL_SETTINGS = TrainSettings(steps=300, batch_size=4, learning_rate=1e-3, checkpoint_every=100)
#: The texture term of the distillation: pixels alone left a pruned network's style milder than the
#: original's; with this term it keeps it (docs/figures.md, Pruned models).
DISTILL_TEXTURE_WEIGHT = 0.3


# ------------------------------------------------------------------------------------------ size


def conv_macs(network: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of every convolution for one ``height`` x ``width`` image."""
    total = 0

    def count(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            network(torch.zeros(1, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    return total


# --------------------------------------------------------------------------------------- pruning


def _importance(layers: Sequence[ConvNorm]) -> torch.Tensor:
    """Per output channel: the mean |scale| of the norms of ``layers`` (which share those channels)."""
    return sum(layer.norm.scale.detach().abs().mean(0) for layer in layers) / len(layers)


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    count = max(4, round(scores.numel() * fraction))
    return torch.sort(torch.topk(scores, min(count, scores.numel())).indices).values


def _copy(target: ConvNorm | nn.Conv2d, source: ConvNorm | nn.Conv2d, out_keep: torch.Tensor | None,
          in_keep: torch.Tensor | None) -> None:
    """Copy the kept output/input channels of ``source``'s convolution (and norm) into ``target``."""
    conv_t, conv_s = (target.conv, source.conv) if isinstance(target, ConvNorm) else (target, source)
    weight, bias = conv_s.weight.detach(), conv_s.bias.detach()
    if out_keep is not None:
        weight, bias = weight[out_keep], bias[out_keep]
    if in_keep is not None:
        weight = weight[:, in_keep]
    conv_t.weight.data.copy_(weight)
    conv_t.bias.data.copy_(bias)
    if isinstance(target, ConvNorm):
        keep = out_keep if out_keep is not None else slice(None)
        target.norm.scale.data.copy_(source.norm.scale.detach()[:, keep])
        target.norm.shift.data.copy_(source.norm.shift.detach()[:, keep])


def prune(network: TransformerNet, keep: float) -> TransformerNet:
    """A narrower copy of ``network`` keeping the fraction ``keep`` of every group of channels (the
    most important by norm scale; at least 4 per group)."""
    if not 0 < keep <= 1:
        raise ImpastoError("the fraction of channels to keep must be in (0, 1]")
    d, b, u = network.down, network.blocks, network.up
    stream = [d[2], *[block.second for block in b]]  # everything that writes the residual stream
    k1 = _keep(_importance([d[0], u[1]]), keep)  # c1: the stem's first stage, and the last up stage
    k2 = _keep(_importance([d[1], u[0]]), keep)
    k3 = _keep(_importance(stream), keep)
    inner = [_keep(_importance([block.first]), keep) for block in b]
    pruned = TransformerNet(network.styles, 1.0, len(b), network.output, network.upsample,
                            channels=[len(k1), len(k2), len(k3)], inner=[len(k) for k in inner])
    _copy(pruned.down[0], d[0], k1, None)
    _copy(pruned.down[1], d[1], k2, k1)
    _copy(pruned.down[2], d[2], k3, k2)
    for new, old, k in zip(pruned.blocks, b, inner):
        _copy(new.first, old.first, k, k3)
        _copy(new.second, old.second, k3, k)
    _copy(pruned.up[0], u[0], k2, k3)
    _copy(pruned.up[1], u[1], k1, k2)
    _copy(pruned.out, network.out, None, k1)
    return pruned


def keep_for_macs(network: TransformerNet, remove: float, side: int = 256) -> float:
    """The channel fraction to keep so that about ``remove`` of the convolutions' work goes."""
    full = conv_macs(network, side, side)
    low, high = 0.05, 1.0
    for _ in range(20):  # work falls monotonically with the fraction kept: bisect
        middle = (low + high) / 2
        if conv_macs(prune(network, middle), side, side) > (1 - remove) * full:
            high = middle
        else:
            low = middle
    return low


class DistillTask:
    """Train a pruned network to paint what the original paints, on photos only: L1 on pixels, and
    (``texture_weight``) the Gram matrices of its painting's VGG features against the original's, so
    the narrower network keeps the strokes' texture instead of settling for their average."""

    kind = KIND

    def __init__(self, teacher: TransformerNet, student: TransformerNet, photos: ImageFolder,
                 config: dict[str, Any], source: str, texture_weight: float = DISTILL_TEXTURE_WEIGHT) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.network = student
        self.content = photos
        self._config = config
        self.source = source
        self.texture_weight = texture_weight

    def setup(self, device: torch.device, dtype: torch.dtype | None) -> None:
        self.content.to(device)
        self.teacher.to(device)

    def losses(self, network: nn.Module, batch_size: int, rng: random.Random, device: torch.device,
               dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
        photos = random_flip(self.content.sample(batch_size, rng), rng).to(device)
        styles = self.teacher.styles
        mix = F.one_hot(torch.tensor([rng.randrange(styles) for _ in range(batch_size)]), styles).float().to(device)
        with torch.no_grad():
            target = self.teacher(photos, mix).float()
        painted = network(photos, mix).float()
        l1 = (painted - target).abs().mean()
        if not self.texture_weight:
            return {"total": l1, "l1": l1.detach()}
        encoder = default_encoder(list(STYLE_LAYERS), device)
        with torch.no_grad(), autocast(device, dtype):
            grams = {name: gram_matrix(f) for name, f in encoder(target, STYLE_LAYERS).items()}
        with autocast(device, dtype):
            features = encoder(painted, STYLE_LAYERS)
        texture = self.texture_weight * sum(relative_gram_loss(features[name], grams[name]) for name in STYLE_LAYERS)
        return {"total": l1 + texture, "l1": l1.detach(), "texture": texture.detach()}

    def preview(self, network: nn.Module, device: torch.device) -> torch.Tensor:
        photo, (h, w) = images.pad_to_multiple(self.content.sample(1, random.Random(0)), MULTIPLE)
        photo = photo.to(device)
        with torch.no_grad():
            rows = [self.teacher(photo).float(), network(photo).float()]
        return torch.cat([photo, *rows], dim=-1).clamp(0, 1)[..., :h, :].cpu()

    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def describe(self) -> dict[str, Any]:
        return {"distilled_from": self.source, "content_data": f"{self.content.root.name} ({len(self.content)} images)",
                "crop": self.content.crop, "loss": "L1 between the pruned and the original network's images"
                + (f" + {self.texture_weight:g} x relative Gram loss of their VGG features" if self.texture_weight else "")}


# ------------------------------------------------------------------------------------------ int8


def calibration_batches(photos: Sequence[Path], side: int = CALIBRATION_SIDE) -> list[torch.Tensor]:
    batches = []
    for path in photos:
        image = images.resize_max_side(images.read_image(path), side)
        batches.append(images.pad_to_multiple(image, MULTIPLE)[0])
    return batches


def calibrate_int8(network: TransformerNet, mix: Sequence[float], photos: Sequence[Path],
                   recipe: str = INT8_RECIPE) -> dict[str, torch.Tensor]:
    """The float weights and the activation ranges observed on the calibration photos (the
    observers' state), which :func:`impasto.networks.int8.freeze_int8` converts into what an int8
    file holds."""
    if not photos:
        raise ImpastoError("int8 needs calibration photos (--photos DIR with a few photos)")
    prepared = prepare_int8(FrozenNet(network, mix), recipe)
    with torch.no_grad():
        for batch in calibration_batches(photos):
            prepared(batch)
    return {key: value.detach().clone() for key, value in prepared.state_dict().items()}


def onnx_int8(model: Path, output: Path, mix: Sequence[float], photos: Sequence[Path]) -> Path:
    """The float model exported to ONNX, then ONNX Runtime's static QDQ quantisation (int8 weights
    per channel, uint8 activations) calibrated on ``photos``: for running int8 outside impasto."""
    import tempfile

    import numpy as np

    from impasto.networks.export import export
    from impasto.core.files import atomic_write

    try:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ImpastoError("int8 ONNX needs onnxruntime (pip install 'impasto[export]')") from None

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            weights = np.asarray(list(mix), dtype=np.float32)
            self.feeds = iter([{"image": batch.numpy(), "mix": weights} for batch in calibration_batches(photos)])

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory() as folder:
        plain, ready, small = (Path(folder) / name for name in ("float.onnx", "ready.onnx", "int8.onnx"))
        export(model, plain)
        quant_pre_process(os.fspath(plain), os.fspath(ready), skip_symbolic_shape=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(os.fspath(ready), os.fspath(small), Photos(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        data = small.read_bytes()
    return atomic_write(output, lambda handle: handle.write(data))


def _photos(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImpastoError("not a folder of photos", folder)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not found:
        raise ImpastoError("no photos in this folder", folder)
    return found


def compress(model: str | os.PathLike, output: str | os.PathLike, photos: str | os.PathLike,
             int8: bool = False, remove: float = 0.0, weights: Sequence[float] | None = None,
             settings: TrainSettings | None = None, crop: int = 192, calibration: int = 16,
             texture_weight: float = DISTILL_TEXTURE_WEIGHT,
             progress: Callable[[int, int, dict[str, float]], None] | None = None) -> tuple[Path, str]:
    """Prune (``remove`` = the fraction of the convolutions' work to take away, then distil) and/or
    quantise to int8 a feed-forward model; writes ``output`` (a model file).

    Returns (the file written, "done" or "interrupted"): a stopped distillation keeps its model and
    checkpoint (the same call with ``settings.resume`` goes on)."""
    from impasto.core.files import check_writable, refuse_inputs

    if not int8 and remove <= 0:
        raise ImpastoError("choose --int8, --prune F, or both")
    if not 0 <= remove < 1:
        raise ImpastoError("--prune is the fraction of the work to remove: between 0 and 1", parameter="prune")
    output = Path(output)
    refuse_inputs(output, [model, photos], "compressed model")
    check_writable(output)
    source = FastModel(model, device="cpu", precision="fp32")
    if source.quantized:
        raise ImpastoError("this model is already int8; compress the float model", model)
    config = dict(source.config)
    network = source.network.float().to(memory_format=torch.contiguous_format)
    photo_files = _photos(photos)
    history: dict[str, Any] = {"compressed_from": os.fspath(model), "photos": f"{Path(photos).name} "
                               f"({len(photo_files)} images)"}
    macs_before = conv_macs(network, 256, 256)
    if remove > 0:
        keep = keep_for_macs(network, remove)
        student = prune(network, keep)
        config.update(channels=[student.down[0].conv.out_channels, student.down[1].conv.out_channels,
                                student.down[2].conv.out_channels],
                      inner=[block.first.conv.out_channels for block in student.blocks])
        folder = ImageFolder(photos, crop)
        target = output if not int8 else output.with_name(output.stem + ".pruned.pt")
        report = train(DistillTask(network, student, folder, config, os.fspath(model), texture_weight),
                       settings or DISTILL_SETTINGS, target, progress=progress)
        network = student.cpu().float().eval()  # trained in place
        if report.stop_reason == "interrupted":
            return target, "interrupted"
        history.update(pruned_keep=round(keep, 3), distill_steps=report.steps, distill_l1=report.losses.get("l1"))
        report.checkpoint_path.unlink(missing_ok=True)  # finished: nothing left to resume
        if not int8:
            return target, "done"
    history["conv_macs_256px"] = [macs_before, conv_macs(network, 256, 256)]
    mix = source.mix(weights).tolist()
    if output.suffix.lower() == ".onnx":
        written = onnx_int8(target if remove > 0 else Path(model), output, mix, photo_files[:calibration])
        if remove > 0:
            target.unlink(missing_ok=True)
        return written, "done"
    state, graph = freeze_int8(network, mix, calibrate_int8(network, mix, photo_files[:calibration]))
    config.update(quantized=INT8_RECIPE, mix=mix, int8_graph=graph)
    history["calibration_photos"] = min(calibration, len(photo_files))
    record = ModelFile(kind=KIND, config=config, state_dict=state, training={**source.training, "compression": history})
    # int8 is slower than float on some CPUs: both timed here as stylize runs them, and the choice recorded
    float_model = target if remove > 0 else Path(model)
    with tempfile.TemporaryDirectory() as folder:
        trial = Path(folder) / "int8.pt"
        save_model(trial, dataclasses.replace(record, config={**config, "int8_timing": {
            "cpu": int8_networks.cpu_kind(), "float_precision": int8_networks.float_precision(), "choice": "int8"}}),
                   half=False)
        config.update(int8_timing=measure_startup(float_model, trial, mix))
    written = save_model(output, dataclasses.replace(record, config=config), half=False)
    if remove > 0:  # the pruned float step was only the way here
        target.unlink(missing_ok=True)
    return written, "done"


# ------------------------------------------------------------------------------ the measurement

#: Fresh processes per side when ``compress`` times int8 against float (alternated; medians).
STARTUP_ROUNDS = 3
#: int8 is chosen only where it is faster than float by more than what a busy machine moves a
#: median by, for one photo and per photo after it: a wrong "int8" makes every run slower, a wrong
#: "float" only forgoes a small gain.
INT8_MARGIN = 0.9


def _startup_worker() -> None:
    """In a fresh process (``python -c``): load ``argv[1]`` as ``stylize`` does on the CPU, paint a
    ``argv[2]`` px photo with the blend ``argv[3]`` (JSON) three times; say "first" on a line of its
    own as soon as the first painting is done (the parent times the launch to that line: the
    interpreter, the imports, the file and the first image, as one photo's command costs), then print
    the best of the next two paintings' seconds as JSON."""
    import json
    import sys

    side, mix = int(sys.argv[2]), json.loads(sys.argv[3])
    photo = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    model = FastModel(sys.argv[1], device="cpu")
    model.stylize(photo, mix)
    print("first", flush=True)
    after = []
    for _ in range(2):
        began = time.perf_counter()
        model.stylize(photo, mix)
        after.append(time.perf_counter() - began)
    print(json.dumps({"next_s": min(after), "int8": model.int8}))


def time_in_fresh_process(path: str | os.PathLike, side: int = 512, mix: Sequence[float] = (1.0,)) -> dict[str, Any]:
    """:func:`_startup_worker`'s figures for one model file (the float model, or an int8 file) painting
    with the style blend ``mix``: ``start_s``, the seconds from launching the process to its first
    painting (what one photo's whole command costs, less reading and writing the photo), ``next_s``
    per painting after it, and ``int8``, whether it ran its int8 network."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import impasto

    environment = dict(os.environ)
    package_root = os.fspath(Path(impasto.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    code = "from impasto.networks.compress import _startup_worker; _startup_worker()"
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: the child never waits on it
        started = time.perf_counter()
        with subprocess.Popen([sys.executable, "-c", code, os.fspath(path), str(side), json.dumps(list(mix))],
                              stdout=subprocess.PIPE, stderr=errors, text=True, env=environment) as run:
            first = run.stdout.readline()
            start_s = time.perf_counter() - started
            rest = run.stdout.read()
        if run.returncode != 0 or first.strip() != "first":
            errors.seek(0)
            raise ImpastoError(f"timing the model failed: {(errors.read().strip().splitlines() or ['?'])[-1]}", path)
    return {"start_s": start_s, **json.loads(rest.strip().splitlines()[-1])}


def measure_startup(float_model: str | os.PathLike, int8_file: str | os.PathLike, mix: Sequence[float],
                    side: int = 512, rounds: int = STARTUP_ROUNDS) -> dict[str, Any]:
    """The float model and an int8 file as ``stylize`` runs them on this CPU, each in fresh processes
    (alternated, ``rounds`` each; medians): seconds from launch to the first ``side`` px image (the
    interpreter, the imports and the file included: one photo's command) and per image after it; and the choice (int8 only where it is clearly faster, by
    :data:`INT8_MARGIN`, for one photo and per photo after the first); both paint with the int8 file's blend ``mix``.  ``int8_file`` must run
    int8 here (its record says so)."""
    import statistics

    runs: dict[str, list[dict[str, Any]]] = {"float": [], "int8": []}
    for _ in range(rounds):
        runs["float"].append(time_in_fresh_process(float_model, side, mix))
        runs["int8"].append(time_in_fresh_process(int8_file, side, mix))
    timing: dict[str, Any] = {"cpu": int8_networks.cpu_kind(), "float_precision": int8_networks.float_precision(), "side": side,
                              "threads": torch.get_num_threads(), "rounds": rounds}
    for name, measured in runs.items():
        timing[f"{name}_start_s"] = round(statistics.median(run["start_s"] for run in measured), 4)
        timing[f"{name}_s"] = round(statistics.median(run["next_s"] for run in measured), 4)
    ran_int8 = all(run["int8"] for run in runs["int8"])
    clearly = INT8_MARGIN * timing["float_start_s"], INT8_MARGIN * timing["float_s"]
    timing["choice"] = "int8" if ran_int8 and timing["int8_start_s"] <= clearly[0] and \
        timing["int8_s"] <= clearly[1] else "float"
    timing["margin"] = INT8_MARGIN
    return timing
