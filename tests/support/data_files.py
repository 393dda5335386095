"""Helpers of the data tests: tiny on-disk VOC-2007 and COCO fixtures written in exactly those formats, and a tiny shapes config.

VOC: 4 images of 40 x 30 px (width x height); ``a`` and ``b`` are segmented (palette PNG with a
255 void border around each object), ``c`` has an unsegmented image and a difficult object.
COCO: the 80 real COCO category ids (1..90 with gaps), a train JSON with 4 images (one without
annotations, one with a polygon segment AND an RLE crowd segment) and a test JSON with 1 image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

from attrsearch.config import DataConfig
from attrsearch.data.export import voc_palette

W, H = 40, 30

# VOC: id -> (objects [(name, (xmin, ymin, xmax, ymax) 1-based inclusive, difficult)], segmented?)
VOC_IMAGES = {
    "a": ([("cat", (1, 1, 20, 30), 0)], True),  # left half
    "b": ([("dog", (21, 11, 40, 20), 0), ("person", (3, 3, 8, 8), 0)], True),
    "c": ([("tvmonitor", (5, 5, 15, 15), 0), ("bird", (20, 5, 30, 15), 1)], False),
    "d": ([("aeroplane", (1, 1, 40, 30), 0)], False),
}
VOC_SPLITS = {"train": ["a", "b"], "val": ["c"], "test": ["d"]}

COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def _voc_xml(image_id: str, objects) -> str:
    objs = "".join(
        f"<object><name>{n}</name><pose>Left</pose><truncated>0</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return (
        f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
        f"<size><width>{W}</width><height>{H}</height><depth>3</depth></size><segmented>0</segmented>{objs}</annotation>"
    )


def voc_segmentation(objects) -> np.ndarray:
    """(H, W) palette indices: each object's box filled with its class index + 1, ringed by 255."""
    from attrsearch.data.voc import VOC_CLASSES

    seg = np.zeros((H, W), np.uint8)
    for name, (x0, y0, x1, y1), _ in objects:
        ys, xs = slice(y0 - 1, y1), slice(x0 - 1, x1)
        ring = np.zeros((H, W), bool)
        ring[max(0, y0 - 2) : y1 + 1, max(0, x0 - 2) : x1 + 1] = True
        ring[ys, xs] = False
        seg[ring] = 255
        seg[ys, xs] = VOC_CLASSES.index(name) + 1
        # VOC draws void on the object's boundary too: make the outermost object row void.
        seg[y0 - 1, xs] = 255
    return seg


def write_voc(base: Path) -> Path:
    """``base/VOCdevkit/VOC2007`` with 4 images; returns ``base``."""
    voc = base / "VOCdevkit" / "VOC2007"
    for d in ("JPEGImages", "Annotations", "ImageSets/Main", "SegmentationClass"):
        (voc / d).mkdir(parents=True)
    palette = voc_palette()
    for i, (image_id, (objects, segmented)) in enumerate(VOC_IMAGES.items()):
        rgb = np.full((H, W, 3), 40 * i, np.uint8)
        rgb[:, W // 2 :] = (200, 30, 30)  # right half red
        Image.fromarray(rgb).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
        (voc / "Annotations" / f"{image_id}.xml").write_text(_voc_xml(image_id, objects))
        if segmented:
            seg = Image.fromarray(voc_segmentation(objects))
            seg.putpalette(palette)
            seg.save(voc / "SegmentationClass" / f"{image_id}.png")
    for split, ids in VOC_SPLITS.items():
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return base


def _coco_image(image_id: int, name: str) -> dict:
    return {"id": image_id, "file_name": name, "width": W, "height": H}


def write_coco(base: Path) -> Path:
    """``base/annotations/instances_{train,val}2014.json`` and ``base/{train,val}2014/``; returns ``base``."""
    (base / "annotations").mkdir()
    for folder in ("train2014", "val2014"):
        (base / folder).mkdir()
    cats = [{"id": cid, "name": f"cat{cid}", "supercategory": "x"} for cid in COCO_CATEGORY_IDS]
    crowd = np.zeros((H, W), np.uint8)
    crowd[20:30, 0:10] = 1  # bottom-left 10 x 10 block
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    crowd_rle["counts"] = crowd_rle["counts"].decode("ascii")
    train_images = [_coco_image(i, f"{i:03d}.jpg") for i in (5, 7, 9, 11)]
    train_anns = [
        # image 5: a polygon person (id 1) over x 10..20, y 5..15 plus a crowd of cars (id 3)
        {"id": 1, "image_id": 5, "category_id": 1, "iscrowd": 0, "bbox": [10, 5, 10, 10], "area": 100,
         "segmentation": [[10, 5, 20, 5, 20, 15, 10, 15]]},
        {"id": 2, "image_id": 5, "category_id": 3, "iscrowd": 1, "bbox": [0, 20, 10, 10], "area": 100,
         "segmentation": crowd_rle},
        # image 7: a toothbrush (id 90, the last category)
        {"id": 3, "image_id": 7, "category_id": 90, "iscrowd": 0, "bbox": [0, 0, 40, 30], "area": 1200,
         "segmentation": [[0, 0, 40, 0, 40, 30, 0, 30]]},
        # image 9: a stop sign (id 13)
        {"id": 4, "image_id": 9, "category_id": 13, "iscrowd": 0, "bbox": [20, 0, 20, 30], "area": 600,
         "segmentation": [[20, 0, 40, 0, 40, 30, 20, 30]]},
        # image 11 has no annotations and must be skipped
    ]  # fmt: skip
    test_images = [_coco_image(1, "001.jpg")]
    test_anns = [
        {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 20, 30], "area": 600,
         "segmentation": [[0, 0, 20, 0, 20, 30, 0, 30]]},
    ]  # fmt: skip
    for fname, images, anns, folder in (
        ("instances_train2014.json", train_images, train_anns, "train2014"),
        ("instances_val2014.json", test_images, test_anns, "val2014"),
    ):
        doc = {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": cats}
        (base / "annotations" / fname).write_text(json.dumps(doc))
        for img in images:
            rgb = np.full((H, W, 3), (img["id"] * 20) % 256, np.uint8)
            Image.fromarray(rgb).save(base / folder / img["file_name"], quality=95)
    return base


def tiny_shapes_config(image_size: int = 48, **shapes) -> DataConfig:
    """A small, fast ``shapes`` config."""
    base = {"num_train": 24, "num_val": 12, "num_test": 12}
    return DataConfig(dataset="shapes", image_size=image_size, shapes={**base, **shapes})


def slow_cache_worker(root: str, log: str, result: str) -> None:
    """Run ``cached_arrays`` with a slow builder that logs each build; write the array to ``result``."""
    import os
    import time

    from attrsearch.data.cache import cached_arrays

    def build():
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        return {"x": np.arange(5, dtype=np.float32) * 2}, {"by": os.getpid()}

    arrays, _ = cached_arrays(Path(root), "entry", build)
    Path(result).write_text(" ".join(str(v) for v in arrays["x"]))
