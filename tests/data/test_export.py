from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from attrsearch.config import DataConfig, validate
from attrsearch.data import build_dataset
from attrsearch.data.export import export_dataset, voc_palette
from attrsearch.errors import UserError


@pytest.fixture(scope="module")
def source(tmp_path_factory, tiny_shapes):
    cfg = tiny_shapes(image_size=32, num_train=12, num_val=4, num_test=5, p_hard_negative=0.5)
    cache = tmp_path_factory.mktemp("cache")
    return cfg, cache, {split: build_dataset(cfg, split, cache) for split in ("train", "val", "test")}


def _same(a: dict, b: dict, exact_image: bool = True) -> None:
    np.testing.assert_array_equal(a["labels"].numpy(), b["labels"].numpy())
    np.testing.assert_array_equal(a["masks"].numpy(), b["masks"].numpy())
    np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy())
    np.testing.assert_array_equal(a["box_labels"].numpy(), b["box_labels"].numpy())
    np.testing.assert_allclose(a["image"].numpy(), b["image"].numpy(), atol=1e-5)  # lossless PNG
    assert b["has_masks"] is True


def test_voc_round_trip(source, tmp_path):
    cfg, cache, src = source
    root = export_dataset(cfg, "voc", tmp_path, cache)
    assert root == tmp_path / "VOCdevkit" / "VOC2007"
    names = src["train"].info.class_names
    main = root / "ImageSets" / "Main"
    assert (main / "trainval.txt").read_text().split() == (main / "train.txt").read_text().split() + (
        main / "val.txt"
    ).read_text().split()
    flags = dict(line.split() for line in (main / f"{names[0]}_test.txt").read_text().splitlines())
    assert len(flags) == 5 and set(flags.values()) <= {"1", "-1"}
    assert (root / "ImageSets" / "Segmentation" / "test.txt").read_text().split() == (
        main / "test.txt"
    ).read_text().split()
    seg = Image.open(root / "SegmentationClass" / "000000.png")
    assert seg.mode == "P" and seg.getpalette()[:12] == voc_palette()[:12]
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())["data"]
    assert data["voc"]["classes"] == list(names)
    back_cfg = validate(DataConfig, data, source="data.yaml")
    for split, ds in src.items():
        back = build_dataset(back_cfg, split, cache)
        assert len(back) == len(ds) and back.info.class_names == names
        for i in range(len(ds)):
            _same(ds[i], back[i])
    test_ids = (main / "test.txt").read_text().split()
    assert [flags[i] == "1" for i in test_ids] == [bool(src["test"][i]["labels"][0]) for i in range(5)]


def test_coco_round_trip(source, tmp_path):
    cfg, cache, src = source
    root = export_dataset(cfg, "coco", tmp_path, cache)
    assert (root / "annotations" / "instances_val.json").is_file() and (root / "val" / "000001.png").is_file()
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())["data"]
    back_cfg = validate(DataConfig, data, source="data.yaml")
    test = build_dataset(back_cfg, "test", cache)
    assert test.info.class_names == src["test"].info.class_names
    assert test.image_ids == list(range(1, len(src["test"]) + 1))
    for i in range(len(test)):
        _same(src["test"][i], test[i])
    # the COCO builder's train/val partition the exported train split by image id
    train, val = build_dataset(back_cfg, "train", cache), build_dataset(back_cfg, "val", cache)
    assert sorted(train.image_ids + val.image_ids) == list(range(1, len(src["train"]) + 1))
    for ds in (train, val):
        for i, image_id in enumerate(ds.image_ids):
            _same(src["train"][image_id - 1], ds[i])


def test_unknown_format(source, tmp_path):
    cfg, cache, _ = source
    with pytest.raises(UserError, match="format"):
        export_dataset(cfg, "yolo", tmp_path, cache)
