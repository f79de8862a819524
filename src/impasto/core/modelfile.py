"""The files trained networks live in: weights plus what they are, how they were made and by which version.

A model file is a plain ``torch.save`` dictionary, loadable with ``weights_only=True`` (no code
runs on load)::

    {"format": "impasto-model", "kind": "fast" | "adain-decoder", "version": "0.2.0",
     "config": {...how to build the network...}, "state_dict": {...fp16 tensors...},
     "training": {...settings, steps, losses, hardware, seconds...}}

Floating-point weights are stored in fp16 (half the size; the networks run in fp32 or bf16 after
loading).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from impasto.core.errors import ImpastoError
from impasto.core.files import atomic_write

FORMAT = "impasto-model"


@dataclass
class ModelFile:
    """A loaded model file."""

    kind: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    training: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    path: Path | None = None


def half_state(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to fp16 on the CPU (integers, e.g. counters, untouched)."""
    return {
        key: (value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu())
        for key, value in state_dict.items()
    }


def save_model(path: str | os.PathLike, model: ModelFile, half: bool = True) -> Path:
    """Write a model file atomically, weights in fp16 (``half``; an int8 model's observed ranges and
    histograms need fp32: counts overflow fp16 and tiny epsilons vanish in it)."""
    from impasto import __version__

    payload = {
        "format": FORMAT,
        "kind": model.kind,
        "version": __version__,
        "config": dict(model.config),
        "state_dict": half_state(model.state_dict) if half else {k: v.detach().cpu() for k, v in model.state_dict.items()},
        "training": dict(model.training),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def _read_payload(path: Path) -> dict:
    """The saved dictionary of an impasto model file (tensors only: nothing in it can run code)."""
    if not path.exists():
        raise ImpastoError("no such model file", path)
    if path.is_dir():
        raise ImpastoError("is a directory, not a model file", path)
    try:
        with warnings.catch_warnings():  # an int8 file's tensors: PyTorch's note on its own API, not the user's
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated", category=UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ImpastoError(f"cannot read the model file ({exc.strerror or exc})", path) from None
    except Exception:  # noqa: BLE001 - corrupt, truncated or foreign: the same problem for the user
        # torch's own message advises unsafe loading (weights_only=False); impasto never does that
        raise ImpastoError("not a valid impasto model file (corrupt, truncated, or not made by impasto)",
                           path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ImpastoError("not an impasto model file", path)
    return payload


def load_model(path: str | os.PathLike, kind: str | None = None) -> ModelFile:
    """Read a model file of ``kind`` (None: of any kind); anything else (missing, corrupt, other kind)
    is a one-line error."""
    path = Path(path)
    payload = _read_payload(path)
    if kind is None:
        kind = str(payload.get("kind"))
    if payload.get("kind") != kind:
        raise ImpastoError(f"is a {payload.get('kind')!r} model, not a {kind!r} model", path)
    state = payload.get("state_dict")
    config = payload.get("config")
    if not isinstance(state, dict) or not isinstance(config, dict):
        raise ImpastoError("model file is incomplete (no weights or no configuration)", path)
    return ModelFile(
        kind=kind,
        config=config,
        state_dict=state,
        training=payload.get("training") or {},
        version=str(payload.get("version", "")),
        path=path,
    )


def load_weights(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], path: Path | None) -> None:
    """Load weights into a freshly built network, converting dtype; a mismatch is a one-line error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise ImpastoError(f"model weights do not fit the network ({what})", path)
    for key, value in state_dict.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ImpastoError(
                f"model weights do not fit the network ({key}: {tuple(value.shape)} vs {tuple(own[key].shape)})", path
            )
    module.load_state_dict({key: value.to(own[key].dtype) for key, value in state_dict.items()})


# ----------------------------------------------------------------------------------- shipped models

SHIPPED_DIR = Path(__file__).parents[1] / "models"


def shipped_models() -> list[ModelFile]:
    """The models inside the package, loaded (they are small), sorted by kind then name."""
    return _models_in(SHIPPED_DIR)


def _models_in(folder: Path, skip_unreadable: bool = False) -> list[ModelFile]:
    """Every model file in ``folder``, of any kind, sorted by kind then name."""
    found = []
    for path in sorted(folder.glob("*.pt")):
        try:
            found.append(load_model(path))
        except ImpastoError:
            if not skip_unreadable:
                raise
    return sorted(found, key=lambda m: (m.kind, m.path.stem if m.path else ""))


def user_models_dir() -> Path:
    """Where your own model files go to be used by name and listed in the studio: ``IMPASTO_MODELS``
    if set, else ``models/`` in the user's data folder (platformdirs)."""
    if os.environ.get("IMPASTO_MODELS"):
        return Path(os.environ["IMPASTO_MODELS"])
    import platformdirs

    return Path(platformdirs.user_data_dir("impasto")) / "models"


def user_models() -> list[ModelFile]:
    """The readable model files in :func:`user_models_dir` (unreadable ones are left out)."""
    return _models_in(user_models_dir(), skip_unreadable=True)


def available_models() -> list[ModelFile]:
    """The shipped models, then your own (a name that ships is the shipped one)."""
    shipped = shipped_models()
    names = {m.path.stem for m in shipped if m.path}
    return [*shipped, *[m for m in user_models() if m.path and m.path.stem not in names]]


def resolve_model(name: str | os.PathLike) -> Path:
    """A model file path, or the name of a shipped model (``mosaic`` -> the package's ``mosaic.pt``)
    or of one of yours (in :func:`user_models_dir`)."""
    path = Path(name)
    if path.exists() or path.suffix or os.sep in os.fspath(name):
        return path
    for folder in (SHIPPED_DIR, user_models_dir()):
        if (folder / f"{name}.pt").exists():
            return folder / f"{name}.pt"
    names = ", ".join(p.stem for p in sorted(SHIPPED_DIR.glob("*.pt"))) or "none"
    raise ImpastoError(f"no model file or model named {os.fspath(name)!r} (shipped: {names}; yours go in "
                       f"{user_models_dir()})")


def model_kind(path: Path) -> str:
    """The kind recorded in a model file (reads it; model files are small)."""
    return str(_read_payload(Path(path)).get("kind"))
