"""The sweep file's own shape: shorthands, defaults (distributions: tests/config/test_search.py)."""

from __future__ import annotations

import pytest

from attrsearch.config import validate
from attrsearch.errors import UserError
from attrsearch.sweep.schema import SweepConfig


def test_shorthands_and_defaults():
    cfg = validate(
        SweepConfig,
        {"name": "s", "base": {}, "objective": "segmentation/iou", "search_alg": "optuna_tpe", "scheduler": "asha"},
    )
    assert cfg.objective == ["segmentation/iou"] and not cfg.multi_objective
    assert cfg.search_alg.name == "optuna_tpe" and cfg.search_alg.n_startup_trials == 10
    assert cfg.scheduler.name == "asha" and cfg.scheduler.grace_period == 1
    assert cfg.samples == 10 and cfg.storage == "results" and cfg.wandb.mode == "offline"
    grid = validate(SweepConfig, {"name": "g", "base": {}, "objective": ["a", "b"], "search_alg": "grid"})
    assert grid.samples == 1 and grid.multi_objective


def test_wandb_refuses_keys_in_the_file():
    with pytest.raises(UserError, match="WANDB_API_KEY"):
        validate(
            SweepConfig, {"name": "s", "base": {}, "objective": "x", "wandb": {"api_key": "secret"}}, source="f.yaml"
        )


def test_fault_settings_default_off_and_refuse_non_positive_values():
    base = {"name": "s", "base": {}, "objective": "x"}
    cfg = validate(SweepConfig, base)
    assert cfg.trial_report_timeout_s is None
    assert (cfg.storage_retry.attempts, cfg.storage_retry.max_wait_s) == (5, 60.0)
    for bad, field in (
        ({"trial_report_timeout_s": 0}, "trial_report_timeout_s"),
        ({"storage_retry": {"attempts": 0}}, "storage_retry.attempts"),
        ({"storage_retry": {"max_wait_s": -1}}, "storage_retry.max_wait_s"),
        ({"storage_retry": {"tries": 3}}, "storage_retry.tries"),
    ):
        with pytest.raises(UserError, match=field.replace(".", r"\.")):
            validate(SweepConfig, {**base, **bad}, source="f.yaml")
