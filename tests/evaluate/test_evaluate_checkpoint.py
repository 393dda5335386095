"""``attrsearch evaluate`` end to end: a checkpoint in, metrics.json and tables out."""

import json

import pytest

from attrsearch.cli import main
from attrsearch.config import ExperimentConfig
from attrsearch.evaluate.pipeline import evaluate_checkpoint
from attrsearch.train.checkpoint import build_explainer, save_checkpoint
from attrsearch.train.explanandum import get_explanandum
from tests.support.metric_models import REQUIRED_FULL


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    cfg = ExperimentConfig(
        cache_dir=root / "cache",
        data={"image_size": 32, "shapes": {"num_classes": 3, "num_train": 8, "num_val": 4, "num_test": 6}},
        explanandum={"recipe": {"epochs": 0}},
        train={"device": "cpu", "progress": False},
        evaluation={
            "transfer": {"panel": [{"arch": "small_cnn", "seed": 1}]},
            "faithfulness": {"max_images": 2},
            "class_specific_thresholds": [0.3, 0.6],
        },
    )
    explanandum = get_explanandum(cfg, "cpu")
    explainer = build_explainer(cfg, 3, 32, explanandum=explanandum)
    state = {
        "config": cfg.model_dump(mode="json"),
        "num_classes": 3,
        "image_size": 32,
        "class_names": ["a", "b", "c"],
        "explainer": explainer.state_dict(),
    }
    return save_checkpoint(root / "best.pt", state)


def test_evaluate_checkpoint_writes_the_full_suite(untrained_checkpoint, tmp_path):
    metrics = evaluate_checkpoint(untrained_checkpoint, tmp_path, suite="full", split="test")
    assert not [k for k in REQUIRED_FULL if k not in metrics]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["segmentation/iou"] == pytest.approx(metrics["segmentation/iou"])
    assert saved["faithfulness/insertion_substrate"] == "blur"
    assert saved["transfer/panel_size"] == 1
    assert (tmp_path / "tables" / "class_specific.csv").is_file()


def test_cli_evaluate_fast_suite_and_errors(untrained_checkpoint, tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(untrained_checkpoint), "--suite", "fast", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert "class_specific/selectivity" in saved and "faithfulness/deletion_auc" not in saved
    assert (
        main(["evaluate", "--checkpoint", str(untrained_checkpoint), "--suite", "quick", "--out", str(tmp_path)]) == 2
    )
    assert "unknown metric suite 'quick'" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
