"""Multi-node sweeps on this machine: ``cluster_harness.py`` run in a subprocess, and a tiny sweep for it.

Shared by the multi-node tests and the shared-Explananda cluster test (tests/sweep).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.support.sweep_files import REPO, TINY_BASE, sweep_dict, write_sweep

HARNESS = Path(__file__).with_name("cluster_harness.py")  # run as a script, in its own process
WORKER = {"num_cpus": 2, "num_gpus": 1}


def run_harness(tmp_path: Path, spec: dict, timeout: int) -> dict:
    spec = {**spec, "result": str(tmp_path / "harness.json")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(HARNESS), str(tmp_path / "spec.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    out = json.loads((tmp_path / "harness.json").read_text())
    assert out.get("rc") == 0, out.get("log", "") + (done.stdout + done.stderr)[-4000:]
    return out


def read_rows(exp: Path) -> list[dict[str, str]]:
    with open(exp / "trials.csv") as fh:
        return list(csv.DictReader(fh))


def four_fractional_trials(tmp_path: Path, name: str) -> Path:
    """A sweep file of four one-epoch tiny trials at gpu 0.5 (only GPU workers run them), results under tmp_path."""
    data = sweep_dict(
        name=name,
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 1}},
        search={"loss.lambda_tv": {"grid": [0.01, 0.03, 0.1, 0.3]}},
        search_alg="grid",
        num_samples=1,
        resources_per_trial={"cpu": 1, "gpu": 0.5},
        storage=str(tmp_path / "results"),
    )
    return write_sweep(tmp_path, data)
