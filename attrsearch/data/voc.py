"""PASCAL VOC-2007 (``voc2007``) from a VOCdevkit folder, or any folder in the same layout.

Layout under the ``VOC2007`` folder: ``ImageSets/Main/<split>.txt`` (image ids),
``Annotations/<id>.xml`` (objects: name, difficult, 1-based inclusive ``bndbox``),
``JPEGImages/<id>.jpg`` (``.png`` accepted: the shapes export is lossless) and, for the
segmented subset, ``SegmentationClass/<id>.png`` (palette indices: 0 background, 1..C classes in
class-list order, 255 void). Void becomes 255 in every class mask; images without a
segmentation PNG get ``has_masks=False`` and all-255 masks. Annotations are parsed when the
dataset is built; images are read and resized per item.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attrsearch.config import DataConfig
from attrsearch.data.base import VOID, AttributionDataset, DatasetInfo, file_stamp, normalization_stats
from attrsearch.data.images import file_sample, read_label_png, read_rgb
from attrsearch.data.registry import ScanTarget, register_dataset
from attrsearch.errors import UserError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def find_voc_root(root: Path | str | None) -> Path:
    """The ``VOC2007`` folder: ``root`` itself, ``root/VOC2007`` or ``root/VOCdevkit/VOC2007``."""
    if root is None:
        raise UserError("data.root: voc2007 needs the VOC2007 (or VOCdevkit) folder")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data.root: {root}: no such folder")
    for cand in (root, root / "VOC2007", root / "VOCdevkit" / "VOC2007"):
        if (cand / "ImageSets").is_dir() or (cand / "Annotations").is_dir():
            return cand
    raise UserError(
        f"data.root: {root}: no VOC2007 folder (expected ImageSets/ and Annotations/ in it, in VOC2007/ or in VOCdevkit/VOC2007/)"
    )


def read_split_ids(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: no such split file")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise UserError(f"{path}: the split file lists no images")
    return ids


@dataclass(frozen=True)
class VOCRecord:
    """One image's annotation; boxes are 0-based xyxy (x1/y1 exclusive) in original pixels."""

    image_id: str
    image_path: Path
    mask_path: Path | None
    labels: np.ndarray  # (C,) float32
    boxes: np.ndarray  # (N, 4) float32
    box_labels: np.ndarray  # (N,) int64


def parse_annotation(
    path: Path, class_index: dict[str, int], use_difficult: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Annotations/<id>.xml`` -> (labels (C,), boxes (N, 4), box_labels (N,)).

    VOC boxes are 1-based and inclusive: ``xmin..xmax`` -> ``[xmin - 1, xmax)`` 0-based, exclusive end.
    """
    try:
        tree = ET.parse(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such annotation file") from None
    except ET.ParseError as err:
        raise UserError(f"{path}: malformed annotation XML ({err})") from None
    labels = np.zeros(len(class_index), np.float32)
    boxes, box_labels = [], []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in class_index:
            raise UserError(f"{path}: unknown class {name!r} (not in data.voc.classes)")
        if not use_difficult and (obj.findtext("difficult") or "0").strip() == "1":
            continue
        k = class_index[name]
        labels[k] = 1.0
        bb = obj.find("bndbox")
        if bb is None:
            continue
        try:
            x0, y0, x1, y1 = (float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise UserError(f"{path}: object {name!r} has an incomplete bndbox") from None
        boxes.append((x0 - 1.0, y0 - 1.0, x1, y1))
        box_labels.append(k)
    return labels, np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(box_labels, np.int64)


def _image_path(folder: Path, image_id: str) -> Path:
    for ext in (".jpg", ".png", ".jpeg", ".JPG"):
        p = folder / f"{image_id}{ext}"
        if p.is_file():
            return p
    raise UserError(f"{folder / (image_id + '.jpg')}: no such image file")


def load_records(voc_root: Path, split_name: str, classes: tuple[str, ...], use_difficult: bool) -> list[VOCRecord]:
    """Check the folders, then parse the split's annotations (``UserError`` names any missing path)."""
    split_file = voc_root / "ImageSets" / "Main" / f"{split_name}.txt"
    ids = read_split_ids(split_file)
    ann_dir, img_dir, seg_dir = voc_root / "Annotations", voc_root / "JPEGImages", voc_root / "SegmentationClass"
    for folder in (ann_dir, img_dir):
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder")
    class_index = {name: k for k, name in enumerate(classes)}
    records = []
    for image_id in ids:
        ann = ann_dir / f"{image_id}.xml"
        if not ann.is_file():
            raise UserError(f"{ann}: no such annotation file (listed in {split_file})")
        labels, boxes, box_labels = parse_annotation(ann, class_index, use_difficult)
        mask = seg_dir / f"{image_id}.png"
        records.append(
            VOCRecord(
                image_id, _image_path(img_dir, image_id), mask if mask.is_file() else None, labels, boxes, box_labels
            )
        )
    return records


def class_masks(seg: np.ndarray, num_classes: int, path: Path | str = "") -> np.ndarray:
    """(H, W) index map (0 background, 1..C classes, 255 void) -> (C, H, W) uint8 in {0, 1, 255}."""
    bad = (seg > num_classes) & (seg != VOID)
    if bad.any():
        raise UserError(f"{path}: class index {int(seg[bad].max())} outside 1..{num_classes} (and 255 void)")
    masks = (seg[None] == np.arange(1, num_classes + 1, dtype=np.uint8)[:, None, None]).astype(np.uint8)
    masks[:, seg == VOID] = VOID
    return masks


class VOCDataset(AttributionDataset):
    """One VOC split: annotations in memory, images and segmentation PNGs read per item."""

    def __init__(self, records: list[VOCRecord], info: DatasetInfo, split: str):
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
        else:
            masks = np.full((C, size, size), VOID, np.uint8)
        return file_sample(
            index, rgb, original, rec.labels, masks, rec.mask_path is not None, rec.boxes, rec.box_labels, self.info
        )


def split_names(cfg: DataConfig) -> dict[str, str]:
    """attrsearch split -> VOC split name (``ImageSets/Main/<name>.txt``)."""
    return {"train": cfg.voc.train_split, "val": cfg.voc.val_split, "test": cfg.voc.test_split}


def fingerprint(cfg: DataConfig) -> dict[str, Any]:
    """The VOC folder, split names, class list, and size + mtime of each split file (the annotation
    XMLs are not stamped one by one: a folder holds thousands)."""
    try:
        voc_root = find_voc_root(cfg.root)
    except UserError:
        voc_root = Path(cfg.root).expanduser() if cfg.root is not None else None
    names = split_names(cfg)
    files = {}
    if voc_root is not None:
        files = {
            name: file_stamp(voc_root / "ImageSets" / "Main" / f"{name}.txt") for name in sorted(set(names.values()))
        }
    return {
        "root": None if voc_root is None else str(voc_root.resolve()),
        "splits": names,
        "classes": list(cfg.voc.classes) if cfg.voc.classes is not None else list(VOC_CLASSES),
        "split_files": files,
    }


def split_records(cfg: DataConfig, split: str) -> tuple[list[VOCRecord], tuple[str, ...]]:
    """The records ``split`` reads (``max_<split>`` applied) and the class names."""
    voc_root = find_voc_root(cfg.root)
    classes = tuple(cfg.voc.classes) if cfg.voc.classes is not None else VOC_CLASSES
    records = load_records(voc_root, split_names(cfg)[split], classes, cfg.voc.use_difficult)
    limit = {"train": cfg.max_train, "val": cfg.max_val, "test": cfg.max_test}[split]
    return (records[:limit] if limit else records), classes


def scan_targets(cfg: DataConfig, split: str) -> list[ScanTarget]:
    """What the pre-flight scan (``attrsearch.data.scan``) checks for ``split``: each image, and its
    segmentation PNG (indices 0..C or 255, the image's size) where there is one."""
    records, classes = split_records(cfg, split)
    return [ScanTarget(r.image_path, r.mask_path, len(classes)) for r in records]


@register_dataset(
    "voc2007",
    fingerprint=fingerprint,
    scan=scan_targets,
    num_classes=lambda cfg: len(cfg.voc.classes or VOC_CLASSES),
    doc="PASCAL VOC-2007 from a VOCdevkit folder (20 classes, segmented subset has masks)",
)
def build_voc(cfg: DataConfig, split: str, cache_dir: Path) -> VOCDataset:
    """Split ``split`` (mapped through ``cfg.voc.<split>_split``) of the VOC folder ``cfg.root``."""
    records, classes = split_records(cfg, split)
    mean, std = normalization_stats(cfg.normalization)
    info = DatasetInfo(
        name="voc2007", num_classes=len(classes), class_names=classes, image_size=cfg.image_size, mean=mean, std=std
    )
    return VOCDataset(records, info, split)
