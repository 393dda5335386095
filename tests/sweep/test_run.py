"""Real sweeps on the shared local Ray: end to end with W&B, failures and retries, a killed driver resumed.

Each trial is a few seconds (32 px, 64 images, 2 epochs). These tests train, hence ``slow``.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs
import pytest

from attrsearch.analysis.status import print_status
from attrsearch.config import load_experiment
from attrsearch.log import console
from attrsearch.metrics.registry import metric_names
from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.results import load_trials
from attrsearch.sweep.run import run_sweep
from tests.support.sweep_files import (
    TINY_BASE,
    assert_one_full_checkpoint,
    finished_and_interrupted,
    kill_driver_when,
    sweep_dict,
    write_sweep,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def read_rows(exp: Path) -> list[dict[str, str]]:
    with open(exp / "trials.csv") as fh:
        return list(csv.DictReader(fh))


def result_lines(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]


def wandb_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), *args], capture_output=True, text=True, timeout=120
    )


def test_tiny_sweep_end_to_end(tmp_path, ray_address, capsys):
    """Optuna TPE + ASHA + W&B offline, two seeds per trial: trials.csv, best.yaml, W&B runs, status."""
    data = sweep_dict(
        name="e2e",
        search={
            "loss.lambda_tv": {"loguniform": [0.01, 1.0]},
            "loss.min_area": {"uniform": [0.01, 0.1]},
            "loss.max_area": {"uniform": [0.1, 0.4]},
        },
        search_alg={"name": "optuna_tpe", "seed": 0, "n_startup_trials": 2},
        scheduler={"name": "asha", "grace_period": 1},
        num_samples=3,
        max_concurrent_trials=2,
        seeds=[0, 1],
        storage=str(tmp_path / "results"),
        wandb={"mode": "offline", "gallery_images": 2},
    )
    assert run_sweep(load_sweep(write_sweep(tmp_path, data)), address=ray_address, verbose=0) == 0
    exp = tmp_path / "results" / "e2e"
    rows = read_rows(exp)
    assert len(rows) == 3 and len({r["trial_id"] for r in rows}) == 3
    assert {r["status"] for r in rows} <= {"completed", "stopped"}
    completed = [r for r in rows if r["status"] == "completed"]
    assert completed
    full = metric_names("full")
    for row in completed:
        missing = [m for m in full if row.get(m, "") == "" or row.get(f"{m}_std", "") == ""]
        assert not missing, missing  # every full-suite metric, as a mean over the seeds and its spread
        assert float(row["config/objective.min_area"]) < float(row["config/objective.max_area"])
        assert float(row["epochs"]) == 2.0

    best = load_experiment(exp / "best.yaml")
    assert best.evaluation.split == "test"
    ranked = sorted(completed, key=lambda r: -float(r["segmentation/iou"]))
    assert math.isclose(best.objective.lambda_tv, float(ranked[0]["config/objective.lambda_tv"]), rel_tol=1e-9)

    runs = sorted(exp.glob("*/wandb/offline-run-*"))
    assert len(runs) == 3
    sync = wandb_cli("sync", "--dry-run", *map(str, runs))
    assert sync.returncode == 0 and "Would sync 3 run(s)" in sync.stdout + sync.stderr
    best_run = next(exp.glob(f"{ranked[0]['trial_id']}/wandb/offline-run-*"))
    summary = json.loads(wandb_cli("leet", "inspect", "--summary", "--json", str(best_run)).stdout)
    assert summary["state"] == "finished" and summary["run_id"] == ranked[0]["trial_id"]
    assert summary["config"]["objective.lambda_tv"] == pytest.approx(float(ranked[0]["config/objective.lambda_tv"]))
    assert summary["config"]["data.image_size"] == 32  # the whole experiment, defaults included
    keys = set(summary["summary"])
    assert {
        "segmentation/iou",
        "faithfulness/deletion_auc",
        "gallery/masks",
        "gallery/class_masks",
        "tables/class_specific",
    } <= keys

    console()  # status logs its lines; the CLI routes them to stdout
    capsys.readouterr()
    assert print_status(exp) == 0
    out = capsys.readouterr().out
    assert "3 trials" in out and "completed" in out


def test_failed_trial_is_recorded_and_retries_resume_from_checkpoint(tmp_path, ray_address):
    """lr=1e30 diverges (NaN loss) and is recorded; every trial also fails once after epoch 1
    (testing hook) and max_failures=1 resumes it from the epoch-1 checkpoint."""
    data = sweep_dict(
        name="faults",
        search={"train.lr": {"grid": [0.002, 1.0e30]}},
        num_samples=1,
        max_failures=1,
        testing={"fail_once_at_epoch": 1},
        storage=str(tmp_path / "results"),
        start_from_base=False,  # the two grid points only (the base's lr is one of them)
    )
    assert run_sweep(load_sweep(write_sweep(tmp_path, data)), address=ray_address, verbose=0) == 0
    exp = tmp_path / "results" / "faults"
    rows = {float(r["config/train.lr"]): r for r in read_rows(exp)}
    assert len(rows) == 2
    bad, good = rows[1.0e30], rows[0.002]
    assert bad["status"] == "error" and "TrainingDiverged" in bad["error"] and "loss became" in bad["error"]
    assert good["status"] == "completed" and good["error"] == "" and int(good["failures"]) == 1
    lines = result_lines(exp / good["trial_id"])
    # Resumed, not restarted: epoch 1 was reported once, the retry continued with epoch 2.
    assert [(r["epoch"], r["trial/resumed_from_epoch"]) for r in lines] == [(1.0, 0.0), (2.0, 1.0)]
    assert (exp / good["trial_id"] / ".fault_injected").is_file()
    assert_one_full_checkpoint(pyarrow.fs.LocalFileSystem(), str(exp / good["trial_id"]))


def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path, ray_address):
    """Kill the driver (SIGKILL) once a trial finished and the next one is part-way, then --resume:
    the finished trial is not rerun, the interrupted one continues from its last checkpoint,
    trials.csv has each trial once."""
    data = sweep_dict(
        name="resume",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 4}},
        search={"loss.lambda_tv": {"grid": [0.01, 0.1, 1.0]}},
        search_alg="grid",
        num_samples=1,
        max_concurrent_trials=1,
        storage=str(tmp_path / "results"),
    )
    path = write_sweep(tmp_path, data)
    exp = tmp_path / "results" / "resume"
    finished, interrupted = kill_driver_when(
        path, ray_address, lambda: finished_and_interrupted(exp), tmp_path / "driver.log", snapshot_every_s=1
    )
    before = {t.trial_id: result_lines(Path(t.path)) for t in finished}
    time.sleep(2.0)  # Ray releases the dead driver's trial actors

    assert run_sweep(load_sweep(path), resume=True, address=ray_address, verbose=0) == 0
    rows = read_rows(exp)
    assert len(rows) == 3 and len({r["trial_id"] for r in rows}) == 3
    assert all(r["status"] == "completed" for r in rows), rows
    for trial_id, lines in before.items():
        assert result_lines(exp / trial_id) == lines  # not rerun: no new report
    resumed = result_lines(exp / interrupted[0].trial_id)
    # Continued from the checkpoint Ray had recorded (epoch >= 1), not restarted from scratch.
    assert resumed[-1]["epoch"] == 4.0 and resumed[-1]["trial/resumed_from_epoch"] >= interrupted[0].epochs
    assert sorted(float(r["config/objective.lambda_tv"]) for r in rows) == [0.01, 0.1, 1.0]
    # reuse_actors (the default): after the restore, one worker process ran both remaining trials.
    third = next(
        r["trial_id"] for r in rows if r["trial_id"] not in before and r["trial_id"] != interrupted[0].trial_id
    )
    assert {line["pid"] for line in result_lines(exp / third)} == {resumed[-1]["pid"]}


def test_a_trial_that_finished_after_the_last_snapshot_is_not_rerun_or_logged_twice(tmp_path, ray_address):
    """Tune snapshots the experiment periodically, not per checkpoint (here: a 600 s period, so the
    only snapshot is the first one, taken before the trial reported), so a driver killed after a trial's
    final result leaves a snapshot that knows nothing of its epochs. The resume restores the trial
    from the ledger's final checkpoint and replays its final result without training: each epoch
    once in result.json, every line there although no snapshot synced one, one whole checkpoint."""
    from attrsearch.sweep.recovery import LEDGER

    epochs = 3
    data = sweep_dict(
        name="window",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": epochs}},
        search={"loss.lambda_tv": {"grid": [0.1, 1.0]}},  # the second trial keeps the sweep going
        search_alg="grid",
        num_samples=1,
        max_concurrent_trials=1,
        storage=str(tmp_path / "results"),
    )
    path = write_sweep(tmp_path, data)
    exp = tmp_path / "results" / "window"

    def final_logged() -> bool:
        for file in exp.glob(f"*/{LEDGER}"):
            try:
                if json.loads(file.read_text()).get("epoch") == epochs:
                    return True
            except ValueError:
                pass
        return False

    kill_driver_when(path, ray_address, final_logged, tmp_path / "driver.log", snapshot_every_s=600, poll_s=0.1)
    trial = next(t for t in load_trials(str(exp)) if (Path(t.path) / LEDGER).is_file())
    assert trial.status in ("pending", "running") and trial.epochs is None  # the snapshot's view: not one report
    before = result_lines(Path(trial.path))
    assert [r["epoch"] for r in before] == list(range(1, epochs + 1))  # published by the ledger, not the snapshot
    time.sleep(2.0)

    assert run_sweep(load_sweep(path), resume=True, address=ray_address, verbose=0) == 0
    rows = {r["trial_id"]: r for r in read_rows(exp)}
    assert len(rows) == 2 and all(r["status"] == "completed" and float(r["epochs"]) == epochs for r in rows.values())
    assert result_lines(exp / trial.trial_id) == before  # the replayed final result is not a new line
    for record in load_trials(str(exp)):  # (the other trial had started: Ray gives its rerun a new folder)
        assert_one_full_checkpoint(pyarrow.fs.LocalFileSystem(), record.path)


def test_pbt_exploits_through_checkpoints(tmp_path, ray_address):
    """PBT over a loss weight: the weaker trial continues from the stronger one's checkpoint."""
    data = sweep_dict(
        name="pbt",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 3}},
        search={"loss.lambda_tv": {"loguniform": [0.01, 1.0]}},
        scheduler={"name": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5, "synch": True},
        num_samples=2,
        storage=str(tmp_path / "results"),
    )
    assert run_sweep(load_sweep(write_sweep(tmp_path, data)), address=ray_address, verbose=0) == 0
    exp = tmp_path / "results" / "pbt"
    rows = read_rows(exp)
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    for row in rows:  # every trial was paused at epoch 2 and went on from a checkpoint
        last = result_lines(exp / row["trial_id"])[-1]
        assert (last["epoch"], last["trial/resumed_from_epoch"]) == (3.0, 2.0)
    # Ray's PBT log, one line per exploit: [target, clone, iterations..., old config, new config].
    exploits = [json.loads(line) for line in (exp / "pbt_global.txt").read_text().splitlines() if line.strip()]
    assert len(exploits) == 1
    new_tv = exploits[0][5].get(
        "objective.lambda_tv", exploits[0][5].get("loss.lambda_tv")
    )  # canonical path since space.py
    assert any(
        float(r["config/objective.lambda_tv"]) == pytest.approx(new_tv) for r in rows
    )  # the clone's perturbed value
