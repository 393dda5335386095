"""Analyses on every trial: the pool at the deepest rung, and the rank fidelity of early epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrsearch.analysis import rungs
from attrsearch.analysis.importance import importances
from attrsearch.analysis.results import Results, SweepInfo, Trial, read_results
from tests.support.results_folders import write_results


def test_asha_rungs_follow_rays_bracket():
    info = SweepInfo("s", ["segmentation/iou"], ["max"], {}, {}, {}, None, None, None, {})
    r = Results(Path("."), info, [], True)
    info.scheduler = {"name": "asha", "grace_period": 1, "reduction_factor": 2.0, "max_t": 8}
    assert rungs.asha_rungs(r) == [1, 2, 4]
    info.scheduler = {"name": "asha", "grace_period": 2, "reduction_factor": 3.0, "max_t": 20}
    assert rungs.asha_rungs(r) == [2, 6, 18]
    info.scheduler = {"name": "none"}
    assert rungs.asha_rungs(r) == [] and rungs.grace_period(r) is None


@pytest.fixture(scope="module")
def only_rungs(tmp_path_factory):
    """40 trials, every one stopped by ASHA at epoch 1: no completed trial, only the rung value."""
    root = write_results(
        tmp_path_factory.mktemp("rung"), n=40, seeds=None, archs=False, stopped_every=1, error_trials=0, seed=5
    )
    return read_results(root)


def test_rung_importance_ranks_the_planted_driver_above_the_null(only_rungs):
    assert only_rungs.by_status("completed") == []
    basis = rungs.pool(only_rungs, ["segmentation/iou"], rungs.MIN_TRIALS["importance"], "importance")
    assert basis.epoch == 1 and basis.label == "40 trials at epoch 1 (ASHA rung)"
    assert "Only 0 completed trials" in basis.note
    res, why = importances(only_rungs, "segmentation/iou", methods=("ped_anova", "fanova"), resamples=6)
    assert why == ""
    for method in ("ped_anova", "fanova"):
        rows = {x.param: x for x in res if x.method == method}
        assert rows["loss.lambda_tv"].basis == "40 trials at epoch 1 (ASHA rung)"
        assert rows["loss.lambda_tv"].mean > rows["loss.lambda_area"].mean + rows["loss.lambda_area"].std, method


def test_too_few_trials_anywhere_says_how_many_more(tmp_path):
    r = read_results(write_results(tmp_path, n=6, seeds=None, archs=False, stopped_every=2, error_trials=0))
    basis = rungs.pool(r, ["segmentation/iou"], 10, "importance")
    assert not basis.ok
    assert basis.note == (
        "Only 3 completed trials report segmentation/iou; importance needs at least 10, and no epoch was reached "
        "by 10 trials (at most 6): 4 more trials needed."
    )
    # enough completed trials: the completed ones, their final values
    full = rungs.pool(r, ["segmentation/iou"], 3, "importance")
    assert full.epoch is None and full.label == "3 completed trials (final suite)" and full.note == ""


def _results(curves: dict[str, list[float]], final: dict[str, float], grace: int = 1) -> tuple[Results, rungs.Curves]:
    info = SweepInfo("s", ["segmentation/iou"], ["max"], {}, {}, {}, None, None, None, {})
    info.scheduler = {"name": "asha", "grace_period": grace, "reduction_factor": 2.0, "max_t": 4}
    trials = [Trial(tid, "completed", "", 3.0, 0, {}, {"segmentation/iou": v}) for tid, v in final.items()]
    records = {
        tid: [{"epoch": float(e + 1), "segmentation/iou": v} for e, v in enumerate([*vals, final[tid]])]
        for tid, vals in curves.items()
    }
    return Results(Path("."), info, trials, True), lambda t: records[t.trial_id]


def test_rung_fidelity_known_answer():
    final = {f"t{i}": float(i) for i in range(1, 6)}
    # epoch 1: ranks (3, 4, 5, 1, 2) against the final (1, ..., 5): sum d^2 = 30, rho = 1 - 6*30/(5*24) = -0.5;
    # 4 of the 10 pairs concordant, tau = (4 - 6)/10 = -0.2, agreement (1 + tau)/2 = 0.4.
    # epoch 2: (2, 1, 3, 4, 5): sum d^2 = 2, rho = 0.9; 9 of 10 pairs concordant, agreement 0.9.
    early = {"t1": [3.0, 2.0], "t2": [4.0, 1.0], "t3": [5.0, 3.0], "t4": [1.0, 4.0], "t5": [2.0, 5.0]}
    r, curves = _results(early, final)
    rows = rungs.rung_fidelity(r, "segmentation/iou", curves)
    assert [(f.epoch, f.trials, f.rung, f.grace) for f in rows] == [(1.0, 5, True, True), (2.0, 5, True, False)]
    assert rows[0].rho == pytest.approx(-0.5) and rows[0].agreement == pytest.approx(0.4)
    assert rows[1].rho == pytest.approx(0.9) and rows[1].agreement == pytest.approx(0.9)
    warn = rungs.fidelity_warning(r, rows)
    assert "close to a coin flip" in warn and "only 40% of the pairs" in warn
    r2, curves2 = _results(early, final, grace=2)
    assert rungs.fidelity_warning(r2, rungs.rung_fidelity(r2, "segmentation/iou", curves2)) == ""


def test_the_base_trial_is_found_by_the_defaults_the_base_leaves_out():
    """A base that does not spell out a searched field ran with that field's default (here lambda_tv = 1)."""
    from attrsearch.analysis import stats
    from attrsearch.config.search import parse_dimension

    space = {"objective.lambda_tv": parse_dimension("objective.lambda_tv", {"loguniform": [0.01, 1.0]}, "x")}
    info = SweepInfo("s", ["segmentation/iou"], ["max"], space, {}, {}, None, None, None, {})
    info.raw = {"base": {"data": {"dataset": "shapes"}}, "start_from_base": True}
    trials = [
        Trial("t_00001", "completed", "", 2.0, 0, {"objective.lambda_tv": 0.2}, {"segmentation/iou": 0.5}),
        Trial("t_00000", "completed", "", 2.0, 0, {"objective.lambda_tv": 1.0}, {"segmentation/iou": 0.4}),
    ]
    r = Results(Path("."), info, trials, True)
    assert stats.base_values(r) == {"objective.lambda_tv": 1.0}
    versus = stats.compare_with_base(r, trials[0], "segmentation/iou")
    assert versus.base is trials[1] and versus.gain.diff == pytest.approx(0.1)
    assert versus.sentence.startswith("Trial t_00001 beats the base (trial t_00000)")
    info.raw["base"]["objective"] = {"lambda_tv": 0.5}
    assert "no trial has the base's values" in stats.compare_with_base(r, trials[0], "segmentation/iou").sentence


def test_a_base_stopped_by_the_scheduler_is_compared_where_it_stopped(tmp_path):
    """ASHA stopped the base at its rung: no final score, so both trials are compared at that epoch."""
    import json

    from attrsearch.analysis import stats
    from attrsearch.config.search import parse_dimension

    space = {"objective.lambda_tv": parse_dimension("objective.lambda_tv", {"loguniform": [0.01, 1.0]}, "x")}
    info = SweepInfo("s", ["segmentation/iou"], ["max"], space, {}, {}, None, None, None, {})
    info.raw = {"base": {"objective": {"lambda_tv": 1.0}}, "start_from_base": True}

    def folder(tid: str, curve: list[float]) -> Path:
        (tmp_path / tid).mkdir()
        lines = [json.dumps({"epoch": e + 1, "segmentation/iou": v}) for e, v in enumerate(curve)]
        (tmp_path / tid / "result.json").write_text("\n".join(lines) + "\n")
        return tmp_path / tid

    base = Trial("t_00000", "stopped", "", 2.0, 0, {"objective.lambda_tv": 1.0}, {"segmentation/iou": 0.30})
    base.folder = folder(base.trial_id, [0.20, 0.30])
    pick = Trial("t_00001", "completed", "", 4.0, 0, {"objective.lambda_tv": 0.2}, {"segmentation/iou": 0.50})
    pick.folder = folder(pick.trial_id, [0.25, 0.36, 0.45, 0.50])
    r = Results(tmp_path, info, [base, pick], True)
    versus = stats.compare_with_base(r, pick, "segmentation/iou")
    assert versus.base is base and versus.gain.base == pytest.approx(0.30) and versus.gain.pick == pytest.approx(0.36)
    assert versus.sentence.startswith("The scheduler stopped the base (trial t_00000) at epoch 2, so it has no final")
    assert "Trial t_00001 beats the base (trial t_00000)" in versus.sentence and "at epoch 2, where" in versus.sentence
    pick.folder = folder("elsewhere", [0.25])  # the pick has no value at epoch 2: no comparison, said why
    assert "was stopped, so it has no final score" in stats.compare_with_base(r, pick, "segmentation/iou").sentence
