"""Each new objective trains end to end through ``run_training`` on the tiny experiment; CASM's
co-trained classifier is checkpointed, its masks are class-agnostic and say so in the metrics."""

import json

import pytest
import torch

from attrsearch.config import ExperimentConfig, validate
from attrsearch.evaluate.experiment import run_experiment as run_training
from attrsearch.train.checkpoint import load_checkpoint


@pytest.mark.slow
@pytest.mark.parametrize(
    "objective",
    [
        {"name": "casm", "thinning": "L", "classifier_in_panel": True},
        {"name": "rtis"},
        {"name": "rank", "grid": [4], "steps": 3},
    ],
)
def test_objective_trains_end_to_end(tmp_path, tiny_experiment, objective):
    data = {k: v for k, v in tiny_experiment.items() if k != "objective"}
    data["objective"] = objective
    data["train"]["epochs"] = 1
    cfg = validate(ExperimentConfig, data)
    result = run_training(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["attribution/class_agnostic"] == float(objective["name"] == "casm")
    assert metrics["segmentation/iou"] == metrics["segmentation/iou"]  # not NaN
    state = load_checkpoint(result["checkpoint_path"])
    if objective["name"] == "casm":
        assert set(state["objective_state"]) >= {"classifier", "optimizer", "pool", "rng"}
        assert metrics["transfer/panel_size"] == 2.0  # the panel member + the co-trained classifier
        from attrsearch.train.checkpoint import explainer_from_state

        maps = explainer_from_state(state)(torch.randn(2, 3, 32, 32))
        assert maps.shape == (2, 4, 32, 32) and torch.equal(maps[:, 0], maps[:, 3])
    else:
        assert "objective_state" not in state


@pytest.mark.parametrize("name", ["casm", "rtis", "rank"])
def test_single_run_files_validate_and_share_the_explanandum(name):
    from pathlib import Path

    from attrsearch.config import load_experiment

    sweeps = Path(__file__).resolve().parents[2] / "sweeps"
    cfg = load_experiment(sweeps / f"shapes_{name}.yaml")
    single = load_experiment(sweeps / "shapes_single.yaml")
    assert cfg.objective.name == name
    assert cfg.data == single.data and cfg.explanandum == single.explanandum and cfg.evaluation == single.evaluation
