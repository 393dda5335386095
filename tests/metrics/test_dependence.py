"""Dependence scores on synthetic maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attrsearch.metrics.context import attribution_shares
from attrsearch.metrics.dependence import confound_minus_noise, per_image_agreement, tracking

K, M, H = 5, 40, 16


@pytest.fixture(scope="module")
def scene():
    """M cases: a cue region (left block) and an object region (right block) per image, and
    per-member, per-case true cue effects in [0, 1] rising from member 0 to member K-1."""
    g = torch.Generator().manual_seed(0)
    cue = torch.zeros(M, H, H, dtype=torch.bool)
    obj = torch.zeros(M, H, H, dtype=torch.bool)
    for m in range(M):
        w = int(torch.randint(2, 6, (1,), generator=g))
        cue[m, :w, :w] = True
        obj[m, 8 : 8 + w + 2, 8 : 8 + w + 2] = True
    level = torch.linspace(0.0, 0.8, K)[:, None]
    true = (level + 0.15 * torch.rand(K, M, generator=g)).clamp(0, 1)
    return cue, obj, true


def _shares(maps: torch.Tensor, cue: torch.Tensor) -> np.ndarray:
    """(K, M, H, W) maps -> (K, M) shares of mass on the cue."""
    return np.stack([attribution_shares(maps[k], cue).numpy() for k in range(maps.shape[0])])


def test_a_method_that_shows_what_the_classifier_uses_tracks_perfectly(scene):
    cue, obj, true = scene
    # The cue mask weighted by the true effect, the object by the rest: shares equal the effects.
    maps = (
        true[..., None, None] * cue / cue.sum((1, 2))[:, None, None]
        + (1 - true[..., None, None]) * obj / obj.sum((1, 2))[:, None, None]
    )
    attributed = _shares(maps, cue)
    np.testing.assert_allclose(attributed, true.numpy(), atol=1e-6)
    t = tracking(true.numpy(), attributed, n_resamples=200)
    assert t["spearman"] == pytest.approx(1.0) and t["pearson"] == pytest.approx(1.0)
    assert t["slope"] == pytest.approx(1.0) and t["pearson_low"] == pytest.approx(1.0)
    a = per_image_agreement(true[-1].numpy(), attributed[-1], n_resamples=60)
    assert a["spearman"] == pytest.approx(1.0) and a["pearson_low"] == pytest.approx(1.0)
    gap = confound_minus_noise(attributed[-1], attributed[0], n_resamples=200)
    assert gap["gap"] == pytest.approx(float((true[-1] - true[0]).mean()), abs=1e-6)
    assert 0 < gap["gap_low"] < gap["gap"] < gap["gap_high"]


def test_a_fixed_salience_map_has_no_confound_minus_noise_gap(scene):
    cue, obj, true = scene
    salience = (cue.float() * 3 + obj.float()).expand(K, M, H, H)  # the same map whatever the classifier
    attributed = _shares(salience, cue)
    gap = confound_minus_noise(attributed[-1], attributed[0], n_resamples=200)
    assert gap["gap"] == 0.0 and gap["gap_low"] == 0.0 and gap["gap_high"] == 0.0
    t = tracking(true.numpy(), attributed, n_resamples=200)
    assert np.isnan(t["spearman"]) and t["slope"] == pytest.approx(0.0, abs=1e-12)


def test_tracking_hand_values_and_anti_tracking():
    true = np.array([[0.0, 0.0], [0.2, 0.2], [0.6, 0.6]])
    attributed = np.array([[0.5, 0.5], [0.4, 0.4], [0.2, 0.2]])  # falls as the reliance rises
    t = tracking(true, attributed, n_resamples=50)
    assert t["spearman"] == pytest.approx(-1.0) and t["pearson"] == pytest.approx(-1.0)
    assert t["slope"] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="one shape"):
        tracking(true, attributed[:2])


def test_per_image_agreement_of_unrelated_maps_is_near_zero():
    rng = np.random.default_rng(0)
    a = per_image_agreement(rng.random(300), rng.random(300), n_resamples=150)
    assert abs(a["spearman"]) < 0.15 and a["spearman_low"] < 0 < a["spearman_high"]
