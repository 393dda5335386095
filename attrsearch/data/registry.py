"""The dataset registry: one ``DatasetSpec`` per name, registered by ``register_dataset`` in the
dataset's own file.

A builder is ``build(cfg: DataConfig, split: str, cache_dir: Path) -> AttributionDataset`` with
``split`` in ``train | val | test``; it checks its files before any work starts.

A scanner is ``scan(cfg: DataConfig, split: str) -> list[ScanTarget]``: the files a split reads,
for the pre-flight scan (``attrsearch.data.scan.scan_dataset``) that checks every one of them before any
work starts. Datasets without one (the generated ``shapes``) need no scan.

A class count is ``num_classes(cfg: DataConfig) -> int``: the number of classes the config alone fixes
(the built-in generator's setting, VOC's class list), so that a model for another class count is refused
before any data is built; a dataset that knows it only from its files (COCO's categories) has none.

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

from attrsearch.data.base import AttributionDataset
from attrsearch.registry import Registry


@dataclass(frozen=True)
class ScanTarget:
    """One image the pre-flight scan checks: ``mask`` its segmentation PNG (class indices 0..``num_classes``
    or 255) if it has one; ``size`` the (width, height) its annotation records, if it records one;
    ``class_masks`` its per-class mask PNGs (palette or greyscale, the image's size), if it has them."""

    image: Path
    mask: Path | None = None
    num_classes: int = 0
    size: tuple[int, int] | None = None
    class_masks: tuple[Path, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its builder, fingerprint and scanner (None: none), and whether it is read
    from a folder (``data.root`` required) or generated."""

    build: Callable[[Any, str, Path], AttributionDataset]
    fingerprint: Callable[[Any], Any] | None = None
    scan: Callable[[Any, str], list[ScanTarget]] | None = None
    needs_root: bool = True
    num_classes: Callable[[Any], int] | None = None


DATASETS: Registry[DatasetSpec] = Registry("dataset", DatasetSpec)

# Decorator on a builder: ``@register_dataset(name, doc=..., fingerprint=..., scan=..., needs_root=...)``.
register_dataset = DATASETS.register
