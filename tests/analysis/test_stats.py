"""Leaderboard intervals, ANOVA shares, Pareto sets, rank agreement and the recommendation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from attrsearch.analysis import stats
from attrsearch.analysis.results import read_results
from tests.support.results_folders import write_results


def test_confidence_interval_matches_scipy_on_the_seed_values():
    seeds = np.array([0.41, 0.47, 0.44])
    lo, hi = stats.confidence_interval(
        float(seeds.mean()), float(seeds.std()), 3
    )  # population std, as trials report it
    ref = sps.t.interval(0.95, 2, loc=seeds.mean(), scale=sps.sem(seeds))
    assert (lo, hi) == pytest.approx(ref)
    assert all(math.isnan(v) for v in stats.confidence_interval(0.4, 0.01, 1))


def test_leaderboard_ranks_completed_and_keeps_stopped_apart(synthetic):
    r = read_results(synthetic)
    completed, stopped = stats.leaderboard(r, r.sweep.objectives)
    assert len(completed) == 19 and len(stopped) == 4
    ious = [row.cells["segmentation/iou"][0] for row in completed]
    assert ious == sorted(ious, reverse=True)
    mean, std, lo, hi = completed[0].cells["segmentation/iou"]
    assert (lo, hi) == pytest.approx(stats.confidence_interval(mean, std, 3)) and lo < mean < hi
    assert all(row.trial.status == "stopped" for row in stopped)
    # deletion AUC is minimised: a leaderboard on it puts the lowest first
    board, _ = stats.leaderboard(r, ["faithfulness/deletion_auc"])
    vals = [row.cells["faithfulness/deletion_auc"][0] for row in board]
    assert vals == sorted(vals)


def test_anova_shares_sum_to_at_most_one_and_find_the_planted_factors(synthetic):
    r = read_results(synthetic)
    a = stats.anova(r, "segmentation/iou")
    assert a.factors == ["explanandum.arch", "explainer.arch"]
    assert set(a.shares) == {
        "explanandum.arch",
        "explainer.arch",
        "explanandum.arch x explainer.arch",
        "seed",
        "residual",
    }
    assert all(v >= 0 for v in a.shares.values())
    assert sum(a.shares.values()) <= 1 + 1e-9 and sum(a.shares.values()) == pytest.approx(1.0)
    # planted: explanandum +0.08 > explainer +0.05, no interaction, seed noise 0.01
    assert a.shares["explanandum.arch"] > a.shares["explanandum.arch x explainer.arch"]
    assert a.shares["seed"] < 0.05


def test_anova_of_a_pure_factor_effect_gives_it_all_the_variance(tmp_path):
    over = {}
    for i in range(16):
        over[f"ab12c_{i:05d}"] = {"segmentation/iou": 0.5 + 0.1 * (i % 2), "segmentation/iou_std": 0.0}
    r = read_results(write_results(tmp_path, n=16, stopped_every=0, error_trials=0, metrics_override=over))
    a = stats.anova(r, "segmentation/iou")
    assert a.shares["explanandum.arch"] == pytest.approx(1.0)
    assert a.shares["residual"] == pytest.approx(0.0, abs=1e-12)


def _brute_front(points, signs):
    s = points * signs
    return [
        i
        for i in range(len(s))
        if not any((s[j] >= s[i]).all() and (s[j] > s[i]).any() for j in range(len(s)) if j != i)
    ]


def test_pareto_is_exactly_the_non_dominated_completed_trials(synthetic):
    r = read_results(synthetic)
    p = stats.pareto(r)
    assert p.objectives == ["segmentation/iou", "class_specific/selectivity", "faithfulness/deletion_auc"]
    pool = [t for t in r.by_status("completed")]
    pts = np.array([[t.metrics[o] for o in p.objectives] for t in pool])
    expected = {pool[i].trial_id for i in _brute_front(pts, np.array([1.0, 1.0, -1.0]))}
    assert {t.trial_id for t in p.front} == expected
    assert {t.trial_id for t in p.front} | {t.trial_id for t in p.dominated} == {t.trial_id for t in pool}
    assert {t.status for t in p.stopped} == {"stopped"} and len(p.stopped) == 4
    # a hand-made case: b dominates c; a and b trade off; d ties a exactly (not dominated)
    m = stats.pareto_mask(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.5], [1.0, 0.0]]), np.array([1.0, 1.0]))
    assert m.tolist() == [True, True, False, True]
    assert stats.pareto_mask(np.array([[1.0, 5.0], [2.0, 6.0]]), np.array([1.0, -1.0])).tolist() == [True, True]


def test_spearman_sees_the_planted_agreement(synthetic):
    r = read_results(synthetic)
    rho = stats.spearman(r.by_status("completed"), ["segmentation/iou", "faithfulness/deletion_auc", "mask/area"])
    assert rho[0, 0] == pytest.approx(1.0)
    assert rho[0, 1] < -0.9  # deletion falls as iou rises
    assert rho[0, 1] == pytest.approx(rho[1, 0])


def test_recommendation_best_mean_when_intervals_separate(tmp_path):
    over = {f"ab12c_{i:05d}": {"segmentation/iou": 0.1 * i, "segmentation/iou_std": 0.001} for i in range(8)}
    r = read_results(write_results(tmp_path, n=8, stopped_every=0, error_trials=0, metrics_override=over))
    rec = stats.recommend(r)
    assert rec.trial.trial_id == "ab12c_00007" and len(rec.candidates) == 1
    assert rec.command == f"attrsearch train {r.root / 'best.yaml'} --out runs/synthetic-best"
    assert rec.near_best == 1 and rec.ranges["explanandum.arch"] == "{small_resnet}"


def test_recommendation_prefers_the_stable_trial_when_intervals_overlap(tmp_path):
    # A (best mean, wide seed spread) is a spike among poor neighbours; B is nearly as good on a plateau
    over = {f"ab12c_{i:05d}": {"segmentation/iou": 0.10, "segmentation/iou_std": 0.001} for i in range(5)}
    over.update({f"ab12c_{i:05d}": {"segmentation/iou": 0.305, "segmentation/iou_std": 0.001} for i in range(5, 10)})
    over["ab12c_00010"] = {"segmentation/iou": 0.32, "segmentation/iou_std": 0.05}  # A
    over["ab12c_00011"] = {"segmentation/iou": 0.31, "segmentation/iou_std": 0.001}  # B
    r = read_results(write_results(tmp_path, n=12, stopped_every=0, error_trials=0, archs=False, metrics_override=over))
    same = dict(r.trials[0].values)
    for i, t in enumerate(r.trials):  # only lambda_tv differs: A's neighbours are 0..4, B's are 5..9
        t.values.update({k: v for k, v in same.items() if k != "loss.lambda_tv"})
        t.values["loss.lambda_tv"] = [0.0101, 0.0102, 0.0103, 0.0104, 0.0105, 0.95, 0.96, 0.97, 0.98, 0.99, 0.01, 1.0][
            i
        ]
    rec = stats.recommend(r)
    assert rec.best_mean.trial_id == "ab12c_00010"
    cands = {c["trial"]: c for c in rec.candidates}
    assert set(cands) == {f"ab12c_{i:05d}" for i in range(5, 12)}  # the 0.10 trials are outside A's interval
    assert cands["ab12c_00010"]["sensitivity"] == pytest.approx(0.22)
    assert cands["ab12c_00011"]["sensitivity"] == pytest.approx(0.005)
    assert cands["ab12c_00011"]["robust"] == pytest.approx(0.31 - 0.001 - 0.005)
    assert rec.trial.trial_id == "ab12c_00011"
    assert "cannot tell them apart" in rec.reason
    # not the trial best.yaml names: the command sets its values explicitly
    t = rec.trial
    assert "--set" in rec.command and f"loss.lambda_tv={t.values['loss.lambda_tv']!r}" in rec.command
    assert rec.command.endswith("--out runs/synthetic-ab12c_00011")
    assert rec.near_best == 1  # 0.31 is 3% below 0.32


def test_ranges_within_one_percent(synthetic):
    r = read_results(synthetic)
    pool = stats.ranked(r.by_status("completed"), "segmentation/iou", "max")
    ranges, n = stats.ranges_near_best(r, pool, "segmentation/iou", "max")
    best = pool[0].metrics["segmentation/iou"]
    near = [t for t in pool if t.metrics["segmentation/iou"] >= best - 0.01 * abs(best)]
    assert n == len(near)
    lo, hi = min(t.values["loss.lambda_tv"] for t in near), max(t.values["loss.lambda_tv"] for t in near)
    assert ranges["loss.lambda_tv"] == f"{lo:.4g} .. {hi:.4g}"
