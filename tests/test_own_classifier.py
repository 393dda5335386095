"""Your own classifier on COCO-format data, end to end (issue 22): timm ResNet and ViT Explananda
trained into Explainers, Grad-CAM on both, a Python-defined Explanandum from a checkpoint, a sweep's
dry run over timm and zoo architectures, and the bad inputs that stop before any work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from attrsearch.cli import main

RESNET = {"arch": "timm:resnet10t"}
VIT = {
    "arch": "timm:vit_tiny_patch16_224",
    "options": {"patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2},
}


@pytest.fixture(scope="module")
def coco_data(tmp_path_factory):
    """The built-in data (32 px, 4 classes) exported in the COCO layout with boxes only, its categories
    renamed and renumbered (non-contiguous ids): the ``data:`` section to use."""
    from attrsearch.config import DataConfig, validate
    from attrsearch.data.export import export_dataset

    root = tmp_path_factory.mktemp("coco")
    cfg = validate(
        DataConfig,
        {"image_size": 32, "shapes": {"num_classes": 4, "num_train": 40, "num_val": 8, "num_test": 16}},
    )
    export_dataset(cfg, "coco", root, root / "cache", masks=False)
    new_ids = {1: (7, "kite"), 2: (19, "zebra"), 3: (300, "apple"), 4: (1002, "stop sign")}
    for path in (root / "annotations").glob("instances_*.json"):
        doc = json.loads(path.read_text())
        doc["categories"] = [{"id": new_ids[c["id"]][0], "name": new_ids[c["id"]][1]} for c in doc["categories"]]
        for ann in doc["annotations"]:
            ann["category_id"] = new_ids[ann["category_id"]][0]
        path.write_text(json.dumps(doc))
    return yaml.safe_load((root / "data.yaml").read_text())["data"]


def _config(folder: Path, data: dict, explanandum: dict, **fields) -> Path:
    cfg = {
        "name": "own",
        "seed": 0,
        "cache_dir": str(folder / "cache"),
        "data": data,
        "explanandum": {"recipe": {"epochs": 1, "batch_size": 16}, **explanandum},
        "explainer": {
            "arch": "explanandum_encoder",
            "options": {"decoder_width": 8, "image_width": 4, "fuse_width": 8},
        },
        "objective": {"min_area": 0.02, "max_area": 0.2},
        "train": {"epochs": 1, "batch_size": 16, "lr": 0.001, "progress": False, "num_threads": 1},
        "evaluation": {"fast_subsample": 8, "final_suite": "fast"},
        **fields,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("explanandum", "layer"), [(RESNET, "model.layer4"), (VIT, "model.blocks.1.norm1")])
def test_timm_explanandum_trains_an_explainer_and_gradcam_scores_it(tmp_path, coco_data, explanandum, layer):
    config = _config(tmp_path, coco_data, explanandum)
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["segmentation/iou"] <= 1.0
    meta = next((tmp_path / "cache" / "explananda").glob("*/meta.json"))
    assert ":" not in meta.parent.name  # timm:<name> is timm_<name> in the cache folder
    card = json.loads(meta.read_text())["model_card"]
    assert card["arch"] == explanandum["arch"] and len(card["input"]["mean"]) == 3
    out = tmp_path / "gradcam"
    argv = ["evaluate", "--method", "gradcam", "--checkpoint", str(tmp_path / "run"), "--out", str(out)]
    assert main([*argv, "--suite", "fast"]) == 0
    scored = json.loads((out / "metrics.json").read_text())
    assert scored["attribution/method"] == "gradcam" and json.loads(scored["attribution/options"])["layer"] == layer
    assert 0.0 <= scored["segmentation/iou"] <= 1.0


USER_MODULE = """
from torch import nn


def tiny_classifier(num_classes, width=8):
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
    )
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "own_models_i22.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.path_importer_cache.clear()
    yield "own_models_i22"
    sys.modules.pop("own_models_i22", None)


@pytest.mark.slow
def test_python_explanandum_from_a_checkpoint(tmp_path, coco_data, user_module, capsys):
    module = sys.modules.get(user_module) or __import__(user_module)
    torch.manual_seed(0)
    torch.save(module.tiny_classifier(4, width=6).state_dict(), tmp_path / "mine.pth")
    arch = {"arch": f"python:{user_module}:tiny_classifier", "options": {"width": 6}}
    config = _config(tmp_path, coco_data, {**arch, "checkpoint": str(tmp_path / "mine.pth")})
    out = tmp_path / "gradcam"
    assert main(["evaluate", "--method", "gradcam", "--config", str(config), "--out", str(out), "--suite", "fast"]) == 0
    scored = json.loads((out / "metrics.json").read_text())
    assert json.loads(scored["attribution/options"])["layer"] == "2"  # the last Conv2d
    assert not (tmp_path / "cache" / "explananda").exists()  # loaded, not trained

    torch.save(module.tiny_classifier(3, width=6).state_dict(), tmp_path / "three.pth")
    config = _config(tmp_path, coco_data, {**arch, "checkpoint": str(tmp_path / "three.pth")})
    capsys.readouterr()
    assert main(["evaluate", "--method", "gradcam", "--config", str(config), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "three.pth has a 3-class head (6.weight), the dataset has 4 classes" in err[0]
    assert main(["train", str(config), "--out", str(tmp_path / "bad")]) == 2
    assert "3-class head" in capsys.readouterr().err and not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("explanandum", "needle"),
    [
        ({"arch": "timm:resnet10x"}, "has no model 'resnet10x'; closest: resnet10t"),
        ({"arch": "python:no_such_module_i22:build"}, "cannot import 'no_such_module_i22'"),
        ({"arch": "timm:resnet10t", "options": {"img_size": 32}}, "timm model resnet10t rejects ['img_size']"),
    ],
)
def test_bad_explanandum_stops_before_any_work(tmp_path, capsys, explanandum, needle):
    data = {"image_size": 32, "shapes": {"num_classes": 4, "num_train": 8, "num_val": 4, "num_test": 4}}
    config = _config(tmp_path, data, explanandum)
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "explanandum." in err[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_sweep_dry_run_over_timm_and_zoo_explananda(tmp_path, capsys):
    data = {"image_size": 32, "shapes": {"num_classes": 4, "num_train": 8, "num_val": 4, "num_test": 4}}
    base = yaml.safe_load(_config(tmp_path, data, {"arch": "small_cnn"}).read_text())
    sweep = {
        "name": "archs",
        "base": base,
        "search": {"explanandum.arch": {"choice": ["timm:resnet10t", "small_cnn"]}},
        "objective": "segmentation/iou",
        "num_samples": 2,
        "resources_per_trial": {"cpu": 1},
        "wandb": {"mode": "disabled"},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "timm:resnet10t" in out and "small_cnn" in out
    sweep["search"]["explanandum.arch"]["choice"][0] = "timm:resnet10x"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert "closest: resnet10t" in capsys.readouterr().err
