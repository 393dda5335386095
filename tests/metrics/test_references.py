"""score(method) - score(best model-free reference) per metric, with the registry's directions."""

from __future__ import annotations

import math

import pytest

from attrsearch.metrics.references import reference_deltas


def test_best_reference_follows_each_metrics_direction():
    scores = {
        "explainer": {"segmentation/iou": 0.5, "faithfulness/deletion_auc": 0.10, "attribution/images": 9.0},
        "gradcam": {"segmentation/iou": 0.2, "faithfulness/deletion_auc": 0.30},
        "sobel": {"segmentation/iou": 0.15, "faithfulness/deletion_auc": 0.25},
        "center": {"segmentation/iou": 0.3, "faithfulness/deletion_auc": float("nan")},
        "segmenter": {"segmentation/iou": 0.45, "faithfulness/deletion_auc": 0.2},
    }
    out = reference_deltas(scores)
    assert set(out) == {"explainer", "gradcam"}
    assert set(out["explainer"]) == {"segmentation/iou", "faithfulness/deletion_auc"}  # records are skipped
    iou = out["explainer"]["segmentation/iou"]  # max: the best reference is the segmenter
    assert iou.reference == "segmenter" and iou.delta == pytest.approx(0.05) and iou.advantage == pytest.approx(0.05)
    dele = out["explainer"]["faithfulness/deletion_auc"]  # min: the lowest finite reference, NaN ignored
    assert dele.reference == "segmenter" and dele.delta == pytest.approx(-0.1) and dele.advantage == pytest.approx(0.1)
    assert out["gradcam"]["segmentation/iou"].advantage == pytest.approx(-0.25)  # worse than a segmenter


def test_custom_metrics_directions_and_missing_references():
    scores = {"m": {"dep/x": 2.0}, "center": {"dep/x": 3.0}}
    out = reference_deltas(scores, metrics=["dep/x"], directions={"dep/x": "min"})
    assert out["m"]["dep/x"].delta == -1.0 and out["m"]["dep/x"].advantage == 1.0
    out = reference_deltas({"m": {"dep/x": 2.0}, "center": {}}, metrics=["dep/x"], directions={"dep/x": "max"})
    assert out["m"]["dep/x"].reference is None and math.isnan(out["m"]["dep/x"].delta)
    with pytest.raises(ValueError, match="no model-free reference"):
        reference_deltas({"m": {"segmentation/iou": 1.0}})
    with pytest.raises(ValueError, match="has no direction"):
        reference_deltas(scores, metrics=["dep/x"])
