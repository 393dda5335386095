"""``dataset: coco``: any COCO-format instances JSON (renamed, non-contiguous category ids, one JSON per
split or one JSON split by a ratio and a seed, boxes without segmentation), duplicate ids refused by the
loader and the pre-flight scan, and the ground truth the pixel metrics are scored against."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from attrsearch.cli import main
from attrsearch.config import DataConfig, EvaluationConfig
from attrsearch.data import build_dataset
from attrsearch.data.scan import scan_dataset
from attrsearch.errors import UserError
from attrsearch.metrics import registry as metric_registry
from attrsearch.metrics import suites
from attrsearch.metrics.common import box_masks
from attrsearch.metrics.evaluate import evaluate
from attrsearch.metrics.suites import Family, Suite
from tests.support.metric_models import TinyCNN

W, H = 40, 30
SIZE = 80  # x scale 2, y scale 8/3
# Listed out of id order, renamed, non-contiguous: contiguous indices follow the sorted ids 7, 42, 1000.
CATEGORIES = [{"id": 1000, "name": "kite"}, {"id": 7, "name": "zebra"}, {"id": 42, "name": "apple"}]
ORDER = ("zebra", "apple", "kite")
BOX = [10, 6, 10, 9]  # x, y, w, h (original pixels) -> x 20..40, y 16..40 at 80 px


def write_coco_boxes(base: Path, n: int = 10, segment_first: bool = False) -> Path:
    """``base/instances.json`` (boxes only, unless ``segment_first``: image 100 gets a polygon) and
    ``base/images/<id>.png`` for image ids 100..100+n-1; returns ``base``."""
    (base / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        image_id = 100 + i
        Image.fromarray(np.full((H, W, 3), 20 * i, np.uint8)).save(base / "images" / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": W, "height": H})
        ann = {"id": i + 1, "image_id": image_id, "category_id": CATEGORIES[i % 3]["id"], "bbox": BOX, "iscrowd": 0}
        if segment_first and i == 0:
            ann["segmentation"] = [[10, 6, 20, 6, 20, 15, 10, 15]]
        anns.append(ann)
    doc = {"images": images, "annotations": anns, "categories": CATEGORIES}
    (base / "instances.json").write_text(json.dumps(doc))
    return base


def _cfg(root: Path, **coco) -> DataConfig:
    return DataConfig(
        dataset="coco",
        root=root,
        image_size=SIZE,
        coco={"train_annotations": "instances.json", "train_images": "images", **coco},
    )


@pytest.fixture(scope="module")
def boxes_root(tmp_path_factory) -> Path:
    return write_coco_boxes(tmp_path_factory.mktemp("coco_boxes"))


def test_any_category_ids_and_names(boxes_root):
    ds = build_dataset(_cfg(boxes_root), "train", "unused")
    assert ds.info.class_names == ORDER and ds.info.num_classes == 3 and ds.info.name == "coco"
    for i, image_id in enumerate(ds.image_ids):
        k = ORDER.index(CATEGORIES[(image_id - 100) % 3]["name"])
        assert ds[i]["labels"].tolist() == [float(j == k) for j in range(3)]
        assert ds[i]["box_labels"].tolist() == [k]


def test_one_json_split_by_ratio_and_seed(boxes_root):
    parts = {s: build_dataset(_cfg(boxes_root), s, "unused").image_ids for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert sorted(sum(parts.values(), [])) == list(range(100, 110))
    assert parts == {s: build_dataset(_cfg(boxes_root), s, "unused").image_ids for s in parts}  # deterministic
    wider = {s: build_dataset(_cfg(boxes_root, val_fraction=0.3, test_fraction=0.2), s, "unused") for s in parts}
    assert [len(wider[s]) for s in ("train", "val", "test")] == [5, 3, 2]
    # the seed decides which images are held out: seeds 0..4 do not all pick the same test image
    tests = {tuple(build_dataset(_cfg(boxes_root, split_seed=s), "test", "unused").image_ids) for s in range(5)}
    assert len(tests) > 1
    with pytest.raises(UserError, match=r"instances\.json: 10 annotated images are too few"):
        build_dataset(_cfg(boxes_root, val_fraction=0.5, test_fraction=0.5), "train", "unused")


def test_one_json_per_split_and_their_categories_agree(boxes_root, tmp_path):
    doc = json.loads((boxes_root / "instances.json").read_text())
    (tmp_path / "val.json").write_text(json.dumps(doc))
    cfg = _cfg(boxes_root, val_annotations=str(tmp_path / "val.json"))
    assert build_dataset(cfg, "val", "unused").image_ids == list(range(100, 110))
    assert len(build_dataset(cfg, "train", "unused")) == 9  # only test is held out of the train JSON
    doc["categories"][0]["name"] = "renamed"
    (tmp_path / "val.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"val\.json: its categories differ from those of .*instances\.json"):
        build_dataset(cfg, "val", "unused")
    with pytest.raises(UserError, match="data.coco.train_annotations: dataset coco needs"):
        build_dataset(DataConfig(dataset="coco", root=boxes_root), "train", "unused")


def test_boxes_stand_in_for_missing_segmentation(boxes_root):
    ds = build_dataset(_cfg(boxes_root), "train", "unused")
    assert ds.info.ground_truth == "boxes"
    s = ds[0]
    k = int(s["box_labels"][0])
    np.testing.assert_allclose(s["boxes"].numpy(), [[20, 6 * SIZE / H, 40, 15 * SIZE / H]], rtol=1e-6)
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[16:40, 20:40] = 1  # pixel centres inside y 16..40, x 20..40
    assert s["has_masks"] is True
    np.testing.assert_array_equal(s["masks"][k].numpy(), expected)
    assert s["masks"].sum() == expected.sum()  # the other classes are empty, no void
    # the same pixel-centre rule as the metrics' box masks
    assert torch.equal(s["masks"][k].bool(), box_masks(s["boxes"], SIZE, SIZE)[0])


def test_skip_leaves_no_pixel_ground_truth_and_mixed_data_says_so(boxes_root, tmp_path):
    ds = build_dataset(_cfg(boxes_root, missing_masks="skip"), "train", "unused")
    assert ds.info.ground_truth == "none"
    assert ds[0]["has_masks"] is False and (ds[0]["masks"] == 255).all()
    mixed = write_coco_boxes(tmp_path / "mixed", segment_first=True)
    cfg = _cfg(mixed, val_fraction=0.01, test_fraction=0.01, split_seed=3)
    parts = {s: build_dataset(cfg, s, "unused") for s in ("train", "val", "test")}
    owner = next(d for d in parts.values() if 100 in d.image_ids)
    assert owner.info.ground_truth == "masks+boxes"
    s = owner[owner.image_ids.index(100)]
    assert s["masks"].sum() == 20 * 24  # the polygon x 10..20, y 6..15 at 80 px: 20 x 24 pixels
    skipped = build_dataset(
        cfg.model_copy(update={"coco": cfg.coco.model_copy(update={"missing_masks": "skip"})}), owner.split, "unused"
    )
    assert skipped.info.ground_truth == "masks"


class BoxAttribution:
    """Maps that are exactly each image's box masks (the ground truth): IoU 1."""

    def __init__(self, dataset):
        self.maps = torch.stack([dataset[i]["masks"].float().clamp(max=1) for i in range(len(dataset))])
        self.seen = 0

    def __call__(self, x):
        out = self.maps[self.seen : self.seen + x.shape[0]]
        self.seen += x.shape[0]
        return out


@pytest.mark.parametrize("missing", ["boxes", "skip"])
def test_pixel_metrics_say_boxes_or_are_omitted(boxes_root, missing, monkeypatch):
    # the full suite's families that read pixel ground truth, alone (the others take seconds here)
    suite = Suite("ground truth", (Family("segmentation"), Family("pointing")))
    monkeypatch.setitem(suites.SUITES, "ground_truth_test", suite)
    monkeypatch.setitem(metric_registry.SUITES, "ground_truth_test", suite.description)
    ds = build_dataset(_cfg(boxes_root, missing_masks=missing), "train", "unused")
    cfg = EvaluationConfig(batch_size=4)
    result = evaluate(BoxAttribution(ds), TinyCNN(num_classes=3), ds, cfg, suite="ground_truth_test")
    seg = {k: v for k, v in result.metrics.items() if k.startswith(("segmentation/", "sanity/"))}
    if missing == "boxes":
        assert result.params["segmentation/ground_truth"] == "boxes"
        assert result.metrics["segmentation/iou"] == pytest.approx(1.0)
        assert result.metrics["sanity/gt/iou"] == pytest.approx(1.0)
        assert result.metrics["segmentation/images"] == len(ds)
        assert any("boxes, drawn as masks" in n for n in result.notes)
    else:
        assert result.params["segmentation/ground_truth"] == "none"
        assert seg == {}
        assert sum("no pixel ground truth" in n for n in result.notes) == 1
    assert result.params["pointing_game/ground_truth"] == missing.replace("skip", "none")


def _coco_experiment(tmp_path, make_tiny_experiment, root: Path) -> Path:
    exp = make_tiny_experiment()
    exp["data"] = {
        "dataset": "coco",
        "root": str(root),
        "image_size": 32,
        "coco": {"train_annotations": "instances.json", "train_images": "images"},
    }
    exp["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def _refused(capsys, argv, tmp_path, needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_an_image_id_listed_twice_is_refused_by_loader_and_scan(tmp_path, capsys, make_tiny_experiment):
    root = write_coco_boxes(tmp_path / "data")
    doc = json.loads((root / "instances.json").read_text())
    doc["images"][3]["id"] = 100  # image 103's entry now claims id 100 too
    (root / "instances.json").write_text(json.dumps(doc))
    needle = f"{root / 'instances.json'}: images lists id 100 twice; each id must be unique"
    with pytest.raises(UserError, match="images lists id 100 twice"):
        build_dataset(_cfg(root), "train", "unused")
    with pytest.raises(UserError) as err:
        scan_dataset(_cfg(root), tmp_path / "cache")
    assert str(err.value) == needle
    exp = _coco_experiment(tmp_path, make_tiny_experiment, root)
    _refused(capsys, ["train", str(exp), "--out", str(tmp_path / "out")], tmp_path, needle)


def test_a_missing_image_file_stops_train_before_anything(tmp_path, capsys, make_tiny_experiment):
    root = write_coco_boxes(tmp_path / "data")
    (root / "images" / "105.png").unlink()
    exp = _coco_experiment(tmp_path, make_tiny_experiment, root)
    _refused(capsys, ["train", str(exp), "--out", str(tmp_path / "out")], tmp_path, "105.png: no such image file")
