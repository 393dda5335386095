"""Datasets with one sample interface (see ``attrsearch.data.base``), the registry of their builders,
and their fingerprints.

A builder is ``builder(cfg: DataConfig, split: str, cache_dir: Path) -> AttributionDataset`` with
``split`` in ``train | val | test``; it checks its files before any work starts.

A scanner is ``scanner(cfg: DataConfig, split: str) -> list[ScanTarget]``: the files a split reads,
for the pre-flight scan (``attrsearch.data.scan.scan_dataset``) that checks every one of them before any
work starts. Datasets without one (the generated ``shapes``) need no scan.

A fingerprint is ``fingerprint(cfg: DataConfig) -> JSON-able``: what decides the images and labels
besides the ``DataConfig`` fields (the built-in generator's version, the annotation files of a
dataset folder). ``(DataConfig fields, fingerprint)`` is the cache key of anything derived from
the data (a trained Explanandum). It never raises and never reads a whole dataset: missing files
are recorded as missing (the builder reports them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from attrsearch.errors import UserError
from attrsearch.registry import Registry

DATASETS: Registry[AttributionDataset] = Registry("dataset")
FINGERPRINTS: dict[str, Callable[[Any], Any]] = {}  # dataset name -> fingerprint(cfg); registered beside its builder


@dataclass(frozen=True)
class ScanTarget:
    """One image the pre-flight scan checks: ``mask`` its segmentation PNG (class indices 0..``num_classes``
    or 255) if it has one; ``size`` the (width, height) its annotation records, if it records one."""

    image: Path
    mask: Path | None = None
    num_classes: int = 0
    size: tuple[int, int] | None = None


SCANNERS: dict[str, Callable[[Any, str], list[ScanTarget]]] = {}  # dataset name -> scanner(cfg, split)

# Datasets that need no ``data.root`` (generated, not read from a folder).
BUILT_IN = ("shapes",)

SPLITS = ("train", "val", "test")


def build_dataset(cfg, split: str, cache_dir: Path | str) -> AttributionDataset:
    """Build ``split`` of the dataset ``cfg.dataset`` (``cfg`` is a ``DataConfig``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return DATASETS.get(cfg.dataset, field="data.dataset")(cfg, split, Path(cache_dir))


def fingerprint(cfg) -> Any:
    """The fingerprint of the data ``cfg`` (a ``DataConfig``) names; None for a dataset without one."""
    fn = FINGERPRINTS.get(cfg.dataset)
    return fn(cfg) if fn is not None else None


def check_data_config(cfg, field: str = "data") -> None:
    """The registry checks of a ``DataConfig``: a registered dataset, and ``root`` for a dataset read
    from a folder. ``UserError`` as ``field.dataset: ...`` / ``field: ...``."""
    DATASETS.get(cfg.dataset, field=f"{field}.dataset" if field else "dataset")
    if cfg.dataset not in BUILT_IN and cfg.root is None:
        where = f"{field}: " if field else ""
        raise UserError(f"{where}dataset {cfg.dataset!r} needs data.root (the dataset folder)")


# Importing the modules registers their builders.
from attrsearch.data import coco, shapes, voc  # noqa: E402,F401

__all__ = [
    "DATASETS",
    "SPLITS",
    "VOID",
    "AttributionDataset",
    "DatasetInfo",
    "BUILT_IN",
    "FINGERPRINTS",
    "SCANNERS",
    "ScanTarget",
    "build_dataset",
    "check_data_config",
    "collate_samples",
    "denormalize",
    "fingerprint",
    "normalization_stats",
    "normalize",
]
