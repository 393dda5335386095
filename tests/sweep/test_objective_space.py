"""Conditional search spaces over objectives: each objective's own weights are drawn only when the
trial's ``objective.name`` is that objective (Optuna define-by-run, Tune's generator, plain sampling)."""

import random
from pathlib import Path

import pytest
import yaml

from attrsearch.config import ExperimentConfig, validate
from attrsearch.errors import UserError
from attrsearch.sweep.experiment import trial_data
from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.space import INACTIVE, trial_values

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
OWN = {
    "wysiwyc": {"objective.lambda_entropy"},
    "casm": {"objective.lambda_r", "objective.thinning"},
    "rtis": {"objective.lambda_area"},
    "rank": {"objective.temperature"},
}


def _write(tmp_path, search, objective=None):
    base = yaml.safe_load((SWEEPS / "shapes_single.yaml").read_text())
    if objective is not None:
        base["objective"] = objective
    sweep = {
        "name": "t",
        "base": base,
        "search": search,
        "search_alg": "random",
        "objective": "segmentation/iou",
        "num_samples": 2,
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_objectives_sweep_draws_only_the_chosen_objectives_weights():
    sweep = load_sweep(SWEEPS / "objectives.yaml")
    rng = random.Random(0)
    seen = set()
    for _ in range(40):
        values = sweep.space.sample(rng)
        name = values["objective.name"]
        seen.add(name)
        assert set(values) - {"objective.name"} == OWN[name]
        validate(ExperimentConfig, sweep.trial_data(values))  # the base's wysiwyc weights do not follow
    assert seen == set(OWN)


def test_optuna_define_by_run_suggests_only_active_weights():
    optuna = pytest.importorskip("optuna")
    sweep = load_sweep(SWEEPS / "objectives.yaml")
    space = sweep.space
    space.dims["objective.name"] = space.dims["objective.name"].__class__(
        "choice", values=("wysiwyc", "casm", "rtis", "rank")
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(12):
        trial = study.ask()
        out = space.optuna_space()(trial)
        assert set(trial.params) == {"objective.name"} | {
            p for p in space.gated if out["objective.name"] in space.gated[p][1]
        }
        name = out["objective.name"]
        assert set(trial_values(out)) - {"objective.name"} == OWN[name]


def test_tune_generator_marks_inactive_and_trial_values_drops_them():
    sweep = load_sweep(SWEEPS / "objectives.yaml")
    gate = sweep.space.gated["objective.casm.lambda_r"]

    class Spec:
        config = {"objective.name": "rtis"}

    from attrsearch.sweep.space import GatedDim

    assert GatedDim(*gate)(Spec()) == INACTIVE
    Spec.config = {"objective.name": "casm"}
    assert GatedDim(*gate)(Spec()) in (2.5, 10.0, 14.0)
    values = trial_values(
        {"objective.name": "rtis", "objective.casm.lambda_r": INACTIVE, "objective.rtis.lambda_area": 2.0}
    )
    assert values == {"objective.name": "rtis", "objective.lambda_area": 2.0}


def test_objective_specific_path_with_a_fixed_objective(tmp_path):
    path = _write(tmp_path, {"objective.lambda_r": {"choice": [1.0, 5.0]}}, objective={"name": "casm"})
    assert load_sweep(path).space.dims["objective.lambda_r"].values == (1.0, 5.0)
    bad = _write(tmp_path, {"objective.lambda_r": {"choice": [1.0, 5.0]}})
    with pytest.raises(
        UserError, match=r"search.objective.lambda_r: no field 'objective.lambda_r' in objective wysiwyc"
    ):
        load_sweep(bad)


def test_bad_objective_paths_are_one_line_errors(tmp_path):
    cases = [
        (
            {"objective.name": {"choice": ["wysiwyc", "casm"]}, "objective.casm.lambda_x": {"choice": [1.0]}},
            "objective casm has no field 'lambda_x'",
        ),
        ({"objective.name": {"choice": ["wysiwyc", "nope"]}}, "unknown objective 'nope'"),
        (
            {"objective.name": {"choice": ["wysiwyc", "casm"]}, "objective.rank.temperature": {"choice": [0.1]}},
            "trials never use objective 'rank'",
        ),
        (
            {"objective.name": {"choice": ["wysiwyc", "rank"]}, "objective.rank.temperature": {"choice": [0.0]}},
            "objective.temperature: Input should be greater than 0",
        ),
    ]
    for search, message in cases:
        with pytest.raises(UserError, match=message) as err:
            load_sweep(_write(tmp_path, search))
        assert "\n" not in str(err.value)


def test_trial_data_keeps_only_the_chosen_objectives_base_fields():
    base = {"objective": {"name": "wysiwyc", "lambda_tv": 0.1, "lambda_area": 1.0}}
    assert trial_data(base, {"objective.name": "rtis"})["objective"] == {"name": "rtis"}  # rtis defaults
    assert trial_data(base, {"objective.name": "wysiwyc"})["objective"]["lambda_tv"] == 0.1
