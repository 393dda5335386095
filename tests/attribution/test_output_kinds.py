"""Each method declares what its maps are, and the metrics normalise them by that declaration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrsearch.attribution import explainer_attribution, normalize_maps, output_kind_of, per_class_attribution
from attrsearch.attribution.methods import METHODS, method_attribution
from attrsearch.config import EvaluationConfig
from attrsearch.metrics.evaluate import evaluate
from tests.support.metric_models import TinyCNN, make_dataset

EXPECTED = {
    "center": "score",
    "sobel": "score",
    "extremal": "mask",
    "gradcam": "score",
    "gradcam_pp": "score",
    "igos": "mask",
    "lrp": "score",
    "rise": "score",
}


def test_every_built_in_method_declares_its_output_kind():
    assert {name: METHODS.get(name).output for name in METHODS.names()} == EXPECTED


@pytest.mark.parametrize("name", ["gradcam", "extremal", "captum:Saliency", "zennit:Gradient", "gradcam_lib:GradCAM"])
def test_method_attributions_carry_the_declared_kind(small_cnn, name):
    expected = "mask" if name == "extremal" else "score"  # the library adapters return scores
    assert output_kind_of(method_attribution(small_cnn, name)) == expected


def test_explainer_masks_and_per_class_saliencies_declare_their_kind():
    assert output_kind_of(explainer_attribution(nn.Conv2d(3, 2, 1))) == "mask"
    assert output_kind_of(per_class_attribution(lambda m, x, c: x[:, 0], nn.Identity(), 2)) == "score"
    assert output_kind_of(lambda x: x) is None


def test_a_score_map_peaking_below_one_is_scaled_to_reach_one():
    maps = torch.tensor([[[[0.0, 0.1, 0.49]], [[0.2, 0.3, 0.4]]]])  # (1, 2, 1, 3), inside [0, 1]
    got, flags = normalize_maps(maps, "auto", "score")
    assert flags.all()
    torch.testing.assert_close(got, torch.tensor([[[[0.0, 0.1 / 0.49, 1.0]], [[0.0, 0.5, 1.0]]]]))
    kept, flags = normalize_maps(maps, "auto", None)  # undeclared: by range, kept
    assert not flags.any() and torch.equal(kept, maps)


def test_an_explainer_mask_is_untouched():
    masks = torch.sigmoid(torch.randn(2, 3, 4, 4)) * 0.5  # peaks below 1, never reaching 0
    got, flags = normalize_maps(masks, "auto", "mask")
    assert not flags.any() and torch.equal(got, masks)
    got, flags = normalize_maps(masks, "always", "mask")  # the explicit option still wins
    assert flags.all() and torch.allclose(got.amax((2, 3)), torch.ones(2, 3))


def test_gradcam_scores_the_same_with_auto_and_always():
    data = make_dataset(n=6, size=16)
    model = TinyCNN()
    base = {"batch_size": 3, "classify_chunk": 16, "class_specific_thresholds": [0.25, 0.5, 0.75]}
    results = {
        mode: evaluate(
            method_attribution(model, "gradcam"),
            model,
            data,
            EvaluationConfig(**base, attribution_normalization=mode),
            "fast",
        ).metrics
        for mode in ("auto", "always")
    }
    assert results["auto"]["attribution/minmax_normalized"] == 1.0
    assert results["auto"] == results["always"]
