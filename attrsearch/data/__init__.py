"""Datasets with one sample interface (see ``attrsearch.data.base``), the registry of their specs
(``attrsearch.data.registry``: builder, fingerprint, scanner), and the calls that read it.

Each dataset registers its ``DatasetSpec`` in its own file with ``@register_dataset(...)`` on its
builder; this package imports the built-in ones (``coco``, ``folder``, ``shapes``, ``voc``), so importing
``attrsearch.data`` or ``attrsearch.data.registry`` registers them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attrsearch.data.base import (
    VOID,
    AttributionDataset,
    DatasetInfo,
    collate_samples,
    denormalize,
    normalization_stats,
    normalize,
)
from attrsearch.data.planted import planted_dataset
from attrsearch.data.registry import DATASETS, DatasetSpec, ScanTarget, register_dataset
from attrsearch.errors import UserError

SPLITS = ("train", "val", "test")


def build_dataset(cfg, split: str, cache_dir: Path | str) -> AttributionDataset:
    """Build ``split`` of the dataset ``cfg.dataset`` (``cfg`` is a ``DataConfig``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    ds = DATASETS.get(cfg.dataset, field="data.dataset").build(cfg, split, Path(cache_dir))
    return planted_dataset(ds, getattr(cfg, "planted", None), split)  # data.planted: a cue for any dataset


def fingerprint(cfg) -> Any:
    """The fingerprint of the data ``cfg`` (a ``DataConfig``) names; None for a dataset without one."""
    spec = DATASETS.get(cfg.dataset) if cfg.dataset in DATASETS else None
    return spec.fingerprint(cfg) if spec is not None and spec.fingerprint is not None else None


def config_class_count(cfg) -> int | None:
    """The class count the data ``cfg`` (a ``DataConfig``) fixes without reading any file; None when the
    dataset knows it only from its files (or is not registered)."""
    spec = DATASETS.get(cfg.dataset) if cfg.dataset in DATASETS else None
    return spec.num_classes(cfg) if spec is not None and spec.num_classes is not None else None


def check_data_config(cfg, field: str = "data") -> None:
    """The registry checks of a ``DataConfig``: a registered dataset, and ``root`` for a dataset read
    from a folder. ``UserError`` as ``field.dataset: ...`` / ``field: ...``."""
    spec = DATASETS.get(cfg.dataset, field=f"{field}.dataset" if field else "dataset")
    if spec.needs_root and cfg.root is None:
        where = f"{field}: " if field else ""
        raise UserError(f"{where}dataset {cfg.dataset!r} needs data.root (the dataset folder)")


# The built-in datasets: importing each registers its spec.
from attrsearch.data import coco, folder, shapes, voc  # noqa: E402,F401

__all__ = [
    "DATASETS",
    "SPLITS",
    "VOID",
    "AttributionDataset",
    "DatasetInfo",
    "DatasetSpec",
    "ScanTarget",
    "build_dataset",
    "check_data_config",
    "collate_samples",
    "config_class_count",
    "denormalize",
    "fingerprint",
    "normalization_stats",
    "normalize",
    "register_dataset",
]
