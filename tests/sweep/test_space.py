"""The search space: clipping and pairing of the area bounds, Tune and Optuna sampling keep a < b."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from attrsearch.config import OBJECTIVE_CONFIGS, StrictModel, validate
from attrsearch.config.search import Distribution
from attrsearch.errors import UserError
from attrsearch.sweep.space import AREA_A, AREA_B, JOINT_KEY, Dim, build_space, trial_values

BASE = {"objective": {"name": "wysiwyc", "min_area": 0.05, "max_area": 0.3}}  # the base experiment's bounds


def dists(**kinds):
    return {k.replace("__", "."): validate(Distribution, v) for k, v in kinds.items()}


def test_dim_below_and_above():
    d = Dim("uniform", low=0.1, high=0.5)
    below = d.below(0.3)
    assert below.low == 0.1 and below.high < 0.3 and below.high == math.nextafter(0.3, -math.inf)
    assert d.below(0.1) is None and d.above(0.5) is None
    assert d.above(0.2).low == math.nextafter(0.2, math.inf) and d.above(0.05) == d
    c = Dim("choice", values=(0.05, 0.1, 0.2))
    assert c.above(0.1).values == (0.2,) and c.below(0.1).values == (0.05,) and c.below(0.05) is None
    i = Dim("int", low=1, high=10)
    assert (i.below(4.0).high, i.above(4.5).low) == (3, 5)


def test_one_bound_searched_is_clipped_by_the_fixed_one():
    space = build_space(dists(loss__min_area={"uniform": [0.01, 0.5]}), BASE, source="f.yaml")
    assert space.dims[AREA_A].high < 0.3 and space.dims[AREA_A].low == 0.01
    assert any("kept below" in n for n in space.notes)
    space = build_space(dists(loss__max_area={"choice": [0.02, 0.1, 0.4]}), BASE, source="f.yaml")
    assert space.dims[AREA_B].values == (0.1, 0.4)
    with pytest.raises(UserError, match="a < b can never hold") as err:
        build_space(dists(loss__min_area={"uniform": [0.4, 0.6]}), BASE, source="f.yaml")
    assert "every value is >= objective.max_area (0.3) of the base" in str(err.value)
    with pytest.raises(UserError, match=r"every value is <= objective.min_area \(0.05\) of the base"):
        build_space(dists(loss__max_area={"uniform": [0.01, 0.04]}), BASE, source="f.yaml")


def test_two_discrete_bounds_become_valid_pairs():
    space = build_space(
        dists(loss__min_area={"grid": [0.05, 0.1, 0.3]}, loss__max_area={"grid": [0.1, 0.3]}), BASE, "f.yaml"
    )
    assert space.joints == {(AREA_A, AREA_B): ("grid", ((0.05, 0.1), (0.05, 0.3), (0.1, 0.3)))}
    assert space.joint == space.joints[(AREA_A, AREA_B)]
    assert space.notes == ["3 of 6 (a, b) combinations dropped because a >= b"]
    assert space.grid_size() == 3 and space.discrete_values(AREA_A) == [0.05, 0.1]
    with pytest.raises(UserError, match="grid for both or choice for both"):
        build_space(dists(loss__min_area={"grid": [0.05]}, loss__max_area={"choice": [0.3]}), BASE, "f.yaml")
    with pytest.raises(UserError, match="no pair"):
        build_space(dists(loss__min_area={"choice": [0.5]}, loss__max_area={"choice": [0.3]}), BASE, "f.yaml")


def test_mixed_and_continuous_pairs_are_conditional():
    space = build_space(
        dists(loss__min_area={"uniform": [0.01, 0.2]}, loss__max_area={"uniform": [0.005, 0.5]}), BASE, "f"
    )
    assert space.dims[AREA_B].low == math.nextafter(0.01, math.inf) and space.dims[AREA_B].high == 0.5
    assert space.conditional[AREA_A][1:] == (AREA_B, True)
    space = build_space(
        dists(loss__min_area={"choice": [0.05, 0.4]}, loss__max_area={"uniform": [0.1, 0.3]}), BASE, "f"
    )
    assert space.dims[AREA_A].values == (0.05,) and space.conditional[AREA_B][1:] == (AREA_A, False)
    with pytest.raises(UserError, match="never hold"):
        build_space(dists(loss__min_area={"uniform": [0.1, 0.2]}, loss__max_area={"uniform": [0.01, 0.05]}), BASE, "f")


SPACE = dict(
    loss__min_area={"uniform": [0.01, 0.3]},
    loss__max_area={"loguniform": [0.02, 0.4]},
    loss__lambda_tv={"choice": [0.1, 1.0]},
    explanandum={"choice": [{"arch": "small_cnn"}, {"arch": "small_resnet"}]},
)


def test_tune_generator_keeps_a_below_b():
    from ray.tune.search.variant_generator import generate_variants

    space = build_space(dists(**SPACE), BASE, "f")
    for _ in range(200):
        _, spec = next(generate_variants({"config": space.tune_param_space()}))
        values = trial_values(spec["config"])
        assert 0.01 <= values[AREA_A] < values[AREA_B] <= 0.4
        assert values["explanandum"] in ({"arch": "small_cnn"}, {"arch": "small_resnet"})


def test_optuna_define_by_run_keeps_a_below_b():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = build_space(dists(**SPACE), BASE, "f").optuna_space()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    for _ in range(40):
        trial = study.ask()
        values = trial_values(space(trial))
        assert 0.01 <= values[AREA_A] < values[AREA_B] <= 0.4
        assert values["explanandum"]["arch"] in ("small_cnn", "small_resnet")
        study.tell(trial, values[AREA_A])  # TPE then models the dynamic range too


def test_joint_pairs_in_both_generators():
    import optuna
    from ray.tune.search.variant_generator import generate_variants

    space = build_space(dists(loss__min_area={"choice": [0.05, 0.2]}, loss__max_area={"choice": [0.1, 0.3]}), BASE, "f")
    seen = set()
    for _ in range(50):
        _, spec = next(generate_variants({"config": space.tune_param_space()}))
        assert JOINT_KEY in spec["config"]
        values = trial_values(spec["config"])
        seen.add((values[AREA_A], values[AREA_B]))
    assert seen == {(0.05, 0.1), (0.05, 0.3), (0.2, 0.3)}
    trial = optuna.create_study().ask()
    values = trial_values(space.optuna_space()(trial))
    assert values[AREA_A] < values[AREA_B]


def test_start_point_for_both_generators():
    space = build_space(dists(**SPACE), BASE, "f")
    base = {AREA_A: 0.05, AREA_B: 0.3, "objective.lambda_tv": 1.0, "explanandum": {"arch": "small_cnn"}}
    assert space.start_point(base, optuna=False) == base
    assert space.start_point(base, optuna=True)["explanandum"] == '{"arch": "small_cnn"}'
    assert space.contains("objective.lambda_tv", 1.0) and not space.contains("objective.lambda_tv", 0.5)


class _Band(StrictModel):
    """A config class with an ordered pair of its own (not the area bounds)."""

    ORDERED_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (("low", "high"),)

    name: str = "band"
    low: float = 0.2
    high: float = 0.8


def test_any_declared_ordered_pair_is_planned(monkeypatch):
    """The engine reads ORDERED_PAIRS from the config classes: a new pair needs no code here."""
    import optuna
    from ray.tune.search.variant_generator import generate_variants

    monkeypatch.setitem(OBJECTIVE_CONFIGS, "band", _Band)
    base = {"objective": {"name": "band", "low": 0.2, "high": 0.8}}
    space = build_space(dists(objective__low={"uniform": [0.1, 0.9]}), base, "f")
    assert space.dims["objective.low"].high < 0.8 and "kept below the base's objective.high=0.8" in space.notes[0]
    space = build_space(dists(objective__low={"choice": [0.1, 0.5]}, objective__high={"choice": [0.3, 0.6]}), base, "f")
    assert space.joints == {("objective.low", "objective.high"): ("choice", ((0.1, 0.3), (0.1, 0.6), (0.5, 0.6)))}
    assert space.joint is None and space.paths == ["objective.low", "objective.high"]
    _, spec = next(generate_variants({"config": space.tune_param_space()}))
    assert "_low_high" in spec["config"]
    values = trial_values(spec["config"])
    assert values["objective.low"] < values["objective.high"]
    values = trial_values(space.optuna_space()(optuna.create_study().ask()))
    assert values["objective.low"] < values["objective.high"]
    space = build_space(
        dists(objective__low={"uniform": [0.1, 0.5]}, objective__high={"uniform": [0.3, 0.9]}), base, "f"
    )
    assert space.conditional["objective.low"][1:] == ("objective.high", True)
