"""Sweeps on a multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster`` in a subprocess).

Nodes have logical CPUs and GPUs (scheduling labels); trials ask for ``gpu: 0.5``, so only the
workers run trials (the head has no GPU) and two trials share one logical GPU.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from tests.support.multinode import WORKER, four_fractional_trials, read_rows, run_harness
from tests.support.sweep_files import TINY_BASE, sweep_dict, write_sweep

pytestmark = [pytest.mark.slow]


def reports(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]


@pytest.mark.timeout(420)
def test_sweep_spreads_over_two_workers_with_fractional_gpus(tmp_path):
    """Head + two workers (2 CPUs, 1 logical GPU each), four trials at gpu 0.5 submitted with --address:
    two trials per worker (two on one logical GPU), the node of each trial in trials.csv."""
    path = four_fractional_trials(tmp_path, "spread")
    out = run_harness(tmp_path, {"sweep": str(path), "head": {"num_cpus": 1}, "workers": [WORKER, WORKER]}, 400)
    rows = read_rows(tmp_path / "results" / "spread")
    assert len(rows) == 4 and len({r["trial_id"] for r in rows}) == 4
    assert all(r["status"] == "completed" for r in rows), rows
    per_node = collections.Counter(r["node"] for r in rows)
    assert set(per_node) == set(out["workers"]), (per_node, out["workers"])
    assert sorted(per_node.values()) == [2, 2]


@pytest.mark.timeout(480)
def test_lost_nodes_resume_trials_from_their_last_checkpoint(tmp_path):
    """Two trials (gpu 0.5 each) on one worker; the worker is removed right after the first report
    (Tune has logged it, its checkpoint is persisted but not yet registered) and a fresh worker is
    added, whose removal follows a later report (epoch 2). Every trial ends once, at epoch 3, each
    epoch reported exactly once, resumed from its last checkpoint, the failures counted."""
    data = sweep_dict(
        name="nodeloss",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 3}},
        search={"loss.lambda_tv": {"grid": [0.01, 0.1]}},
        search_alg="grid",
        num_samples=1,
        max_failures=4,
        resources_per_trial={"cpu": 1, "gpu": 0.5},
        storage=str(tmp_path / "results"),
    )
    path = write_sweep(tmp_path, data)
    out = run_harness(
        tmp_path,
        {
            "sweep": str(path),
            "mode": "driver",
            "head": {"num_cpus": 1},
            "workers": [WORKER],
            "kill_at_epochs": [1.0, 2.0],
        },
        460,
    )
    assert [r["epoch"] for r in out["removals"]] == [1.0, 2.0], out["removals"]
    exp = tmp_path / "results" / "nodeloss"
    rows = read_rows(exp)
    assert len(rows) == 2 and len({r["trial_id"] for r in rows}) == 2
    assert all(r["status"] == "completed" and float(r["epochs"]) == 3.0 for r in rows), rows
    killed = {r["trial"] for r in out["removals"]}
    for row in rows:
        lines = reports(exp / row["trial_id"])
        assert [r["epoch"] for r in lines] == [1.0, 2.0, 3.0], [
            (r["epoch"], r["trial/resumed_from_epoch"]) for r in lines
        ]
        if row["trial_id"] in killed:
            assert int(row["failures"]) >= 1
        assert {r["trial/node"] for r in lines} <= set(out["workers"]) | {r["added"] for r in out["removals"]}
    assert sum(int(r["failures"]) for r in rows) >= 2
    first_kill = out["removals"][0]
    resumed = reports(exp / first_kill["trial"])
    assert resumed[1]["trial/resumed_from_epoch"] == 1.0  # the epoch-1 checkpoint Tune had not registered
