"""A trial that stops reporting (issue 23, B5): the report watchdog ends it, Tune retries it.

The testing hook ``hang_once_at_epoch`` makes the first trial to report epoch 1 sleep forever (a
deadlocked data loader); ``trial_report_timeout_s`` ends its worker. Real sweeps on the shared Ray.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.run import run_sweep
from attrsearch.sweep.watchdog import REASON_FILE
from tests.support.sweep_files import sweep_dict, write_sweep

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

TIMEOUT_S = 6.0  # covers a tiny trial's set-up and first epoch on a loaded 2-core machine


def _sweep(tmp_path: Path, name: str, max_failures: int) -> Path:
    data = sweep_dict(
        name=name,
        search={"loss.lambda_tv": {"grid": [0.01, 0.1]}},
        search_alg="grid",
        num_samples=1,
        max_failures=max_failures,
        trial_report_timeout_s=TIMEOUT_S,
        testing={"hang_once_at_epoch": 1},
        storage=str(tmp_path / "results"),
    )
    return write_sweep(tmp_path, data)


def _rows(exp: Path) -> dict[str, dict[str, str]]:
    with open(exp / "trials.csv") as fh:
        return {r["trial_id"]: r for r in csv.DictReader(fh)}


def _lines(trial_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (trial_dir / "result.json").read_text().splitlines() if x.strip()]


def test_hung_trial_is_ended_and_retried_from_its_checkpoint(tmp_path, ray_address, capfd):
    t0 = time.monotonic()
    assert run_sweep(load_sweep(_sweep(tmp_path, "hang", 1)), address=ray_address, verbose=0) == 0
    wall = time.monotonic() - t0
    exp = tmp_path / "results" / "hang"
    rows = _rows(exp)
    assert len(rows) == 2 and all(r["status"] == "completed" and r["error"] == "" for r in rows.values()), rows
    hung = [tid for tid in rows if (exp / tid / REASON_FILE).is_file()]
    assert len(hung) == 1, rows
    reason = (exp / hung[0] / REASON_FILE).read_text()
    assert reason.startswith("no report for ") and f"after epoch 1 (trial_report_timeout_s={TIMEOUT_S:g})" in reason
    assert {tid: int(r["failures"]) for tid, r in rows.items()} == {tid: int(tid in hung) for tid in rows}
    for tid in rows:  # every epoch recorded once; the retry resumed after epoch 1
        lines = _lines(exp / tid)
        assert [r["epoch"] for r in lines] == [1.0, 2.0], lines
    epochs = _lines(exp / hung[0])
    assert epochs[1]["trial/resumed_from_epoch"] == 1.0  # no epoch recomputed
    ended = (exp / hung[0] / REASON_FILE).stat().st_mtime
    detect = ended - epochs[0]["trial/reported_at"]
    recover = epochs[1]["trial/reported_at"] - ended
    assert TIMEOUT_S - 1 <= detect <= TIMEOUT_S + 5, detect
    out = capfd.readouterr().out
    assert f"trial {hung[0]}: {reason.strip()}; its worker is ended" in out, out[-3000:]
    with capfd.disabled():
        print(
            f"\nB5 hung trial: detected {detect:.1f} s after its last report, next epoch reported {recover:.1f} s "
            f"after the worker ended (retry start + one epoch); trials lost 0, epochs recomputed 0; sweep {wall:.0f} s"
        )


def test_hung_trial_without_retries_fails_with_its_reason_and_the_sweep_goes_on(tmp_path, ray_address):
    assert run_sweep(load_sweep(_sweep(tmp_path, "hang0", 0)), address=ray_address, verbose=0) == 0
    exp = tmp_path / "results" / "hang0"
    rows = _rows(exp)
    status = sorted(r["status"] for r in rows.values())
    assert status == ["completed", "error"], rows
    (bad,) = [r for r in rows.values() if r["status"] == "error"]
    assert bad["error"].startswith("TrialHung: no report for ") and "after epoch 1" in bad["error"], bad
    assert (exp / bad["trial_id"] / REASON_FILE).is_file()
    assert [r["epoch"] for r in _lines(exp / bad["trial_id"])] == [1.0]
