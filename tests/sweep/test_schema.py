"""The sweep file's own shape: distributions, shorthands, defaults."""

from __future__ import annotations

import pytest

from attrsearch.config import validate
from attrsearch.errors import UserError
from attrsearch.sweep.schema import Distribution, SweepConfig


def test_distribution_kinds_and_properties():
    d = validate(Distribution, {"loguniform": [0.1, 10]})
    assert (d.kind, d.low, d.high, d.is_log, d.discrete) == ("loguniform", 0.1, 10, True, False)
    d = validate(Distribution, {"int": [2, 8], "log": True})
    assert (d.kind, d.low, d.high, d.is_log) == ("int", 2, 8, True)
    d = validate(Distribution, {"choice": [{"arch": "small_cnn"}, {"arch": "small_resnet"}]})
    assert d.discrete and d.values == [{"arch": "small_cnn"}, {"arch": "small_resnet"}]
    assert d.describe().startswith("choice [")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"uniform": [1, 1]}, "low end must be below"),
        ({"uniform": [0.1, 0.5], "choice": [1]}, "exactly one"),
        ({}, "exactly one"),
        ({"loguniform": [0.0, 1.0]}, "must be > 0"),
        ({"uniform": [0, 1], "log": True}, "log: true is for int"),
        ({"grid": []}, "at least one value"),
        ({"choice": [1, 1]}, "distinct"),
        ({"int": [0, 4], "log": True}, ">= 1"),
        ({"normal": [0, 1]}, "unknown field"),
    ],
)
def test_distribution_errors_are_one_line(data, message):
    with pytest.raises(UserError) as err:
        validate(Distribution, data, source="f.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


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
