from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from attrsearch.config import DataConfig, validate
from attrsearch.data import build_dataset
from attrsearch.data.export import export_dataset, index_map, voc_palette
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
    assert back_cfg.dataset == "coco" and back_cfg.coco.val_annotations == "annotations/instances_val.json"
    for split, ds in src.items():  # one JSON per split: every split comes back whole and in order
        back = build_dataset(back_cfg, split, cache)
        assert back.info.class_names == ds.info.class_names and back.info.ground_truth == "masks"
        assert back.image_ids == list(range(1, len(ds) + 1))
        for i in range(len(back)):
            _same(ds[i], back[i])


def test_coco_without_masks_reads_back_as_boxes(source, tmp_path):
    cfg, cache, src = source
    export_dataset(cfg, "coco", tmp_path, cache, masks=False)
    doc = json.loads((tmp_path / "annotations" / "instances_test.json").read_text())
    assert doc["annotations"] and not any("segmentation" in a for a in doc["annotations"])
    back_cfg = validate(DataConfig, yaml.safe_load((tmp_path / "data.yaml").read_text())["data"], source="data.yaml")
    back = build_dataset(back_cfg, "test", cache)
    assert back.info.ground_truth == "boxes"
    for i in range(len(back)):
        a, b = src["test"][i], back[i]
        np.testing.assert_array_equal(a["labels"].numpy(), b["labels"].numpy())
        np.testing.assert_allclose(a["boxes"].numpy(), b["boxes"].numpy())
        for box, k in zip(b["boxes"], b["box_labels"]):  # each box lies inside its class's box mask
            x0, y0, x1, y1 = (int(v) for v in box)
            assert (b["masks"][k][y0:y1, x0:x1] == 1).all()
    with pytest.raises(UserError, match="--no-masks: only for --format coco or folder"):
        export_dataset(cfg, "voc", tmp_path / "voc", cache, masks=False)


@pytest.mark.parametrize("masks", [True, False])
def test_folder_round_trip(source, tmp_path, masks):
    cfg, cache, src = source
    root = export_dataset(cfg, "folder", tmp_path, cache, masks=masks)
    header = (root / "labels.csv").read_text().splitlines()[0]
    assert header == ("image,labels,mask" if masks else "image,labels")
    back_cfg = validate(DataConfig, yaml.safe_load((tmp_path / "data.yaml").read_text())["data"], source="data.yaml")
    assert back_cfg.dataset == "folder" and back_cfg.folder.test_split == "test.txt"
    for split, ds in src.items():
        back = build_dataset(back_cfg, split, cache)
        assert len(back) == len(ds) and back.info.class_names == ds.info.class_names
        assert back.info.ground_truth == ("masks" if masks else "none")
        for i in range(len(ds)):
            a, b = ds[i], back[i]
            np.testing.assert_array_equal(a["labels"].numpy(), b["labels"].numpy())
            np.testing.assert_allclose(a["image"].numpy(), b["image"].numpy(), atol=1e-5)
            assert b["has_masks"] is masks and b["boxes"].shape == (0, 4)
            if masks:  # the palette PNG holds the highest class where shapes overlap
                np.testing.assert_array_equal(index_map(a["masks"].numpy()), index_map(b["masks"].numpy()))
            else:
                assert (b["masks"] == 255).all()


def test_unknown_format(source, tmp_path):
    cfg, cache, _ = source
    with pytest.raises(UserError, match="choose voc, coco or folder"):
        export_dataset(cfg, "yolo", tmp_path, cache)
