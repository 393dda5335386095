from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from attrsearch.config import DataConfig
from attrsearch.data import VOID, build_dataset
from attrsearch.data.coco import segment_mask
from attrsearch.errors import UserError
from tests.support.data_files import COCO_CATEGORY_IDS, H, W

SIZE = 80  # 40 x 30 -> 80 x 80: x scale 2, y scale 8/3


def _cfg(root, **kw) -> DataConfig:
    return DataConfig(dataset="coco2014", root=root, image_size=SIZE, **kw)


def _index(cat_id: int) -> int:
    return COCO_CATEGORY_IDS.index(cat_id)


def test_category_mapping_is_sorted_and_contiguous(coco_root):
    ds = build_dataset(_cfg(coco_root), "test", "unused")
    assert ds.info.num_classes == 80
    assert ds.info.class_names[0] == "cat1" and ds.info.class_names[-1] == "cat90"
    assert _index(13) == 11 and _index(90) == 79  # ids 12 and 83 .. 89 gaps
    assert ds.image_ids == [1]


def test_train_val_split_skips_unannotated_images(coco_root):
    train = build_dataset(_cfg(coco_root), "train", "unused")
    val = build_dataset(_cfg(coco_root), "val", "unused")
    assert sorted(train.image_ids + val.image_ids) == [5, 7, 9]  # image 11 has no annotations
    assert len(val) == 1 and not set(train.image_ids) & set(val.image_ids)
    again = build_dataset(_cfg(coco_root), "val", "unused")
    assert again.image_ids == val.image_ids  # deterministic
    half = build_dataset(_cfg(coco_root, coco={"val_fraction": 0.67}), "val", "unused")
    assert len(half) == 2


def _sample(coco_root, image_id):
    cfg = _cfg(coco_root, coco={"val_fraction": 0.01})
    for split in ("train", "val"):
        ds = build_dataset(cfg, split, "unused")
        if image_id in ds.image_ids:
            return ds[ds.image_ids.index(image_id)]
    raise AssertionError(image_id)


def test_polygon_and_crowd_segments(coco_root):
    s = _sample(coco_root, 5)
    person, car = _index(1), _index(3)
    labels = s["labels"].numpy()
    assert labels[person] == 1 and labels[car] == 1 and labels.sum() == 2  # crowd counts as present
    masks = s["masks"].numpy()
    assert s["has_masks"] is True and masks.shape == (80, SIZE, SIZE)
    # crowd: x 0..10, y 20..30 (original) -> x 0..20, y 53.3..80: void in every class mask
    crowd = np.zeros((SIZE, SIZE), bool)
    crowd[54:, :20] = True
    assert (masks[:, crowd] == VOID).all()
    assert (masks[:, :53][:, :, :] != VOID).all() and (masks[:, :, 21:] != VOID).all()
    assert masks[car].max() == VOID and not (masks[car] == 1).any()  # a crowd is no instance
    # polygon x 10..20, y 5..15 -> x 20..40, y 13.3..40
    assert masks[person][20:38, 22:38].all() and masks[person][:10].sum() == 0 and masks[person][:, 45:].sum() == 0
    # only the non-crowd annotation is a box, scaled to the resized image
    assert s["box_labels"].tolist() == [person]
    np.testing.assert_allclose(s["boxes"].numpy(), [[20, 5 * SIZE / H, 40, 15 * SIZE / H]], rtol=1e-6)


def test_whole_image_polygon_and_test_split(coco_root):
    s = _sample(coco_root, 7)
    assert s["labels"][79] == 1
    assert (s["masks"][79] == 1).all()
    t = build_dataset(_cfg(coco_root), "test", "unused")[0]
    assert torch.equal(t["masks"][0][:, :40], torch.ones(SIZE, 40, dtype=torch.uint8))
    assert not t["masks"][0][:, 40:].any()


def test_segment_decoding_matches_pycocotools_conventions():
    poly = [[0, 0, 4, 0, 4, 2, 0, 2]]
    m = segment_mask(poly, 3, 5)
    assert m.shape == (3, 5) and m[:2, :4].all() and m.sum() == 8
    uncompressed = {"size": [3, 5], "counts": [3, 2, 10]}  # column-major runs: 3 zeros, 2 ones, 10 zeros
    u = segment_mask(uncompressed, 3, 5)
    assert u.sum() == 2 and u[0, 1] == 1 and u[1, 1] == 1


def test_missing_and_bad_files(coco_root, tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        build_dataset(_cfg(tmp_path / "nowhere"), "train", "unused")
    with pytest.raises(UserError, match=r"instances_train2014\.json: no such annotation file"):
        build_dataset(_cfg(tmp_path), "train", "unused")
    copy = tmp_path / "copy"
    shutil.copytree(coco_root, copy)
    shutil.rmtree(copy / "val2014")
    with pytest.raises(UserError, match="val2014: no such image folder"):
        build_dataset(_cfg(copy), "test", "unused")
    (copy / "annotations" / "instances_train2014.json").write_text("{not json")
    with pytest.raises(UserError, match=r"instances_train2014\.json: malformed JSON"):
        build_dataset(_cfg(copy), "train", "unused")
    doc = {"images": [{"id": 1, "file_name": "x.jpg", "width": W, "height": H}], "categories": [],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "iscrowd": 0}]}  # fmt: skip
    (copy / "annotations" / "instances_train2014.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="unknown category_id 3"):
        build_dataset(_cfg(copy), "train", "unused")


def test_unreadable_image_names_the_file(coco_root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(coco_root, copy)
    (copy / "val2014" / "001.jpg").write_bytes(b"\x00garbage")
    ds = build_dataset(_cfg(copy), "test", "unused")
    with pytest.raises(UserError, match=r"001\.jpg: unreadable image"):
        ds[0]
