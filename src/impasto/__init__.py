"""impasto: neural style transfer.

``impasto.stylize(content, style, **options)`` returns a PIL image (the optimisation method);
:mod:`impasto.methods` runs every method through one interface; the pieces they are made of
(backbone, losses, images, engine) are importable for those who build on them.

The names below are imported when first used, so that ``import impasto`` (and ``impasto
--version``) does not load PyTorch.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

#: public name -> the module that defines it
_EXPORTS = {
    "VGG": "core.backbone", "layer_names": "core.backbone", "load_backbone": "core.backbone",
    "ImpastoError": "core.errors",
    "read_image": "core.images", "save_image": "core.images",
    "StyleObjective": "core.losses", "content_loss": "core.losses", "gram_matrix": "core.losses", "gram_style_loss": "core.losses",
    "total_variation": "core.losses",
    "Result": "core.results", "OptimizeSettings": "engines.optimize", "StyleSettings": "engines.optimize", "run": "engines.optimize", "stylize": "engines.optimize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module 'impasto' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
