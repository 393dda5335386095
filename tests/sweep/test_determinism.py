"""Determinism as a promise (issue 23, B6): the same sweep file and seed, run twice on CPU, give the
same trials.csv (every metric of every trial, compared exactly) and the same recommendation.

The two runs have different names on one storage and one cache (the second loads the cached
Explananda: issue 23, B3). Ignored columns: the trial id and node (Ray's), and wall-clock timings.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.run import run_sweep
from tests.support.sweep_files import sweep_dict, write_sweep

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NOT_COMPARED = ("trial_id", "node")


def _rows(exp: Path) -> list[dict[str, str]]:
    with open(exp / "trials.csv") as fh:
        rows = [
            {k: v for k, v in row.items() if k not in NOT_COMPARED and "seconds" not in k and "time" not in k}
            for row in csv.DictReader(fh)
        ]
    return sorted(rows, key=lambda r: sorted((k, v) for k, v in r.items() if k.startswith("config/")))


def test_same_sweep_and_seed_give_the_same_trials_and_recommendation(tmp_path, ray_address):
    exps = []
    for name in ("det_a", "det_b"):
        data = sweep_dict(
            name=name,
            search={"loss.lambda_tv": {"loguniform": [0.01, 1.0]}, "train.lr": {"loguniform": [1e-3, 1e-2]}},
            search_alg={"name": "random", "seed": 7},
            num_samples=2,
            max_concurrent_trials=2,
            storage=str(tmp_path / "results"),
        )
        data["base"]["evaluation"]["final_suite"] = "fast"
        data["base"]["train"]["epochs"] = 1
        assert run_sweep(load_sweep(write_sweep(tmp_path, data)), address=ray_address, verbose=0) == 0
        exps.append(tmp_path / "results" / name)
    first, second = (_rows(e) for e in exps)
    assert len(first) == 2 and [r["status"] for r in first] == ["completed"] * 2
    metrics = [k for k in first[0] if "/" in k and not k.startswith("config/")]
    assert "segmentation/iou" in metrics
    assert first == second  # every searched value and every metric, as written (repr of the floats)
    best = [yaml.safe_load((e / "best.yaml").read_text()) for e in exps]
    best[0].pop("name", None), best[1].pop("name", None)
    assert best[0] == best[1]
