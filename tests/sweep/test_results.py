"""Ray's state -> trial records: the error line of a failed trial (ranking, the Pareto front and the
leaderboard are the results contract's: tests/results/)."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs

from attrsearch.sweep.results import _error_line


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
