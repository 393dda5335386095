"""Results from trial records: ranking, Pareto front, leaderboard, error lines, status of a non-sweep folder."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pyarrow.fs
import pytest

from attrsearch.errors import UserError
from attrsearch.sweep.results import SweepResults, TrialRecord, _csv, _error_line, format_leaderboard, print_status


def record(tid: str, status: str = "completed", **metrics) -> TrialRecord:
    return TrialRecord(
        tid, status, "", {"loss.lambda_tv": 0.1, "explanandum": {"arch": "small_cnn"}}, metrics, 2.0, 0, f"/x/{tid}"
    )


def results(*trials, objectives=("segmentation/iou",), modes=("max",)) -> SweepResults:
    return SweepResults(list(trials), list(objectives), list(modes))


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
    text = _csv([t.row() for t in r.trials], ["trial_id", "status", "error", "epochs", "failures", "segmentation/iou"])
    header = text.splitlines()[0].split(",")
    assert header[:6] == ["trial_id", "status", "error", "epochs", "failures", "segmentation/iou"]
    assert "config/explanandum" in header and '"{""arch"": ""small_cnn""}"' in text
    board = format_leaderboard(r)
    assert "top 1 of 1 completed trials by segmentation/iou (higher is better, val split)" in board
    assert "b" not in board.splitlines()[-1].split()[:2]
    only_stopped = results(record("b", "stopped", **{"segmentation/iou": 0.5}))
    assert "reported so far" in format_leaderboard(only_stopped)
    assert format_leaderboard(results(record("e", "error"))).startswith("no trial has reported")


def _trial_in(folder):
    return SimpleNamespace(
        storage=SimpleNamespace(storage_filesystem=pyarrow.fs.LocalFileSystem(), trial_fs_path=str(folder))
    )


def _trial_with_error(tmp_path, text):
    (tmp_path / "error.txt").write_text(text)
    return _trial_in(tmp_path)


def test_error_line_is_the_exception_line(tmp_path):
    text = (
        "Failure # 1 (occurred at 2026-01-01)\nray::ImplicitFunc.train() (pid=1)\nTraceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n    raise TrainingDiverged(...)\n'
        "attrsearch.train.explainer.TrainingDiverged: loss became nan at epoch 1, step 2\n"
    )
    assert (
        _error_line(_trial_with_error(tmp_path, text))
        == "attrsearch.train.explainer.TrainingDiverged: loss became nan at epoch 1, step 2"
    )
    assert _error_line(_trial_with_error(tmp_path, "something odd\n")) == "something odd"
    assert _error_line(_trial_in(tmp_path / "none")) == "failed (no error file)"


def test_status_of_a_folder_that_is_not_a_sweep(tmp_path):
    with pytest.raises(UserError, match="no such results folder"):
        print_status(tmp_path / "absent")
    with pytest.raises(UserError, match="no Ray experiment state"):
        print_status(tmp_path)
