"""Fixtures of the data tests (the writers live in ``tests.support.data_files``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.data_files import tiny_shapes_config, write_coco, write_voc


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory) -> Path:
    """A tiny VOCdevkit (4 images of 40 x 30 px); the folder that contains ``VOCdevkit``."""
    return write_voc(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    """A tiny COCO folder (80 categories, polygon + RLE crowd segments)."""
    return write_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="session")
def tiny_shapes():
    """A factory of small, fast ``shapes`` configs: ``tiny_shapes(image_size=48, **shapes_fields)``."""
    return tiny_shapes_config
