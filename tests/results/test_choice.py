"""The results contract's choices: one ranking, one Pareto front, the best trial (best.yaml) and the
recommended one (the report's robust pick), and the leaderboard text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attrsearch.config.search import Dimension
from attrsearch.results.choice import TrialTable, best, format_leaderboard, pareto_front, pareto_mask, recommend
from attrsearch.results.trial import Trial, trials_csv


def record(tid: str, status: str = "completed", **metrics) -> Trial:
    values = {"loss.lambda_tv": 0.1, "explanandum": {"arch": "small_cnn"}}
    return Trial(tid, status, "", 2.0, 0, values, metrics, path=f"/x/{tid}")


def results(*trials, objectives=("segmentation/iou",), modes=("max",)) -> TrialTable:
    return TrialTable(list(trials), list(objectives), list(modes))


def test_best_ranks_completed_trials_only():
    r = results(
        record("a", **{"segmentation/iou": 0.4}),
        record("b", "stopped", **{"segmentation/iou": 0.9}),  # ASHA-stopped: never ran the final suite
        record("c", **{"segmentation/iou": 0.6}),
        record("d", **{"segmentation/iou": math.nan}),
        record("e", "error"),
    )
    assert [t.trial_id for t in r.ranked()] == ["c", "a"] and r.best().trial_id == "c"
    assert r.counts() == {"completed": 3, "stopped": 1, "error": 1}
    low = results(
        record("a", **{"mask/area": 0.4}), record("c", **{"mask/area": 0.2}), objectives=("mask/area",), modes=("min",)
    )
    assert low.best().trial_id == "c"


def test_pareto_front_by_hand():
    # (iou max, deletion min): a=(0.5, 0.3) b=(0.6, 0.4) c=(0.4, 0.5) dominated by a, d=(0.6, 0.3) dominates a and b.
    pts = {"a": (0.5, 0.3), "b": (0.6, 0.4), "c": (0.4, 0.5), "d": (0.6, 0.3)}
    trials = [record(k, **{"segmentation/iou": i, "faithfulness/deletion_auc": d}) for k, (i, d) in pts.items()]
    trials.append(record("s", "stopped", **{"segmentation/iou": 0.9, "faithfulness/deletion_auc": 0.0}))
    r = results(*trials, objectives=("segmentation/iou", "faithfulness/deletion_auc"), modes=("max", "min"))
    assert [t.trial_id for t in r.pareto()] == ["d"]
    trials[3] = record("d", **{"segmentation/iou": 0.55, "faithfulness/deletion_auc": 0.45})  # dominated by b
    r = results(*trials, objectives=("segmentation/iou", "faithfulness/deletion_auc"), modes=("max", "min"))
    assert [t.trial_id for t in r.pareto()] == ["a", "b"]


def test_rows_csv_and_leaderboard():
    r = results(
        record("a", **{"segmentation/iou": 0.4, "mask/area": 0.2}), record("b", "stopped", **{"segmentation/iou": 0.5})
    )
    text = trials_csv(r.trials, ["segmentation/iou"])
    header = text.splitlines()[0].split(",")
    assert header[:7] == ["trial_id", "status", "error", "epochs", "failures", "node", "segmentation/iou"]
    assert "config/explanandum" in header and '"{""arch"": ""small_cnn""}"' in text
    board = format_leaderboard(r)
    assert "top 1 of 1 completed trials by segmentation/iou (higher is better, val split)" in board
    assert "b" not in board.splitlines()[-1].split()[:2]
    only_stopped = results(record("b", "stopped", **{"segmentation/iou": 0.5}))
    assert "reported so far" in format_leaderboard(only_stopped)
    assert format_leaderboard(results(record("e", "error"))).startswith("no trial has reported")


def test_the_vector_and_the_table_front_are_one_computation():
    """pareto.csv (TrialTable.pareto) and the report's front (pareto_mask) pick the same trials."""
    rng = np.random.default_rng(0)
    pts = rng.random((30, 2)).round(1)  # ties included
    trials = [record(f"t{i:02d}", **{"segmentation/iou": a, "mask/area": b}) for i, (a, b) in enumerate(pts)]
    front = pareto_front(trials, ["segmentation/iou", "mask/area"], ["max", "min"])
    mask = pareto_mask(pts, np.array([1.0, -1.0]))
    assert [t.trial_id for t in front] == [t.trial_id for t, k in zip(trials, mask) if k]
    for t in front:  # nothing on the front is dominated, by hand
        a, b = t.metrics["segmentation/iou"], t.metrics["mask/area"]
        assert not any((x >= a and y <= b) and (x > a or y < b) for x, y in pts)


def test_best_and_recommended_agree_with_one_seed_and_differ_only_by_the_robust_pick():
    space = {"loss.lambda_tv": Dimension("loguniform", 0.01, 1.0, True)}
    one = [record("a", **{"segmentation/iou": 0.5}), record("b", **{"segmentation/iou": 0.6})]
    pick = recommend(one, "segmentation/iou", "max", space, seeds=1)
    assert pick.trial is pick.best is best(one, "segmentation/iou", "max") and pick.trial.trial_id == "b"
    # 3 seeds: b has the best mean but a wide interval that overlaps a's; a's robust score is better
    seeded = [
        record("a", **{"segmentation/iou": 0.58, "segmentation/iou_std": 0.001}),
        record("b", **{"segmentation/iou": 0.6, "segmentation/iou_std": 0.2}),
    ]
    seeded[0].values["loss.lambda_tv"] = 0.5
    pick = recommend(seeded, "segmentation/iou", "max", space, seeds=3)
    assert pick.best.trial_id == "b" == best(seeded, "segmentation/iou", "max").trial_id
    assert pick.trial.trial_id == "a" and len(pick.candidates) == 2 and "robust score" in pick.reason
    assert recommend([record("e", "error")], "segmentation/iou", "max", space, seeds=1) is None
    assert math.isfinite(pick.candidates[0]["ci"][0])


def test_rows_read_back_as_they_were_written(tmp_path):
    from attrsearch.results.trial import read_trials_csv

    space = {
        "loss.lambda_tv": Dimension("loguniform", 0.01, 1.0, True),
        "explanandum": Dimension("choice", values=({"arch": "small_cnn"}, {"arch": "vgg16"})),
    }
    trial = record("a", **{"segmentation/iou": 0.4})
    trial.node = "node-1"
    (tmp_path / "trials.csv").write_text(trials_csv([trial], ["segmentation/iou"]))
    back = read_trials_csv(tmp_path / "trials.csv", space)[0]
    assert (back.trial_id, back.status, back.epochs, back.node) == ("a", "completed", 2.0, "node-1")
    assert back.values == trial.values and back.metrics == {"segmentation/iou": 0.4}
    with pytest.raises(Exception, match="no trial_id column"):
        (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
        read_trials_csv(tmp_path / "bad.csv", space)


def test_base_trial_and_gain_over_base_by_hand():
    from attrsearch.results.choice import base_trial, gain_over_base, gain_sentence

    def t(tid, tv, iou, std):
        return Trial(
            tid,
            "completed",
            "",
            3.0,
            0,
            {"loss.lambda_tv": tv, "explainer.arch": "unet_small"},
            {"segmentation/iou": iou, "segmentation/iou_std": std},
        )

    trials = [t("a_00002", 0.3, 0.50, 0.01), t("a_00000", 0.1, 0.40, 0.02), t("a_00001", 0.1000000001, 0.45, 0.0)]
    base = base_trial(trials, {"loss.lambda_tv": 0.1, "explainer.arch": "unet_small"})
    assert base.trial_id == "a_00000"  # the earliest match (float values compared to 1e-6)
    assert base_trial(trials, {"loss.lambda_tv": 0.2, "explainer.arch": "unet_small"}) is None
    # paired over 3 seeds: differences 0.1, 0.12, 0.08 -> mean 0.1, sd 0.02, t(0.975, 2) = 4.302653
    g = gain_over_base(trials[0], base, "segmentation/iou", "max", 3, [(0.5, 0.4), (0.52, 0.4), (0.48, 0.4)])
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert g.diff == pytest.approx(0.1) and (g.low, g.high) == pytest.approx((0.1 - half, 0.1 + half), abs=1e-5)
    assert g.verdict == "beats" and "paired" in g.method
    # Welch from population stds 0.01 and 0.02 over 3 seeds: se^2 = (1e-4 + 4e-4) / 2
    w = gain_over_base(trials[0], base, "segmentation/iou", "max", 3)
    se = math.sqrt(2.5e-4)
    dof = (2.5e-4) ** 2 / (((0.5e-4) ** 2 + (2e-4) ** 2) / 2)
    from scipy.stats import t as student

    assert w.high - w.diff == pytest.approx(student.ppf(0.975, dof) * se)
    # a minimised objective: lower is better, so a positive difference loses
    lose = gain_over_base(trials[0], base, "segmentation/iou", "min", 3, [(0.5, 0.4), (0.52, 0.4), (0.48, 0.4)])
    assert lose.verdict == "loses to" and "did not beat the base" in gain_sentence(lose, trials[0], base)
    assert gain_sentence(g, base, base).startswith("The sweep did not beat the base")
    assert "start_from_base was off" in gain_sentence(None, trials[0], None)
