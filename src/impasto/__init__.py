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
    "VGG": "backbone", "layer_names": "backbone", "load_backbone": "backbone",
    "ImpastoError": "errors",
    "read_image": "images", "save_image": "images",
    "StyleObjective": "losses", "content_loss": "losses", "gram_matrix": "losses", "gram_style_loss": "losses",
    "total_variation": "losses",
    "Result": "results", "OptimizeSettings": "optimize", "StyleSettings": "optimize", "run": "optimize", "stylize": "optimize",
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
