"""A folder of images with a CSV of multi-label annotations (``folder``), the simplest format users have.

``root/<data.folder.labels_file>`` (default ``labels.csv``) has a header row and the columns

- ``image``: the image's path relative to ``root/<data.folder.images>``;
- ``labels``: its class names separated by ``|`` (empty: no class present);
- ``mask`` (optional, may be empty per row): a palette (or greyscale) PNG of class indices, 0
  background, k+1 class k, 255 void (VOC's convention), or a path holding ``{class}``: one greyscale
  PNG per present class, ``{class}`` replaced by the class name, non-zero inside the class.

The classes are ``data.folder.classes`` in that order (a CSV label not in it is refused with one line
naming the file, the line and the label), or the sorted set of the CSV's labels. Splits: files under
``root`` listing ``image`` values one per line (``train_split`` / ``val_split`` / ``test_split``), or
val and test held out of the train rows by ``val_fraction`` / ``test_fraction`` and ``split_seed``
(``attrsearch.data.splits``). Images are resized like VOC's; masks by nearest neighbour and never
before their size is checked against the image's. There are no boxes: metrics that need them
(localisation, pointing on boxes) have no cases and are omitted, and without masks
``DatasetInfo.ground_truth`` is ``none`` and the pixel metrics are omitted with one note.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attrsearch.config import DataConfig
from attrsearch.data.base import VOID, AttributionDataset, DatasetInfo, file_stamp, normalization_stats
from attrsearch.data.images import file_sample, read_label_png, read_rgb
from attrsearch.data.registry import ScanTarget, register_dataset
from attrsearch.data.splits import partition
from attrsearch.data.voc import class_masks
from attrsearch.errors import UserError

CLASS_PLACEHOLDER = "{class}"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FolderRecord:
    """One CSV row: the image, its multi-hot labels, and its masks (a palette PNG, or per-class PNGs)."""

    name: str  # the ``image`` cell
    image_path: Path
    labels: np.ndarray  # (C,) float32
    mask_path: Path | None = None  # palette PNG of class indices
    class_mask_paths: tuple[tuple[int, Path], ...] = ()  # (class index, greyscale PNG) per present class

    @property
    def has_masks(self) -> bool:
        return self.mask_path is not None or bool(self.class_mask_paths)


def _root(cfg: DataConfig) -> Path:
    if cfg.root is None:
        raise UserError("data.root: folder needs the folder of its labels CSV")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root: {root}: no such folder")
    return root


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The CSV's rows as (line number, {column: stripped cell}); ``UserError`` naming the file."""
    if not path.is_file():
        raise UserError(f"{path}: no such labels file (data.folder.labels_file)")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "image" not in columns or "labels" not in columns:
                raise UserError(f"{path}: needs the header columns image,labels[,mask]; found {','.join(columns)}")
            return [
                (reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None})
                for row in reader
            ]
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: not a readable CSV ({err})") from None


def class_names(cfg: DataConfig, rows: list[tuple[int, dict[str, str]]]) -> tuple[str, ...]:
    """``data.folder.classes``, or the sorted labels of the CSV."""
    if cfg.folder.classes is not None:
        return tuple(cfg.folder.classes)
    found = sorted({lab.strip() for _, row in rows for lab in row["labels"].split("|") if lab.strip()})
    if not found:
        raise UserError(f"{cfg.folder.labels_file}: no row has a label; name the classes in data.folder.classes")
    return tuple(found)


def _record(images: Path, line: int, row: dict[str, str], index: dict[str, int], where: Path):
    if not row["image"]:
        raise UserError(f"{where} line {line}: empty image cell")
    labels = np.zeros(len(index), np.float32)
    present = []
    for lab in (x.strip() for x in row["labels"].split("|")):
        if not lab:
            continue
        if lab not in index:
            raise UserError(f"{where} line {line}: unknown class {lab!r} (not in data.folder.classes)")
        labels[index[lab]] = 1.0
        present.append(lab)
    mask = row.get("mask", "")
    rec: dict[str, Any] = {"name": row["image"], "image_path": images / row["image"], "labels": labels}
    if CLASS_PLACEHOLDER in mask:
        rec["class_mask_paths"] = tuple((index[c], images / mask.replace(CLASS_PLACEHOLDER, c)) for c in present)
    elif mask:
        rec["mask_path"] = images / mask
    return FolderRecord(**rec)


def all_records(cfg: DataConfig) -> tuple[list[FolderRecord], tuple[str, ...]]:
    """Every row of the CSV as a record, in file order, and the class names."""
    root = _root(cfg)
    path = root / cfg.folder.labels_file
    rows = read_rows(path)
    names = class_names(cfg, rows)
    index = {n: k for k, n in enumerate(names)}
    images = root / cfg.folder.images
    records, seen = [], {}
    for line, row in rows:
        rec = _record(images, line, row, index, path)
        if rec.name in seen:
            raise UserError(f"{path} line {line}: image {rec.name} is listed twice (first on line {seen[rec.name]})")
        seen[rec.name] = line
        records.append(rec)
    return records, names


def _split_file(root: Path, name: str, known: set[str]) -> list[str]:
    path = root / name
    if not path.is_file():
        raise UserError(f"{path}: no such split file")
    listed = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        item = line.strip()
        if item and item not in known:
            raise UserError(f"{path} line {n}: {item} is not an image of the labels file")
        if item:
            listed.append(item)
    return listed


def split_records(cfg: DataConfig, split: str) -> tuple[list[FolderRecord], tuple[str, ...]]:
    """The records ``split`` reads (``max_<split>`` applied) and the class names."""
    records, names = all_records(cfg)
    root, fc = _root(cfg), cfg.folder
    by_name = {r.name: r for r in records}
    owner: dict[str, str] = {}
    files = {s: getattr(fc, f"{s}_split") for s in SPLITS}
    for s in SPLITS:
        if files[s] is not None:
            for item in _split_file(root, files[s], set(by_name)):
                if owner.setdefault(item, s) != s:
                    raise UserError(f"{root / files[s]}: {item} is listed in the {owner[item]} split too")
    listed = {s: [r for r in records if owner.get(r.name) == s] for s in SPLITS}
    pool = listed["train"] if files["train"] is not None else [r for r in records if r.name not in owner]
    fractions = {s: None if files[s] is not None else getattr(fc, f"{s}_fraction") for s in ("val", "test")}
    train, val, test = partition(pool, fractions["val"], fractions["test"], fc.split_seed, str(root / fc.labels_file))
    parts = {"train": train, "val": listed["val"] or val, "test": listed["test"] or test}
    chosen = parts[split]
    if not chosen:
        raise UserError(f"{root / fc.labels_file}: the {split} split has no image")
    limit = {"train": cfg.max_train, "val": cfg.max_val, "test": cfg.max_test}[split]
    return (chosen[:limit] if limit else chosen), names


class FolderDataset(AttributionDataset):
    """One split of a folder dataset: the CSV in memory, images and masks read per item."""

    def __init__(self, records: list[FolderRecord], info: DatasetInfo, split: str):
        self.records = records
        self.info = info
        self.split = split

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        size, C = self.info.image_size, self.info.num_classes
        rgb, original = read_rgb(rec.image_path, size)
        if rec.mask_path is not None:
            masks = class_masks(read_label_png(rec.mask_path, size, original), C, rec.mask_path)
        elif rec.class_mask_paths:
            masks = np.zeros((C, size, size), np.uint8)
            for k, path in rec.class_mask_paths:
                masks[k] = read_label_png(path, size, original) > 0
        else:
            masks = np.full((C, size, size), VOID, np.uint8)
        no_boxes = np.zeros((0, 4), np.float32)
        return file_sample(
            index, rgb, original, rec.labels, masks, rec.has_masks, no_boxes, np.zeros(0, np.int64), self.info
        )


def fingerprint(cfg: DataConfig) -> dict[str, Any]:
    """The folder, the labels CSV and split files (size + mtime each), and the folder settings."""
    root = Path(cfg.root).expanduser().resolve() if cfg.root is not None else None
    names = [cfg.folder.labels_file] + [getattr(cfg.folder, f"{s}_split") for s in SPLITS]
    return {
        "root": None if root is None else str(root),
        "files": {n: file_stamp(root / n) if root is not None else None for n in names if n is not None},
    }


def scan_targets(cfg: DataConfig, split: str) -> list[ScanTarget]:
    """What the pre-flight scan checks for ``split``: each image, and its palette PNG (indices 0..C or
    255, the image's size) or its per-class PNGs (palette or greyscale, the image's size)."""
    records, names = split_records(cfg, split)
    return [
        ScanTarget(r.image_path, r.mask_path, len(names), class_masks=tuple(p for _, p in r.class_mask_paths))
        for r in records
    ]


@register_dataset(
    "folder",
    fingerprint=fingerprint,
    scan=scan_targets,
    doc="a folder of images and a CSV (image,labels[,mask]; labels separated by |), split files or a ratio",
)
def build_folder(cfg: DataConfig, split: str, cache_dir: Path) -> FolderDataset:
    """Split ``split`` of the folder dataset ``cfg.root`` (settings in ``cfg.folder``)."""
    records, names = split_records(cfg, split)
    mean, std = normalization_stats(cfg.normalization)
    annotated = sum(r.has_masks for r in records)
    info = DatasetInfo(
        name="folder",
        num_classes=len(names),
        class_names=names,
        image_size=cfg.image_size,
        mean=mean,
        std=std,
        ground_truth="masks" if annotated else "none",
    )
    return FolderDataset(records, info, split)
