"""Shared fixtures: the default backbone, loaded once."""

import pytest
import torch

from impasto.backbone import load_backbone


@pytest.fixture(scope="session")
def vgg():
    """The default backbone (original Caffe VGG-19), built up to relu5_1."""
    return load_backbone(last_layer="relu5_1")


@pytest.fixture(autouse=True)
def _few_threads():
    torch.manual_seed(0)
    yield
