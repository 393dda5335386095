"""COCO-format instances files through pycocotools: any COCO-format dataset (``coco``) and MS COCO-2014
(``coco2014``, the same reader with COCO-2014's file names as defaults).

``cfg.root`` holds the instances JSON files and image folders named in ``cfg.coco``. The
categories the train JSON lists (any ids, any names; 80 for COCO) map to contiguous indices sorted
by category id; a val or test JSON must list the same categories. Images without any annotation
are skipped; an image id listed twice in a file is refused (pycocotools would keep the last entry's
file with the first one's annotations). Splits: one JSON per split, or val and test held out of the
train JSON by ``val_fraction`` / ``test_fraction`` and ``split_seed`` (``attrsearch.data.splits``;
``coco2014``: val is 10% of train2014, test is val2014, as in Stalder et al., 2022).

Masks: polygon and RLE segments are decoded with ``pycocotools.mask`` at the original size and
resized with nearest neighbour. Crowd annotations (``iscrowd=1``) count for the labels, but their
pixels are void (255) in every class mask (their extent is coarse) and their boxes are not
instance boxes. Segmentation is optional: an image with a non-crowd annotation that has none
(no key, or an empty one) gets its boxes drawn as its masks (``coco.missing_masks: boxes``) or no
pixel ground truth (``skip``); ``DatasetInfo.ground_truth`` says which, and the metrics record it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from pycocotools.coco import COCO

from attrsearch.config import DataConfig
from attrsearch.data.base import VOID, AttributionDataset, DatasetInfo, file_stamp, normalization_stats
from attrsearch.data.images import box_class_masks, file_sample, read_rgb, resize_nearest, scale_boxes
from attrsearch.data.registry import ScanTarget, register_dataset
from attrsearch.data.splits import partition
from attrsearch.errors import UserError

# coco2014's file names, for the ``data.coco`` paths left empty.
COCO2014_PATHS = {
    "train_annotations": "annotations/instances_train2014.json",
    "train_images": "train2014",
    "test_annotations": "annotations/instances_val2014.json",
    "test_images": "val2014",
}


def load_coco(path: Path) -> COCO:
    """An instances JSON through pycocotools (its progress prints silenced)."""
    if not path.is_file():
        raise UserError(f"{path}: no such annotation file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: malformed JSON ({err})") from None
    except (AssertionError, KeyError, TypeError) as err:
        raise UserError(f"{path}: not a COCO instances file ({type(err).__name__}: {err})") from None
    for section in ("images", "categories"):
        twice = [i for i, n in Counter(e.get("id") for e in coco.dataset.get(section, [])).items() if n > 1]
        if twice:
            more = f" (and {len(twice) - 1} more)" if len(twice) > 1 else ""
            raise UserError(f"{path}: {section} lists id {twice[0]!r} twice{more}; each id must be unique")
    return coco


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
    segmented: bool = True  # every non-crowd annotation has a segmentation


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
        segmented = True
        for ann in anns:
            if ann.get("category_id") not in cat_index:
                raise UserError(
                    f"{source}: annotation {ann.get('id')} has an unknown category_id {ann.get('category_id')!r}"
                )
            k = cat_index[ann["category_id"]]
            labels[k] = 1.0
            crowd = bool(ann.get("iscrowd", 0))
            if ann.get("segmentation"):
                segments.append((k, crowd, ann["segmentation"]))
            elif not crowd:
                segmented = False
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
                segmented=segmented,
            )
        )
    return records


class COCODataset(AttributionDataset):
    """One COCO split: annotations in memory, images read and masks decoded per item.
    ``box_ground_truth``: images without segmentation get their boxes as masks (else no pixel ground truth)."""

    def __init__(self, records: list[COCORecord], info: DatasetInfo, split: str, box_ground_truth: bool = True):
        self.records = records
        self.info = info
        self.split = split
        self.box_ground_truth = box_ground_truth

    @property
    def image_ids(self) -> list[int]:
        return [r.image_id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        size, C = self.info.image_size, self.info.num_classes
        rgb, original = read_rgb(rec.image_path, size)
        has_masks = rec.segmented or self.box_ground_truth
        if rec.segmented:
            masks = np.zeros((C, size, size), np.uint8)
        elif self.box_ground_truth:
            masks = box_class_masks(scale_boxes(rec.boxes, original, size).numpy(), rec.box_labels, C, size)
        else:
            masks = np.full((C, size, size), VOID, np.uint8)
        if has_masks:
            void = np.zeros((size, size), bool)
            for k, crowd, segm in rec.segments:
                m = resize_nearest(segment_mask(segm, rec.height, rec.width), size).astype(bool)
                if crowd:
                    void |= m
                elif rec.segmented:
                    masks[k][m] = 1
            masks[:, void] = VOID
        return file_sample(index, rgb, original, rec.labels, masks, has_masks, rec.boxes, rec.box_labels, self.info)


def ground_truth_kind(records: list[COCORecord], box_ground_truth: bool) -> str:
    """``DatasetInfo.ground_truth`` of a split: masks, boxes, masks+boxes, or none."""
    segmented = sum(r.segmented for r in records)
    if segmented == len(records):
        return "masks"
    if not box_ground_truth:
        return "masks" if segmented else "none"
    return "masks+boxes" if segmented else "boxes"


def coco_paths(cfg: DataConfig) -> dict[str, str | None]:
    """The ``data.coco`` paths with the dataset's defaults filled in (coco2014: COCO-2014's names;
    coco: images under ``root``, val/test images with the train images)."""
    paths = {k: getattr(cfg.coco, k) for k in ("train_annotations", "train_images", "val_annotations", "val_images")}
    paths.update(test_annotations=cfg.coco.test_annotations, test_images=cfg.coco.test_images)
    if cfg.dataset == "coco2014":
        paths.update({k: v for k, v in COCO2014_PATHS.items() if paths[k] is None})
    paths["train_images"] = paths["train_images"] or "."
    for split in ("val", "test"):
        paths[f"{split}_images"] = paths[f"{split}_images"] or paths["train_images"]
    return paths


def fingerprint(cfg: DataConfig) -> dict[str, Any]:
    """The COCO folder, the annotation files (size + mtime) and image folders, and the partition."""
    root = Path(cfg.root).expanduser().resolve() if cfg.root is not None else None
    paths = coco_paths(cfg)
    anns = {split: paths[f"{split}_annotations"] for split in ("train", "val", "test")}
    return {
        "root": None if root is None else str(root),
        "annotations": {
            split: [name, file_stamp(root / name) if root is not None and name else None]
            for split, name in anns.items()
        },
        "images": {split: paths[f"{split}_images"] for split in ("train", "val", "test")},
        "partition": [cfg.coco.val_fraction, cfg.coco.test_fraction, cfg.coco.split_seed],
    }


@functools.lru_cache(maxsize=4)
def _annotated(
    ann_path: str, image_dir: str, stamp: tuple[int, ...]
) -> tuple[list[COCORecord], tuple[tuple[int, str], ...]]:
    """All annotated records of one instances file and its categories (id, name) by id. Kept for the
    process, keyed by the file's size and mtime: the train JSON feeds train, val and test, and the
    pre-flight scan reads the same records the builders then use (COCO's train JSON takes seconds to parse)."""
    coco = load_coco(Path(ann_path))
    cat_ids = sorted(coco.cats)
    cat_index = {cid: k for k, cid in enumerate(cat_ids)}
    cats = tuple((int(cid), str(coco.cats[cid].get("name", cid))) for cid in cat_ids)
    return load_records(coco, Path(image_dir), cat_index, ann_path), cats


def _read(root: Path, ann: str, images: str) -> tuple[list[COCORecord], tuple[tuple[int, str], ...]]:
    ann_path, image_dir = root / ann, root / images
    if not ann_path.is_file():
        raise UserError(f"{ann_path}: no such annotation file")
    if not image_dir.is_dir():
        raise UserError(f"{image_dir}: no such image folder")
    return _annotated(str(ann_path), str(image_dir), tuple(file_stamp(ann_path) or ()))


def split_records(cfg: DataConfig, split: str) -> tuple[list[COCORecord], tuple[str, ...]]:
    """The records ``split`` reads (``max_<split>`` applied) and the category names."""
    if cfg.root is None:
        raise UserError(f"data.root: {cfg.dataset} needs the folder of its instances JSON files")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root: {root}: no such folder")
    paths = coco_paths(cfg)
    if paths["train_annotations"] is None:
        raise UserError("data.coco.train_annotations: dataset coco needs the instances JSON of the train split")
    train, cats = _read(root, paths["train_annotations"], paths["train_images"])
    own = paths[f"{split}_annotations"] if split != "train" else None
    if own is not None:
        records, own_cats = _read(root, own, paths[f"{split}_images"])
        if own_cats != cats:
            raise UserError(f"{root / own}: its categories differ from those of {root / paths['train_annotations']}")
    else:
        fractions = {
            s: None if paths[f"{s}_annotations"] else getattr(cfg.coco, f"{s}_fraction") for s in ("val", "test")
        }
        where = str(root / paths["train_annotations"])
        parts = partition(train, fractions["val"], fractions["test"], cfg.coco.split_seed, where)
        records = parts[("train", "val", "test").index(split)]
    limit = {"train": cfg.max_train, "val": cfg.max_val, "test": cfg.max_test}[split]
    return list(records[:limit] if limit else records), tuple(name for _, name in cats)


def scan_targets(cfg: DataConfig, split: str) -> list[ScanTarget]:
    """What the pre-flight scan (``attrsearch.data.scan``) checks for ``split``: every image file the
    split reads exists, decodes, and has the width and height its annotation file records (the
    segments are drawn in those coordinates, the boxes scaled by the file's own size)."""
    records, _ = split_records(cfg, split)
    return [ScanTarget(r.image_path, size=(r.width, r.height)) for r in records]


def build_coco(cfg: DataConfig, split: str, cache_dir: Path) -> COCODataset:
    """Split ``split`` of the COCO-format folder ``cfg.root`` (paths in ``cfg.coco``)."""
    records, names = split_records(cfg, split)
    mean, std = normalization_stats(cfg.normalization)
    boxes = cfg.coco.missing_masks == "boxes"
    info = DatasetInfo(
        name=cfg.dataset,
        num_classes=len(names),
        class_names=names,
        image_size=cfg.image_size,
        mean=mean,
        std=std,
        ground_truth=ground_truth_kind(records, boxes),
    )
    return COCODataset(records, info, split, boxes)


register_dataset(
    "coco2014",
    fingerprint=fingerprint,
    scan=scan_targets,
    doc="MS COCO-2014 through pycocotools (80 classes; train minus 10% = train, that 10% = val, val2014 = test)",
)(build_coco)
register_dataset(
    "coco",
    fingerprint=fingerprint,
    scan=scan_targets,
    doc="any COCO-format instances JSON (one per split, or val/test held out by a ratio); boxes stand in for absent masks",
)(build_coco)
