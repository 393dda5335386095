"""MS COCO-2014 (``coco2014``) through pycocotools.

``cfg.root`` holds the instances JSON files and image folders named in ``cfg.coco``. The
categories the JSON lists (80 for COCO) map to contiguous indices sorted by category id.
Images without any annotation are skipped. ``train`` is the train JSON minus a deterministic
``val_fraction`` of its images (a fixed permutation of the sorted image ids), which is ``val``;
``test`` is the test JSON (val2014, as in Stalder et al., 2022).

Masks: polygon and RLE segments are decoded with ``pycocotools.mask`` at the original size and
resized with nearest neighbour. Crowd annotations (``iscrowd=1``) count for the labels, but their
pixels are void (255) in every class mask (their extent is coarse) and their boxes are not
instance boxes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from pycocotools.coco import COCO

from attrsearch.config import DataConfig
from attrsearch.data.base import VOID, AttributionDataset, DatasetInfo, file_stamp, normalization_stats
from attrsearch.data.images import file_sample, read_rgb, resize_nearest
from attrsearch.data.registry import ScanTarget, register_dataset
from attrsearch.errors import UserError

VAL_PERMUTATION_SEED = 0  # the train/val partition of the train JSON never changes


def load_coco(path: Path) -> COCO:
    """An instances JSON through pycocotools (its progress prints silenced)."""
    if not path.is_file():
        raise UserError(f"{path}: no such annotation file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: malformed JSON ({err})") from None
    except (AssertionError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a COCO instances file ({type(err).__name__}: {err})") from None


def segment_mask(segm: Any, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygon list, uncompressed or compressed RLE) -> (h, w) uint8 {0,1}."""
    if isinstance(segm, list):  # polygons of one instance
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    with warnings.catch_warnings():  # pycocotools' decode trips numpy 2's __array__(copy=) deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle)


@dataclass(frozen=True)
class COCORecord:
    """One image: labels, instance boxes (0-based xyxy, original pixels), and its segments."""

    image_id: int
    image_path: Path
    height: int
    width: int
    labels: np.ndarray  # (C,) float32
    boxes: np.ndarray  # (N, 4) float32, non-crowd only
    box_labels: np.ndarray  # (N,) int64
    segments: tuple[tuple[int, bool, Any], ...]  # (class index, iscrowd, segmentation)


def load_records(coco: COCO, image_dir: Path, cat_index: dict[int, int], source: Path | str = "") -> list[COCORecord]:
    """Records of the images that have at least one annotation, sorted by image id."""
    records = []
    for image_id in sorted(coco.imgs):
        anns = coco.imgToAnns.get(image_id, [])
        if not anns:
            continue
        img = coco.imgs[image_id]
        labels = np.zeros(len(cat_index), np.float32)
        boxes, box_labels, segments = [], [], []
        for ann in anns:
            if ann.get("category_id") not in cat_index:
                raise UserError(
                    f"{source}: annotation {ann.get('id')} has an unknown category_id {ann.get('category_id')!r}"
                )
            k = cat_index[ann["category_id"]]
            labels[k] = 1.0
            crowd = bool(ann.get("iscrowd", 0))
            if "segmentation" in ann:
                segments.append((k, crowd, ann["segmentation"]))
            if not crowd and "bbox" in ann:
                x, y, w, h = ann["bbox"]
                boxes.append((x, y, x + w, y + h))
                box_labels.append(k)
        records.append(
            COCORecord(
                image_id=image_id,
                image_path=image_dir / img["file_name"],
                height=int(img["height"]),
                width=int(img["width"]),
                labels=labels,
                boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                box_labels=np.asarray(box_labels, np.int64),
                segments=tuple(segments),
            )
        )
    return records


def split_train_val(records: list[COCORecord], val_fraction: float) -> tuple[list[COCORecord], list[COCORecord]]:
    """Hold out ``round(val_fraction * n)`` images (at least one when n >= 2) chosen by a fixed
    permutation of the id-sorted records; both parts stay sorted by image id."""
    n = len(records)
    n_val = max(1, round(val_fraction * n)) if n >= 2 else 0
    held = set(np.random.default_rng(VAL_PERMUTATION_SEED).permutation(n)[:n_val].tolist())
    train = [r for i, r in enumerate(records) if i not in held]
    val = [r for i, r in enumerate(records) if i in held]
    return train, val


class COCODataset(AttributionDataset):
    """One COCO split: annotations in memory, images read and masks decoded per item."""

    def __init__(self, records: list[COCORecord], info: DatasetInfo, split: str):
        self.records = records
        self.info = info
        self.split = split

    @property
    def image_ids(self) -> list[int]:
        return [r.image_id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        size, C = self.info.image_size, self.info.num_classes
        rgb, original = read_rgb(rec.image_path, size)
        masks = np.zeros((C, size, size), np.uint8)
        void = np.zeros((size, size), bool)
        for k, crowd, segm in rec.segments:
            m = resize_nearest(segment_mask(segm, rec.height, rec.width), size).astype(bool)
            if crowd:
                void |= m
            else:
                masks[k][m] = 1
        masks[:, void] = VOID
        return file_sample(index, rgb, original, rec.labels, masks, True, rec.boxes, rec.box_labels, self.info)


def fingerprint(cfg: DataConfig) -> dict[str, Any]:
    """The COCO folder, the annotation files (size + mtime) and image folders, and the train/val partition."""
    root = Path(cfg.root).expanduser().resolve() if cfg.root is not None else None
    anns = {"train": cfg.coco.train_annotations, "test": cfg.coco.test_annotations}
    return {
        "root": None if root is None else str(root),
        "annotations": {
            split: [name, file_stamp(root / name) if root is not None else None] for split, name in anns.items()
        },
        "images": {"train": cfg.coco.train_images, "test": cfg.coco.test_images},
        "val_partition": [cfg.coco.val_fraction, VAL_PERMUTATION_SEED],
    }


@functools.lru_cache(maxsize=2)
def _annotated(ann_path: str, image_dir: str, stamp: tuple[int, ...]) -> tuple[list[COCORecord], tuple[str, ...]]:
    """All annotated records of one instances file and its category names. Kept for the process,
    keyed by the file's size and mtime: the train JSON feeds both train and val, and the pre-flight
    scan reads the same records the builders then use (COCO's train JSON takes seconds to parse)."""
    coco = load_coco(Path(ann_path))
    cat_ids = sorted(coco.cats)
    cat_index = {cid: k for k, cid in enumerate(cat_ids)}
    names = tuple(str(coco.cats[cid]["name"]) for cid in cat_ids)
    return load_records(coco, Path(image_dir), cat_index, ann_path), names


def split_records(cfg: DataConfig, split: str) -> tuple[list[COCORecord], tuple[str, ...]]:
    """The records ``split`` reads (``max_<split>`` applied) and the category names."""
    if cfg.root is None:
        raise UserError("data.root: coco2014 needs the COCO folder")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root: {root}: no such folder")
    if split == "test":
        ann_path, image_dir = root / cfg.coco.test_annotations, root / cfg.coco.test_images
    else:
        ann_path, image_dir = root / cfg.coco.train_annotations, root / cfg.coco.train_images
    if not ann_path.is_file():
        raise UserError(f"{ann_path}: no such annotation file")
    if not image_dir.is_dir():
        raise UserError(f"{image_dir}: no such image folder")
    records, names = _annotated(str(ann_path), str(image_dir), tuple(file_stamp(ann_path) or ()))
    if split != "test":
        train, val = split_train_val(records, cfg.coco.val_fraction)
        records = train if split == "train" else val
    limit = {"train": cfg.max_train, "val": cfg.max_val, "test": cfg.max_test}[split]
    return list(records[:limit] if limit else records), names


def scan_targets(cfg: DataConfig, split: str) -> list[ScanTarget]:
    """What the pre-flight scan (``attrsearch.data.scan``) checks for ``split``: every image file the
    split reads exists, decodes, and has the width and height its annotation file records (the
    segments are drawn in those coordinates, the boxes scaled by the file's own size)."""
    records, _ = split_records(cfg, split)
    return [ScanTarget(r.image_path, size=(r.width, r.height)) for r in records]


@register_dataset(
    "coco2014",
    fingerprint=fingerprint,
    scan=scan_targets,
    doc="MS COCO-2014 through pycocotools (80 classes; train minus 10% = train, that 10% = val, val2014 = test)",
)
def build_coco(cfg: DataConfig, split: str, cache_dir: Path) -> COCODataset:
    """Split ``split`` of the COCO folder ``cfg.root`` (paths in ``cfg.coco``)."""
    records, names = split_records(cfg, split)
    mean, std = normalization_stats(cfg.normalization)
    info = DatasetInfo(
        name="coco2014", num_classes=len(names), class_names=names, image_size=cfg.image_size, mean=mean, std=std
    )
    return COCODataset(records, info, split)
