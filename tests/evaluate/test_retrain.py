"""Retraining against a randomised Explanandum (random init, shuffled labels) on the tiny experiment."""

from __future__ import annotations

import json
import math

import pytest
import torch

from attrsearch.config import ExperimentConfig, validate
from attrsearch.errors import UserError
from attrsearch.evaluate.retrain import method_randomisation, randomised_config, reseed_config, retrain_study
from attrsearch.models import create_explanandum
from attrsearch.train.explanandum import explanandum_key, get_explanandum
from attrsearch.train.runtime import seed_everything


def _tiny(data) -> ExperimentConfig:
    data["train"]["epochs"] = 1
    data["train"]["num_threads"] = 1
    data["evaluation"]["final_suite"] = "fast"
    data["data"]["shapes"]["num_train"] = 32
    return validate(ExperimentConfig, data)


def test_variants_are_configs_with_their_own_cache_keys(tiny_experiment):
    cfg = _tiny(tiny_experiment)
    rnd, shuf = randomised_config(cfg, "random_init"), randomised_config(cfg, "shuffled_labels")
    assert rnd.explanandum.recipe.epochs == 0 and rnd.explanandum.weights is None
    assert shuf.explanandum.recipe.shuffle_labels and shuf.explainer == cfg.explainer and shuf.seed == cfg.seed
    keys = {json.dumps(explanandum_key(c), sort_keys=True) for c in (cfg, rnd, shuf)}
    assert len(keys) == 3
    assert reseed_config(cfg).seed == cfg.seed + 1 and explanandum_key(reseed_config(cfg)) == explanandum_key(cfg)
    with pytest.raises(UserError, match="randomisation variant: unknown 'frozen'"):
        randomised_config(cfg, "frozen")


def test_random_init_explanandum_is_the_untrained_network(tiny_experiment):
    cfg = randomised_config(_tiny(tiny_experiment), "random_init")
    model = get_explanandum(cfg, progress=False)
    seed_everything(cfg.explanandum.seed)
    fresh = create_explanandum("small_cnn", 4, image_size=32, width=8)
    for name, value in fresh.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_retrain_study_against_a_random_explanandum(tiny_experiment, tmp_path):
    cfg = _tiny(tiny_experiment)
    scores = retrain_study(cfg, tmp_path, variants=("random_init",), images=6, n_resamples=100)
    for who in ("reseed", "control", "random_init"):
        for m in ("spearman", "ssim", "top10"):
            assert math.isfinite(scores[f"randomisation/{who}/{m}"]), (who, m)
    assert (
        scores["randomisation/random_init/spearman/index_low"]
        <= scores["randomisation/random_init/spearman/index_high"]
    )
    saved = json.loads((tmp_path / "randomisation.json").read_text())
    assert saved["images"] == 6 and saved["metrics"]["randomisation/pairs"] >= 6
    s = cfg.seed
    assert saved["seeds"] == {"real": s, "reseed": s + 1, "random_init": s + 1}
    assert {p.name for p in tmp_path.iterdir()} >= {"real", "reseed", "random_init"}


def test_method_randomisation_of_a_deterministic_and_a_seeded_method(tiny_experiment):
    """Grad-CAM has no seed: its floor is itself (similarity 1) and its index is 1 - similarity; RISE's
    floor is another mask seed (below 1). Both change on a never-trained Explanandum."""
    _tiny(tiny_experiment)  # the tiny settings, written into the dict
    grad = method_randomisation(
        validate(ExperimentConfig, {**tiny_experiment, "method": {"name": "gradcam"}}),
        variants=("random_init",),
        images=6,
        n_resamples=100,
    )
    m = grad["metrics"]
    assert not grad["reseeded"] and m["randomisation/reseed/spearman"] == pytest.approx(1.0)
    assert m["randomisation/random_init/spearman/index"] == pytest.approx(1 - m["randomisation/random_init/spearman"])
    assert m["randomisation/random_init/spearman"] < 0.99
    rise = method_randomisation(
        validate(ExperimentConfig, {**tiny_experiment, "method": {"name": "rise", "options": {"masks": 64}}}),
        variants=("random_init",),
        images=6,
        n_resamples=100,
    )
    assert rise["reseeded"] and rise["metrics"]["randomisation/reseed/spearman"] < 1.0


def test_method_randomisation_needs_a_method(tiny_experiment):
    with pytest.raises(UserError, match="method.name"):
        method_randomisation(_tiny(tiny_experiment))
