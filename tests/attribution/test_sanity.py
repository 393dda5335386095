"""Adebayo et al. 2018's cascading randomisation: order, copies, scores, verdicts."""

from __future__ import annotations

import math

import torch
from torch import nn

from attrsearch.attribution.methods import resolve_method
from attrsearch.attribution.sanity import (
    SPEARMAN_THRESHOLD,
    cascade,
    cascading_randomization,
    compare_maps,
    parametrized_layers,
    spearman,
    ssim,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()


def _method(name: str):
    fn, opts = resolve_method(name, {})
    return lambda model, images, targets: fn(model, images, targets, **opts.model_dump())


def test_spearman_and_ssim_on_hand_made_maps():
    a = torch.arange(16.0).view(1, 4, 4)
    assert math.isclose(float(spearman(a, a * 3 + 1)[0]), 1.0)
    assert math.isclose(float(spearman(a, -a)[0]), -1.0)
    assert math.isnan(float(spearman(a, torch.zeros_like(a))[0]))  # a constant map has no ranking
    assert math.isclose(float(ssim(a, a)[0]), 1.0, abs_tol=1e-9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(1, 16, 16, generator=g), torch.rand(1, 16, 16, generator=g)
    assert float(ssim(x, y)[0]) < 0.2 < float(ssim(x, x + 0.1 * y)[0])


def test_cascade_runs_top_down_cumulatively_on_a_copy():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    names = parametrized_layers(net)
    assert names == ["0", "1", "3", "7"]
    seen = []
    for name, copy in cascade(net):
        seen.append(name)
        mods, orig = dict(copy.named_modules()), dict(net.named_modules())
        changed = [n for n in names if not torch.equal(mods[n].weight, orig[n].weight)]
        assert set(changed) <= set(seen)  # only the layers randomised so far differ
        assert name in changed or name == "1"  # BatchNorm resets to weight 1, as constructed
    assert seen == ["7", "3", "1", "0"]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_model_independent_method_fails():
    net = _net()
    images = torch.randn(2, 3, 16, 16)
    result = cascading_randomization(net, _method("center"), images)
    assert result.spearman == [1.0] * 4 and not result.passed
    metrics = result.metrics()
    assert metrics["sanity/randomization/7/spearman"] == 1.0 and metrics["sanity/randomization/passed"] == 0.0
    assert set(metrics) >= {"sanity/randomization/0/ssim", "sanity/randomization/final_spearman"}


def test_gradcam_on_a_trained_tiny_model_scores_lower_than_center(make_tiny_experiment):
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.data import build_dataset, collate_samples
    from attrsearch.train.explanandum import get_explanandum

    data = make_tiny_experiment()
    data["explanandum"]["recipe"]["epochs"] = 3
    cfg = validate(ExperimentConfig, data, source="tiny")
    model = get_explanandum(cfg, "cpu")
    ds = build_dataset(cfg.data, "test", cfg.cache_dir)
    batch = collate_samples([ds[i] for i in range(4)])
    targets = batch["labels"].bool()
    grad = cascading_randomization(model, _method("gradcam"), batch["image"], targets)
    center = cascading_randomization(model, _method("center"), batch["image"], targets)
    assert not center.passed and center.final_spearman == 1.0
    assert grad.passed
    assert not (grad.final_spearman > SPEARMAN_THRESHOLD)
    assert not (grad.final_spearman >= center.final_spearman)


def test_compare_maps_uses_the_selected_pairs():
    a = torch.rand(2, 3, 8, 8)
    b = a.clone()
    b[:, 2] = torch.rand(2, 8, 8)  # class 2 differs, and is not selected
    targets = torch.tensor([[True, True, False], [True, False, False]])
    assert math.isclose(compare_maps(a, b, targets)["spearman"], 1.0)
    assert compare_maps(a, b)["spearman"] < 1.0
