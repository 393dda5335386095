"""The one scoring pipeline takes an exported Explainer too: same maps as its checkpoint, same scores."""

from __future__ import annotations

import pytest

from attrsearch.errors import UserError
from attrsearch.evaluate.pipeline import score_explainer, score_exported
from attrsearch.export import export_explainer


@pytest.mark.slow
def test_exported_explainer_scores_like_its_checkpoint(tiny_trained_run, tmp_path):
    cfg, _, checkpoint = tiny_trained_run
    folder = tmp_path / "exported"
    export_explainer(checkpoint, folder)
    exported = score_exported(folder, cfg, suite="fast")
    original = score_explainer(checkpoint, suite="fast", cfg=cfg)
    assert exported.params["attribution/method"] == "exported_explainer"
    assert str(folder) in exported.params["attribution/description"]
    assert exported.metrics["attribution/images"] == original.metrics["attribution/images"]
    for key in ("segmentation/iou", "mask/area", "class_specific/selectivity"):
        assert exported.metrics[key] == pytest.approx(original.metrics[key], abs=1e-5)
    other = cfg.model_copy(update={"data": cfg.data.model_copy(update={"image_size": 64})})
    with pytest.raises(UserError, match="exported for 32 px images"):
        score_exported(folder, other, suite="fast")
