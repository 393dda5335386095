"""True reliance by intervention: classifiers whose output is a known function of the cue or the object."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from attrsearch.config import DataConfig
from attrsearch.data.shapes_twins import twin_datasets
from attrsearch.metrics.intervention import bootstrap_interval, case_effects, intervention_reliance

P_HIGH, P_LOW = 0.9, 0.2


def _key(image: torch.Tensor) -> str:
    return hashlib.sha1(image.numpy().tobytes()).hexdigest()


class LookupClassifier(nn.Module):
    """Answers P_HIGH for class 0 when ``read(sample)`` holds for the image, else P_LOW (other
    classes 0.5): a classifier that reads only what ``read`` looks at."""

    def __init__(self, datasets, read):
        super().__init__()
        self.table = {_key(ds[i]["image"]): read(ds[i]) for ds in datasets.values() for i in range(len(ds))}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = torch.full((images.shape[0], 4), 0.5)
        p[:, 0] = torch.tensor([P_HIGH if self.table[_key(x)] else P_LOW for x in images])
        return torch.logit(p)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cache = tmp_path_factory.mktemp("twins")
    data = DataConfig(
        image_size=32, shapes={"num_classes": 4, "num_test": 40, "context": {"biased_classes": [0], "p_test": 1.0}}
    )
    datasets, _, _ = twin_datasets(data, "test", cache)
    return data, cache, datasets


def test_a_cue_reader_has_cue_effect_its_probability_gap(setup):
    data, cache, datasets = setup
    model = LookupClassifier(datasets, lambda s: bool(s["context"].any()))
    r = intervention_reliance(model, data, "test", cache, n_resamples=200)
    gap = P_HIGH - P_LOW
    assert r.summary["cue_effect"] == pytest.approx(gap, abs=1e-6)
    assert r.summary["cue_alone_effect"] == pytest.approx(gap, abs=1e-6)
    assert r.summary["object_effect"] == pytest.approx(0.0, abs=1e-6)
    assert r.summary["cue_effect_low"] == pytest.approx(gap, abs=1e-6)  # every case alike: a point interval
    assert len(r.cases) == r.summary["cases"] > 5 and (r.cases["class"] == 0).all()


def test_a_classifier_that_ignores_the_cue_has_no_cue_effect(setup):
    data, cache, datasets = setup
    model = LookupClassifier(datasets, lambda s: bool(s["labels"][0]))
    r = intervention_reliance(model, data, "test", cache, n_resamples=200)
    assert r.summary["cue_effect"] == pytest.approx(0.0, abs=1e-6)
    assert r.summary["cue_alone_effect"] == pytest.approx(0.0, abs=1e-6)
    assert r.summary["object_effect"] == pytest.approx(P_HIGH - P_LOW, abs=1e-6)


def test_case_effects_hand_values():
    probs = {
        "original": torch.tensor([[0.9, 0.1], [0.3, 0.8]]),
        "no_cue": torch.tensor([[0.4, 0.1], [0.3, 0.5]]),
        "no_object": torch.tensor([[0.7, 0.0], [0.1, 0.2]]),
    }
    e = case_effects(probs, torch.tensor([0, 1]))
    assert torch.allclose(e["cue_effect"], torch.tensor([0.5, 0.3]))
    assert torch.allclose(e["object_effect"], torch.tensor([0.2, 0.6]))
    assert "cue_alone_effect" not in e


def test_bootstrap_interval_brackets_the_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(0.3, 1.0, 400)
    low, high = bootstrap_interval(x, n_resamples=500)
    half = 1.96 / np.sqrt(400)  # the normal-theory half width
    assert low < x.mean() < high and high - low == pytest.approx(2 * half, rel=0.25)
    assert all(np.isnan(bootstrap_interval(np.array([1.0]))))
