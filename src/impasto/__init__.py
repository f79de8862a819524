"""impasto: neural style transfer.

``impasto.stylize(content, style, **options)`` returns a PIL image (the optimisation method);
:mod:`impasto.methods` runs every method through one interface; the pieces they are made of
(backbone, losses, images, engine) are importable for those who build on them.
"""

__version__ = "0.2.0"

from .backbone import VGG, layer_names, load_backbone  # noqa: E402
from .errors import ImpastoError  # noqa: E402
from .images import read_image, save_image  # noqa: E402
from .losses import StyleObjective, content_loss, gram_matrix, gram_style_loss, total_variation  # noqa: E402
from .optimize import Result, StyleSettings, run, stylize  # noqa: E402

__all__ = [
    "VGG",
    "ImpastoError",
    "Result",
    "StyleObjective",
    "StyleSettings",
    "content_loss",
    "gram_matrix",
    "gram_style_loss",
    "layer_names",
    "load_backbone",
    "read_image",
    "run",
    "save_image",
    "stylize",
    "total_variation",
]
