"""Which Explananda a sweep prepares before its trials: exactly the ones its trials will load."""

from __future__ import annotations

import copy

from attrsearch.config import ExperimentConfig, validate
from attrsearch.sweep.explananda import needed_explananda
from attrsearch.sweep.load import load_sweep
from attrsearch.train.explanandum import explanandum_cache_path, panel_specs
from tests.support.sweep_files import TINY_BASE, sweep_dict, write_sweep


def test_discrete_explanandum_fields_and_panel_are_enumerated_once(tmp_path):
    base = copy.deepcopy(TINY_BASE)
    base["evaluation"]["transfer"]["panel"] = [{"arch": "small_cnn", "seed": 1, "epochs": 1, "options": {"width": 16}}]
    data = sweep_dict(
        base=base,
        search={
            "explanandum.arch": {"choice": ["small_cnn", "small_resnet"]},
            "explanandum.seed": {"grid": [0, 1]},
            "loss.lambda_tv": {"uniform": [0.1, 1.0]},
        },
    )
    sweep = load_sweep(write_sweep(tmp_path, data))
    jobs, notes = needed_explananda(sweep)
    assert notes == []
    labels = sorted((j.role, j.label) for j in jobs)
    # 2 archs x 2 seeds; the panel member does not depend on the Explanandum's arch or seed: once.
    assert labels == [
        ("explanandum", "small_cnn-s0"),
        ("explanandum", "small_cnn-s1"),
        ("explanandum", "small_resnet-s0"),
        ("explanandum", "small_resnet-s1"),
        ("panel", "small_cnn-s1"),
    ]
    paths = {j.cache_path for j in jobs}
    for arch in ("small_cnn", "small_resnet"):
        for seed in (0, 1):
            cfg = validate(
                ExperimentConfig,
                sweep.trial_data({"explanandum.arch": arch, "explanandum.seed": seed, "loss.lambda_tv": 0.5}),
            )
            assert str(explanandum_cache_path(cfg)) in paths
            assert {str(explanandum_cache_path(cfg, **o)) for _, o in panel_specs(cfg)} <= paths


def test_continuous_explanandum_fields_are_trained_on_demand(tmp_path):
    data = sweep_dict(search={"explanandum.recipe.lr": {"loguniform": [1e-4, 1e-2]}})
    jobs, notes = needed_explananda(load_sweep(write_sweep(tmp_path, data)))
    assert [j.role for j in jobs] == ["explanandum", "panel"]  # the base's only
    assert notes and "trained on demand" in notes[0]
