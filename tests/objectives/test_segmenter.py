"""The model-free ``segmenter`` objective: BCE to the ground-truth masks, void excluded, no classifier."""

from __future__ import annotations

import json
import math

import pytest
import torch

from attrsearch.config import ExperimentConfig, validate
from attrsearch.objectives import OBJECTIVES
from attrsearch.objectives.segmenter import segmentation_bce, segmenter_loss


def test_bce_by_hand_excludes_void_and_weights_objects():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 3.0]]]])
    gt = torch.tensor([[[[1, 0], [255, 1]]]], dtype=torch.uint8)
    sp = torch.nn.functional.softplus  # BCE(z, 1) = softplus(-z), BCE(z, 0) = softplus(z)
    want = (sp(torch.tensor(-0.0)) + sp(torch.tensor(2.0)) + sp(torch.tensor(-3.0))) / 3
    assert float(segmentation_bce(logits, gt)) == pytest.approx(float(want))
    weighted = (2 * sp(torch.tensor(-0.0)) + sp(torch.tensor(2.0)) + 2 * sp(torch.tensor(-3.0))) / 3
    assert float(segmentation_bce(logits, gt, positive_weight=2.0)) == pytest.approx(float(weighted))
    assert float(segmentation_bce(logits, torch.full_like(gt, 255))) == 0.0  # an unannotated image
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_bce(logits, gt[..., :1])


def test_registered_with_its_inputs_and_never_calls_the_classifier():
    spec = OBJECTIVES.get("segmenter")
    assert spec.inputs == ("masks",) and spec.loss is segmenter_loss

    class Boom(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the segmenter must not call the classifier")

    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)
    masks = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    masks[:, 1, 2:5, 2:5] = 1
    cfg = spec.config()
    out = segmenter_loss(Boom(), torch.zeros(2, 3, 8, 8), torch.zeros(2, 3), logits, cfg, masks=masks)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(math.log(2)) and out.masks.shape == (2, 3, 8, 8)
    assert logits.grad[0, 1, 3, 3] < 0 < logits.grad[0, 0, 3, 3]  # object pixels pulled up, the rest down


def test_segmenter_trains_through_the_loop(tmp_path, tiny_experiment):
    from attrsearch.evaluate.experiment import run_experiment

    data = {k: v for k, v in tiny_experiment.items() if k != "objective"}
    data["objective"] = {"name": "segmenter", "positive_weight": 2.0}
    data["train"].update(epochs=2, lr=0.01, num_threads=1)
    data["train"]["early_stopping"] = {"enabled": False}
    data["evaluation"]["final_suite"] = "fast"
    cfg = validate(ExperimentConfig, data)
    run_experiment(cfg, tmp_path / "run")
    history = json.loads((tmp_path / "run" / "history.json").read_text())[f"seed{cfg.seed}"]
    assert history[1]["train/bce"] < history[0]["train/bce"]
    assert "val/bce" in history[0]
