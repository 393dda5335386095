"""Importance from a rebuilt Optuna study: the planted driver outranks the planted noise."""

from __future__ import annotations

import optuna
import pytest

from attrsearch.analysis.importance import build_study, importances
from attrsearch.analysis.results import read_results
from tests.support.results_folders import write_results


@pytest.fixture(scope="module")
def driven(tmp_path_factory):
    """40 completed trials, one seed, no architectures: iou = f(lambda_tv) + small noise."""
    root = write_results(
        tmp_path_factory.mktemp("imp"), n=40, seeds=None, archs=False, stopped_every=0, error_trials=0, seed=3
    )
    return read_results(root)


def test_study_holds_the_trials_with_the_declared_distributions(driven):
    study = build_study(driven, "segmentation/iou")
    trials = study.get_trials()
    assert len(trials) == 40
    dist = trials[0].distributions
    assert dist["loss.lambda_tv"] == optuna.distributions.FloatDistribution(0.01, 1.0, log=True)
    assert dist["train.batch_size"] == optuna.distributions.IntDistribution(16, 32)
    # the coupled area bounds: two independent float distributions over their declared ranges
    assert dist["loss.min_area"] == optuna.distributions.FloatDistribution(0.01, 0.1)
    assert dist["loss.max_area"] == optuna.distributions.FloatDistribution(0.05, 0.4)
    # maximised metric: negated, so the best trial has the lowest value
    best = max(driven.by_status("completed"), key=lambda t: t.metrics["segmentation/iou"])
    assert study.best_value == pytest.approx(-best.metrics["segmentation/iou"])


def test_driver_ranks_above_noise_for_both_methods(driven):
    res, why = importances(driven, "segmentation/iou", resamples=8)
    assert why == ""
    for method in ("ped_anova", "fanova"):
        rows = {x.param: x for x in res if x.method == method}
        assert set(rows) == {"loss.lambda_tv", "loss.lambda_area", "loss.min_area", "loss.max_area", "train.batch_size"}
        assert rows["loss.lambda_tv"].mean > 0.5, method
        assert rows["loss.lambda_tv"].mean > rows["loss.lambda_area"].mean + rows["loss.lambda_area"].std, method
        assert all(x.resamples == 8 and x.std >= 0 for x in rows.values())
        assert sum(x.mean for x in rows.values()) == pytest.approx(1.0, abs=1e-6)


def test_minimised_metric_uses_the_same_ranking(driven):
    # deletion AUC falls as iou rises (lower is better): the same driver
    res, _ = importances(driven, "faithfulness/deletion_auc", methods=("ped_anova",), resamples=4)
    top = max(res, key=lambda x: x.mean)
    assert top.param == "loss.lambda_tv"


def test_too_few_trials_says_why(real_tiny):
    res, why = importances(read_results(real_tiny), "segmentation/iou")
    assert res == [] and "Only 1 completed trials" in why
