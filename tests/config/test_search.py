"""The search-space vocabulary below every sweep room: distributions, the one dimension model, the
ordered pairs the config classes declare and the joint key a pair drawn together is stored under."""

from __future__ import annotations

import pytest

from attrsearch.config import validate
from attrsearch.config.search import (
    INACTIVE,
    Dimension,
    Distribution,
    joint_key,
    ordered_pairs,
    parse_dimension,
    split_joint,
    trial_values,
)
from attrsearch.errors import UserError


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


def test_a_dumped_entry_and_a_written_one_give_the_same_dimension():
    """sweep.yaml holds the JSON-mode dump (every kind, the unused ones null, ``int_``)."""
    dumped = {"uniform": None, "loguniform": None, "int_": [8, 32], "log": True, "choice": None, "grid": None}
    assert parse_dimension("train.batch_size", dumped, "s.yaml") == Dimension("int", 8, 32, True)
    written = validate(Distribution, {"int": [8, 32], "log": True}).dimension()
    assert written == parse_dimension("train.batch_size", {"int": [8, 32], "log": True}, "s.yaml")
    lr = parse_dimension("train.lr", {"loguniform": [0.001, 0.1]}, "s.yaml")
    assert lr.log and lr.numeric and not lr.discrete and lr.describe() == "loguniform [0.001, 0.1]"
    assert parse_dimension("a", {"choice": ["x", "y"]}, "s").categorical
    with pytest.raises(UserError, match=r"s.yaml: search.a: give exactly one of"):
        parse_dimension("a", {"uniform": None}, "s.yaml")
    with pytest.raises(UserError, match="expected a distribution mapping"):
        parse_dimension("a", [1, 2], "s.yaml")


def test_ordered_pairs_come_from_the_config_classes():
    assert ordered_pairs() == [("objective.min_area", "objective.max_area")]
    assert joint_key(("objective.min_area", "objective.max_area")) == "_area_bounds"
    assert joint_key(("objective.low", "objective.high")) == "_low_high"


def test_trial_values_decode_the_joint_key_once():
    config = {
        "objective.lambda_tv": 0.3,
        "_area_bounds": [0.05, 0.2],
        "objective.casm.lambda_r": INACTIVE,
        "objective.rank.lambda_area": 0.1,
        "_other": 1,
    }
    assert split_joint(config)["objective.min_area"] == 0.05
    assert trial_values(config) == {
        "objective.lambda_tv": 0.3,
        "objective.min_area": 0.05,
        "objective.max_area": 0.2,
        "objective.lambda_area": 0.1,
    }
