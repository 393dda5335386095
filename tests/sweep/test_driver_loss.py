"""A killed driver (SIGKILL) with Optuna TPE and W&B offline, then ``--resume`` on the shared Ray.

Asserts what Ray issues #30861 (a restored searcher forgot its history) and #33129 (W&B runs left
incomplete) are about: the Optuna study after the resume holds every earlier trial and sampling
continues it, finished trials are not rerun, resumed trials keep their W&B run id, and every
finished trial's run is closed with its final summary.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.run import run_sweep
from tests.support.sweep_files import TINY_BASE, finished_and_interrupted, kill_driver_when, sweep_dict, write_sweep

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


def result_lines(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]


def study_trials(journal: Path) -> list:
    import optuna

    from attrsearch.sweep.searcher import journal_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="optresume", storage=journal_storage(journal)).get_trials(deepcopy=True)


def wandb_summary(run_dir: Path) -> dict:
    wandb = Path(sys.executable).parent / "wandb"
    done = subprocess.run(
        [str(wandb), "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def test_killed_driver_resumes_the_optuna_history_and_wandb_runs(tmp_path, ray_address):
    data = sweep_dict(
        name="optresume",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 3}},
        search={"loss.lambda_tv": {"loguniform": [0.01, 1.0]}},
        search_alg={"name": "optuna_tpe", "seed": 0, "n_startup_trials": 2},
        num_samples=3,
        max_concurrent_trials=1,
        storage=str(tmp_path / "results"),
        wandb={"mode": "offline", "gallery_images": 0},
    )
    path = write_sweep(tmp_path, data)
    exp = tmp_path / "results" / "optresume"
    journal = exp / "optuna.journal"
    finished, interrupted = kill_driver_when(
        path, ray_address, lambda: finished_and_interrupted(exp), tmp_path / "driver.log", snapshot_every_s=1
    )
    assert journal.is_file()  # the study is on disk while the sweep runs (optuna-dashboard can open it)
    before = {t.trial_id: result_lines(Path(t.path)) for t in finished}
    checkpoints_before = {
        t.trial_id: sorted(p.stat().st_mtime_ns for p in Path(t.path).glob("checkpoint_*/**/*")) for t in finished
    }
    study_before = {t.number: (t.state.name, t.params) for t in study_trials(journal)}
    assert sum(state == "COMPLETE" for state, _ in study_before.values()) == len(finished)
    time.sleep(2.0)  # Ray releases the dead driver's trial actors

    assert run_sweep(load_sweep(path), resume=True, address=ray_address, verbose=0) == 0
    with open(exp / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and len({r["trial_id"] for r in rows}) == 3
    assert all(r["status"] == "completed" and float(r["epochs"]) == 3.0 for r in rows), rows
    for trial_id, lines in before.items():  # not rerun: same reports, same checkpoint files
        assert result_lines(exp / trial_id) == lines
        assert (
            sorted(p.stat().st_mtime_ns for p in (exp / trial_id).glob("checkpoint_*/**/*"))
            == checkpoints_before[trial_id]
        )
    resumed = result_lines(exp / interrupted[0].trial_id)
    assert [r["epoch"] for r in resumed] == [1.0, 2.0, 3.0]  # each epoch once
    assert resumed[-1]["trial/resumed_from_epoch"] >= 1.0

    # The study continued: every earlier trial is in it, unchanged, and the later ones come after them.
    after = study_trials(journal)
    for number, (state, params) in study_before.items():
        if state == "COMPLETE":
            assert (after[number].state.name, after[number].params) == (state, params)
    complete = [t for t in after if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    values = sorted(float(r["config/objective.lambda_tv"]) for r in rows)
    assert sorted(next(iter(t.params.values())) for t in complete) == pytest.approx(values)  # the one searched value
    assert len(set(values)) == 3  # a sampler that restarted from its seed would propose its first points again
    assert max(t.number for t in complete) >= max(study_before)  # new asks were appended to the old study

    # W&B: one run id per trial (a resumed trial continues its run), each finished with its summary.
    runs: dict[str, list[Path]] = {}
    for run_dir in exp.glob("*/wandb/offline-run-*"):
        runs.setdefault(re.sub(r"^offline-run-\d+_\d+-", "", run_dir.name), []).append(run_dir)
    assert set(runs) == {r["trial_id"] for r in rows}
    for row in rows:
        summary = wandb_summary(sorted(runs[row["trial_id"]])[-1])
        assert summary["state"] == "finished" and summary["run_id"] == row["trial_id"]
        assert summary["summary"]["segmentation/iou"] == pytest.approx(float(row["segmentation/iou"]))
        assert summary["summary"]["trial/finished"] == 1.0
