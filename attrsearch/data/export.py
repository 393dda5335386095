"""Write a configured dataset (in practice ``shapes``) in the VOC-2007, the COCO or the folder layout.

VOC: ``VOCdevkit/VOC2007/{JPEGImages, Annotations, ImageSets/Main, ImageSets/Segmentation,
SegmentationClass}``; images are lossless PNG files (``JPEGImages/<id>.png``, which the
``voc2007`` builder reads); boxes in the XML are VOC's 1-based inclusive pixels; segmentation is a
palette PNG (VOC colour map; 0 background, k+1 class k, 255 void) for every image that has masks;
``ImageSets/Main`` holds ``<split>.txt`` and ``<class>_<split>.txt`` (``1`` / ``-1``), ``trainval``
included. COCO: ``annotations/instances_<split>.json`` (compressed RLE segments, ``bbox`` as
x, y, w, h; no segmentation with ``masks=False``) and ``<split>/<id>.png``. Folder: ``labels.csv``
(``image,labels,mask``), ``images/<split>/``, palette ``masks/<split>/`` and ``<split>.txt``. All
write ``data.yaml``: the ``data`` section that reads the export back. Datasets with an ``instance_masks(index)`` method (``shapes``) export exact instance
segments; others export one segment per box (class mask inside the box).
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pycocotools.mask as mask_utils
import yaml
from PIL import Image

from attrsearch.config import DataConfig
from attrsearch.data import SPLITS, build_dataset
from attrsearch.data.base import VOID, AttributionDataset
from attrsearch.data.scan import scan_dataset
from attrsearch.errors import UserError


def voc_palette() -> list[int]:
    """VOC's 256-entry colour map (the bits of the index spread over R, G, B), flat RGB list."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def raw_image(ds: AttributionDataset, sample: dict[str, Any]) -> np.ndarray:
    """The sample's image back to (H, W, 3) uint8 RGB (exact for uint8 sources)."""
    mean = np.asarray(ds.info.mean, np.float32)[:, None, None]
    std = np.asarray(ds.info.std, np.float32)[:, None, None]
    rgb = (sample["image"].numpy() * std + mean) * 255.0
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def index_map(masks: np.ndarray) -> np.ndarray:
    """(C, H, W) class masks in {0,1,255} -> (H, W) uint8: 0 background, k+1 class k, 255 void.

    Overlapping classes (not in ``shapes``) keep the highest class index.
    """
    C = masks.shape[0]
    seg = np.zeros(masks.shape[1:], np.uint8)
    for k in range(C):
        seg[masks[k] == 1] = k + 1
    seg[(masks == VOID).any(axis=0) & (seg == 0)] = VOID
    return seg


def instances(ds: AttributionDataset, index: int, sample: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """((N, H, W) uint8 instance masks, (N,) classes): exact if the dataset knows them, else box-cut."""
    if hasattr(ds, "instance_masks"):
        return ds.instance_masks(index)
    masks = sample["masks"].numpy()
    boxes = sample["boxes"].numpy()
    labels = sample["box_labels"].numpy()
    out = np.zeros((len(boxes),) + masks.shape[1:], np.uint8)
    for j, ((x0, y0, x1, y1), k) in enumerate(zip(boxes, labels)):
        ys, xs = slice(int(np.floor(y0)), int(np.ceil(y1))), slice(int(np.floor(x0)), int(np.ceil(x1)))
        out[j][ys, xs] = masks[k][ys, xs] == 1
    return out, labels.astype(np.int64)


# ------------------------------------------------------------------ VOC


def _voc_xml(image_id: str, filename: str, size: int, sample: dict[str, Any], names: tuple[str, ...]) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2007"
    ET.SubElement(root, "filename").text = filename
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "attrsearch export"
    sz = ET.SubElement(root, "size")
    for tag, val in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(sz, tag).text = str(val)
    ET.SubElement(root, "segmented").text = "1" if sample["has_masks"] else "0"
    boxes, box_labels = sample["boxes"].numpy(), sample["box_labels"].numpy()
    boxed = set(box_labels.tolist())
    labelled = np.flatnonzero(sample["labels"].numpy() > 0).tolist()
    objects = [(int(k), b) for b, k in zip(boxes, box_labels)] + [(k, None) for k in labelled if k not in boxed]
    for k, box in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[k]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        if box is not None:  # 0-based exclusive -> VOC 1-based inclusive
            bb = ET.SubElement(obj, "bndbox")
            x0, y0, x1, y1 = (int(round(float(v))) for v in box)
            for tag, val in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
                ET.SubElement(bb, tag).text = str(val)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8")


def export_voc(datasets: dict[str, AttributionDataset], out: Path) -> Path:
    """Write ``out/VOCdevkit/VOC2007``; returns that folder."""
    voc = out / "VOCdevkit" / "VOC2007"
    dirs = {n: voc / n for n in ("JPEGImages", "Annotations", "SegmentationClass")}
    dirs["main"], dirs["seg_sets"] = voc / "ImageSets" / "Main", voc / "ImageSets" / "Segmentation"
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    names = next(iter(datasets.values())).info.class_names
    ids: dict[str, list[str]] = {}
    segmented: dict[str, list[str]] = {}
    present: dict[str, list[np.ndarray]] = {}
    counter = 0
    for split, ds in datasets.items():
        ids[split], segmented[split], present[split] = [], [], []
        for i in range(len(ds)):
            sample = ds[i]
            image_id = f"{counter:06d}"
            counter += 1
            Image.fromarray(raw_image(ds, sample)).save(dirs["JPEGImages"] / f"{image_id}.png")
            (dirs["Annotations"] / f"{image_id}.xml").write_bytes(
                _voc_xml(image_id, f"{image_id}.png", ds.info.image_size, sample, names)
            )
            if sample["has_masks"]:
                seg = Image.fromarray(index_map(sample["masks"].numpy()))
                seg.putpalette(palette)
                seg.save(dirs["SegmentationClass"] / f"{image_id}.png")
                segmented[split].append(image_id)
            ids[split].append(image_id)
            present[split].append(sample["labels"].numpy() > 0)
    if "train" in ids and "val" in ids:
        ids["trainval"] = ids["train"] + ids["val"]
        segmented["trainval"] = segmented["train"] + segmented["val"]
        present["trainval"] = present["train"] + present["val"]
    for split in ids:
        (dirs["main"] / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids[split]))
        (dirs["seg_sets"] / f"{split}.txt").write_text("".join(f"{i}\n" for i in segmented[split]))
        flags = np.array(present[split]).reshape(len(ids[split]), len(names))
        for k, name in enumerate(names):
            lines = "".join(f"{i} {1 if f else -1:2d}\n" for i, f in zip(ids[split], flags[:, k]))
            (dirs["main"] / f"{name}_{split}.txt").write_text(lines)
    return voc


# ------------------------------------------------------------------ COCO


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def export_coco(datasets: dict[str, AttributionDataset], out: Path, masks: bool = True) -> Path:
    """Write ``out/annotations/instances_<split>.json`` and ``out/<split>/``; returns ``out``.
    ``masks`` False: boxes only (no ``segmentation`` in any annotation)."""
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    names = next(iter(datasets.values())).info.class_names
    categories = [{"id": k + 1, "name": n, "supercategory": "object"} for k, n in enumerate(names)]
    ann_id = 1
    for split, ds in datasets.items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(len(ds)):
            sample = ds[i]
            image_id = i + 1
            file_name = f"{image_id:06d}.png"
            rgb = raw_image(ds, sample)
            Image.fromarray(rgb).save(folder / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": rgb.shape[0], "width": rgb.shape[1]})
            inst, classes = instances(ds, i, sample)
            for m, k in zip(inst, classes):
                ys, xs = np.nonzero(m)
                if ys.size == 0:
                    continue
                x0, y0 = int(xs.min()), int(ys.min())
                ann = {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": int(k) + 1,
                    "segmentation": _rle(m),
                    "area": int(m.sum()),
                    "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],
                    "iscrowd": 0,
                }
                if not masks:
                    del ann["segmentation"]
                annotations.append(ann)
                ann_id += 1
        doc = {
            "info": {"description": f"attrsearch export of {ds.info.name} ({split})"},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
    return out


# ------------------------------------------------------------------ folder


def export_folder(datasets: dict[str, AttributionDataset], out: Path, masks: bool = True) -> Path:
    """Write ``out/labels.csv`` (image,labels[,mask]), ``out/images/<split>/``, ``out/masks/<split>/``
    (palette PNGs, VOC's colour map) and the split files ``out/<split>.txt``; returns ``out``.
    ``masks`` False: no mask column and no mask files."""
    palette = voc_palette()
    rows = [["image", "labels"] + (["mask"] if masks else [])]
    for split, ds in datasets.items():
        names = ds.info.class_names
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        if masks:
            (out / "masks" / split).mkdir(parents=True, exist_ok=True)
        listed = []
        for i in range(len(ds)):
            sample = ds[i]
            image = f"images/{split}/{i:06d}.png"
            Image.fromarray(raw_image(ds, sample)).save(out / image)
            labels = "|".join(names[k] for k in np.flatnonzero(sample["labels"].numpy() > 0))
            row = [image, labels]
            if masks:
                mask = f"masks/{split}/{i:06d}.png" if sample["has_masks"] else ""
                if mask:
                    seg = Image.fromarray(index_map(sample["masks"].numpy()))
                    seg.putpalette(palette)
                    seg.save(out / mask)
                row.append(mask)
            rows.append(row)
            listed.append(image)
        (out / f"{split}.txt").write_text("".join(f"{x}\n" for x in listed))
    with (out / "labels.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return out


def _data_section(fmt: str, root: Path, info) -> dict[str, Any]:
    """The ``data`` section that reads an export back."""
    data: dict[str, Any] = {"root": str(root), "image_size": info.image_size}
    if fmt == "voc":
        return {"dataset": "voc2007", **data, "voc": {"classes": list(info.class_names)}}
    if fmt == "folder":
        splits = {f"{s}_split": f"{s}.txt" for s in SPLITS}
        return {"dataset": "folder", **data, "folder": {"classes": list(info.class_names), **splits}}
    paths = {}
    for split in SPLITS:
        paths[f"{split}_annotations"] = f"annotations/instances_{split}.json"
        paths[f"{split}_images"] = split
    return {"dataset": "coco", **data, "coco": paths}


def export_dataset(
    cfg: DataConfig, fmt: Literal["voc", "coco", "folder"], out: Path, cache_dir: Path, masks: bool = True
) -> Path:
    """Export the train/val/test splits of ``cfg`` to ``out`` as ``fmt``; returns the folder to use
    as ``data.root`` (``out/VOCdevkit/VOC2007`` or ``out``) and writes ``out/data.yaml``.
    ``masks`` False (coco, folder): boxes and labels only, no segmentation."""
    if fmt not in ("voc", "coco", "folder"):
        raise UserError(f"format: unknown export format {fmt!r}; choose voc, coco or folder")
    if fmt == "voc" and not masks:
        raise UserError("--no-masks: only for --format coco or folder (a VOC export keeps its segmentation)")
    out = Path(out)
    scan_dataset(cfg, cache_dir)  # a VOC/COCO source: every file checked before anything is written
    datasets = {split: build_dataset(cfg, split, cache_dir) for split in SPLITS}
    info = datasets["train"].info
    if fmt == "voc":
        root = export_voc(datasets, out)
    elif fmt == "coco":
        root = export_coco(datasets, out, masks)
    else:
        root = export_folder(datasets, out, masks)
    data = _data_section(fmt, root, info)
    (out / "data.yaml").write_text(yaml.safe_dump({"data": data}, sort_keys=False))
    return root
