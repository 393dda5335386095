"""Users' own data end to end, through the CLI: a COCO-format export with renamed, non-contiguous
category ids and boxes only, and a folder dataset with and without masks, each trained into an
Explainer over the built-in ``small_cnn`` Explanandum (32 px, 1 epoch); ``metrics.json`` says what the
pixel metrics were scored against and never holds one scored against an empty ground truth.
About 8 s on 2 cores (not slow-marked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from attrsearch.cli import main

# export category id k + 1 -> a renamed, non-contiguous id (increasing, so the class order is kept)
NEW_IDS = {1: (5, "kite"), 2: (17, "zebra"), 3: (230, "apple"), 4: (1001, "stop sign")}


def _experiment(tmp_path: Path, make_tiny_experiment, data: dict, suite: str = "full") -> Path:
    exp = make_tiny_experiment()
    exp["data"] = data
    exp["train"]["epochs"] = 1
    exp["train"]["num_threads"] = 1
    exp["evaluation"] = {
        "final_suite": suite,
        "fast_subsample": 8,
        "transfer": {"panel": []},
        "faithfulness": {"max_images": 4},
        "class_specific_max_images": 4,
    }
    path = tmp_path / f"{data['dataset']}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def _export(tmp_path: Path, make_tiny_experiment, fmt: str, *flags: str) -> dict:
    """``attrsearch data export`` of the tiny shapes data; returns the ``data`` section it wrote."""
    source = make_tiny_experiment()
    source["data"]["shapes"].update(num_train=24, num_val=8, num_test=8)
    (tmp_path / "shapes.yaml").write_text(yaml.safe_dump(source))
    out = tmp_path / fmt
    argv = ["data", "export", "--config", str(tmp_path / "shapes.yaml"), "--format", fmt, "--out", str(out), *flags]
    assert main(argv) == 0
    return yaml.safe_load((out / "data.yaml").read_text())["data"]


def test_coco_boxes_only_with_renamed_categories(tmp_path, make_tiny_experiment):
    data = _export(tmp_path, make_tiny_experiment, "coco", "--no-masks")
    for split in ("train", "val", "test"):  # rename and renumber the categories
        path = Path(data["root"]) / "annotations" / f"instances_{split}.json"
        doc = json.loads(path.read_text())
        doc["categories"] = [{"id": NEW_IDS[c["id"]][0], "name": NEW_IDS[c["id"]][1]} for c in doc["categories"]]
        for ann in doc["annotations"]:
            assert "segmentation" not in ann
            ann["category_id"] = NEW_IDS[ann["category_id"]][0]
        path.write_text(json.dumps(doc))
    exp = _experiment(tmp_path, make_tiny_experiment, data)
    assert main(["train", str(exp), "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["segmentation/ground_truth"] == "boxes"
    assert metrics["segmentation/images"] == 8
    # the all-zero mask scores IoU 0 only against a non-empty ground truth on every image (1 when both are empty)
    assert metrics["sanity/zero/iou"] == 0.0 and metrics["sanity/gt/iou"] == 1.0
    assert 0.0 <= metrics["segmentation/iou"] <= 1.0
    per_class = (tmp_path / "run" / "tables" / "per_class.csv").read_text()
    assert all(name in per_class for _, name in NEW_IDS.values())


@pytest.mark.parametrize("masks", [True, False])
def test_folder_with_and_without_masks(tmp_path, make_tiny_experiment, masks):
    data = _export(tmp_path, make_tiny_experiment, "folder", *([] if masks else ["--no-masks"]))
    exp = _experiment(tmp_path, make_tiny_experiment, data, suite="fast" if masks else "full")
    assert main(["train", str(exp), "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "classification/masked_f1" in metrics and "mask/area" in metrics
    if masks:
        assert metrics["segmentation/ground_truth"] == "masks"
        assert 0.0 <= metrics["segmentation/iou"] <= 1.0
    else:
        assert metrics["segmentation/ground_truth"] == "none"
        # no masks and no boxes: every metric that needs them is omitted (the full suite runs without them)
        assert not any(k.startswith(("segmentation/iou", "sanity/", "localization/")) for k in metrics)
        assert "pointing_game/accuracy" not in metrics and "faithfulness/deletion_auc" in metrics
