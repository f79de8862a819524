"""Shared fixtures: the default backbone, loaded once; a small photo and style on disk."""

import pytest
import torch

from impasto.core.backbone import load_backbone

from helpers import gradient_photo, stripes


def pytest_collection_modifyitems(items):
    """Tests that drive the studio in a browser are their own tier (``-m "not browser"``)."""
    for item in items:
        if {"browser", "page"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def vgg():
    """The default backbone (original Caffe VGG-19), built up to relu5_1."""
    return load_backbone(last_layer="relu5_1")


@pytest.fixture(autouse=True)
def _few_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture()
def inputs(tmp_path):
    """(content photo, style image) files: a 64x48 gradient photo and a 64 px stripe painting."""
    content, style = tmp_path / "content.png", tmp_path / "style.jpg"
    gradient_photo().save(content)
    stripes(64).save(style)
    return content, style


@pytest.fixture(autouse=True, scope="session")
def _private_history(tmp_path_factory):
    """Runs recorded by tests go to a temporary history, never the user's."""
    import os

    os.environ["IMPASTO_HISTORY"] = str(tmp_path_factory.mktemp("history"))
    os.environ["IMPASTO_MODELS"] = str(tmp_path_factory.mktemp("your-models"))  # none of the user's models
