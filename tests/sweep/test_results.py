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


def test_best_yaml_is_portable_and_measures_the_base(tmp_path, monkeypatch):
    """best.yaml: no machine-specific cache_dir, the gain over the base's trial, the reproducibility block."""
    from pathlib import Path

    import yaml as _yaml

    from attrsearch.results import provenance
    from attrsearch.results.trial import Trial
    from attrsearch.sweep.load import base_values, load_sweep
    from attrsearch.sweep.results import SweepResults, best_comments, best_config

    monkeypatch.chdir(tmp_path)
    sweep = load_sweep(Path(__file__).resolve().parents[2] / "sweeps" / "quickstart.yaml")
    assert sweep.config.start_from_base is True  # the default: on wherever it can be
    base = dict(base_values(sweep))
    other = {k: (v * 2 if isinstance(v, float) else v) for k, v in base.items()}
    o = sweep.objectives[0]
    trials = [
        Trial("q_00000", "completed", "", 3.0, 0, base, {o: 0.40}),
        Trial("q_00001", "completed", "", 3.0, 0, other, {o: 0.45}),
    ]
    results = SweepResults(trials, sweep.objectives, sweep.modes)
    text = best_comments(sweep, results, trials[1])
    assert text.startswith(f"# Trial q_00001 beats the base (trial q_00000) on {o} (validation split): 0.45 vs 0.4")
    facts = provenance.read_block(text)
    assert set(facts) == {"versions", "search_alg", "scheduler", "seeds", "importance"}
    assert "torch" in facts["versions"] and "optuna" in facts["versions"]
    stopped = [Trial("q_00000", "stopped", "", 3.0, 0, base, {o: 0.30}), trials[1]]
    text = best_comments(sweep, SweepResults(stopped, sweep.objectives, sweep.modes), trials[1])
    assert text.startswith("# The scheduler stopped the base (trial q_00000) at epoch 3, so it has no final score;")
    data = best_config(sweep, trials[1])
    assert not sweep.cache_dir_given  # quickstart's base names no cache_dir
    assert "cache_dir" not in data and str(Path.home()) not in _yaml.safe_dump(data)
    assert data["train"]["num_threads"] == max(
        1, int(sweep.config.resources_per_trial.cpu)
    )  # the trial's threads and str(Path.home()) not in _yaml.safe_dump(data)
