"""Datasets with one sample interface (see ``attrsearch.data.base``) and the registry of their builders.

A builder is ``builder(cfg: DataConfig, split: str, cache_dir: Path) -> AttributionDataset`` with
``split`` in ``train | val | test``; it checks its files before any work starts.
"""

from __future__ import annotations

from pathlib import Path

from attrsearch.data.base import (
    VOID,
    AttributionDataset,
    DatasetInfo,
    collate_samples,
    denormalize,
    normalization_stats,
    normalize,
)
from attrsearch.registry import Registry

DATASETS: Registry[AttributionDataset] = Registry("dataset")

SPLITS = ("train", "val", "test")


def build_dataset(cfg, split: str, cache_dir: Path | str) -> AttributionDataset:
    """Build ``split`` of the dataset ``cfg.dataset`` (``cfg`` is a ``DataConfig``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return DATASETS.get(cfg.dataset, field="data.dataset")(cfg, split, Path(cache_dir))


# Importing the modules registers their builders.
from attrsearch.data import coco, shapes, voc  # noqa: E402,F401

__all__ = [
    "DATASETS",
    "SPLITS",
    "VOID",
    "AttributionDataset",
    "DatasetInfo",
    "build_dataset",
    "collate_samples",
    "denormalize",
    "normalization_stats",
    "normalize",
]
