"""Map similarity, the reseed-floor dependence index and the uninformative control (randomisation test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attrsearch.metrics.randomisation import (
    control_maps,
    dependence_index,
    map_similarity,
    randomisation_scores,
    top_overlap,
)


def _noise(seed: int, shape=(4, 3, 24, 24)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_identical_maps_are_similar_one():
    maps = _noise(0)
    sims = map_similarity(maps, maps.clone())
    for name, values in sims.items():
        assert values.shape == (12,)
        np.testing.assert_allclose(values.numpy(), 1.0, atol=1e-9, err_msg=name)


def test_independent_maps_are_similar_about_zero():
    sims = map_similarity(_noise(1, (8, 4, 32, 32)), _noise(2, (8, 4, 32, 32)))
    for name, values in sims.items():
        assert abs(float(values.mean())) < 0.03, name


def test_targets_select_pairs_and_top_overlap_by_hand():
    a = torch.arange(10.0).view(1, 1, 2, 5)
    b = a.clone()
    b[0, 0, 1, 4] = -1.0  # the best pixel of a is the worst of b: top 10% (1 pixel) no longer shared
    assert float(top_overlap(a[0], b[0])) == pytest.approx((0 - 0.1) / 0.9)
    c = a.flip(-1)  # the top pixel moves, the rest keeps no order relation
    assert float(top_overlap(a[0], a[0])) == 1.0 and float(top_overlap(a[0], c[0])) == pytest.approx(-1 / 9)
    maps = _noise(3, (2, 3, 8, 8))
    targets = torch.tensor([[True, False, True], [False, True, False]])
    assert map_similarity(maps, maps, targets)["spearman"].shape == (3,)


def test_control_is_one_centred_gaussian():
    ctrl = control_maps((2, 3, 9, 9))
    assert ctrl.shape == (2, 3, 9, 9) and float(ctrl[1, 2, 4, 4]) == 1.0 and (ctrl == ctrl[:1, :1]).all()


def test_dependence_index_known_answer():
    reseed = np.linspace(0.4, 0.8, 20)
    est = dependence_index(0.5 * reseed, reseed, n_resamples=200)
    assert est.value == pytest.approx(0.5) and est.low == pytest.approx(0.5) and est.high == pytest.approx(0.5)
    noisy = 0.5 * reseed + np.random.default_rng(0).normal(0, 0.05, 20)
    est = dependence_index(noisy, reseed, n_resamples=500)
    assert est.low < est.value < est.high and est.low < 0.5 < est.high
    assert math.isnan(dependence_index([0.1, 0.2], [0.0, 0.0]).value)  # no floor, no index
    assert dependence_index([np.nan, 0.3], [0.5, 0.6]).value == pytest.approx(0.5)  # NaN pairs dropped


def test_scores_of_a_synthetic_study():
    real = _noise(4, (6, 2, 16, 16))
    reseed = real + 0.1 * _noise(5, (6, 2, 16, 16))  # a retrain that moves the maps a little
    copy = reseed.clone()  # a randomised variant that changes nothing: index 0
    fresh = _noise(6, (6, 2, 16, 16))  # a variant unrelated to the real maps: index about 1
    out = randomisation_scores(real, reseed, {"same": copy, "fresh": fresh}, n_resamples=200)
    for m in ("spearman", "ssim", "top10"):
        assert out[f"randomisation/same/{m}/index"] == pytest.approx(0.0, abs=1e-9)
        assert out[f"randomisation/fresh/{m}/index"] == pytest.approx(1.0, abs=0.1)
        assert out[f"randomisation/fresh/{m}/index_low"] <= out[f"randomisation/fresh/{m}/index_high"]
        assert out[f"randomisation/reseed/{m}"] > 0.5
    # random maps are uncorrelated with a centred Gaussian: the control's index is about 1 too
    assert out["randomisation/control/spearman/index"] == pytest.approx(1.0, abs=0.15)
