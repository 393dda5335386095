"""Sweep results on S3 without a cloud: moto's S3 server on 127.0.0.1, reached through pyarrow's S3 client.

The endpoint comes from AWS_ENDPOINT_URL (read by the AWS SDK under pyarrow, in the driver and in
every Ray worker, which inherit the driver's environment: the sweep runs as its own process with
an embedded Ray). Credentials come from the environment only; the test's secret key is unique, so
any file that holds it (results, Ray's session logs, S3 objects) is a leak.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.s3_server import SECRET, s3fs
from tests.support.sweep_files import REPO, TINY_BASE, assert_one_full_checkpoint, sweep_dict, write_sweep


def _cli(path: Path, env_extra: dict, timeout: int, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "RAY_ADDRESS"}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "attrsearch.cli", "sweep", str(path), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_s3_without_credentials_or_bucket_is_one_line(tmp_path, moto_s3):
    path = write_sweep(tmp_path, sweep_dict(name="s3bad", storage="s3://attrsearch-missing/results"))
    no_creds = _cli(path, {"AWS_ENDPOINT_URL": moto_s3["AWS_ENDPOINT_URL"], "HOME": str(tmp_path)}, 120)
    err = no_creds.stderr.strip().splitlines()
    assert no_creds.returncode == 2 and len(err) == 1 and "needs AWS credentials" in err[0], no_creds.stderr
    no_bucket = _cli(path, moto_s3, 120)
    err = no_bucket.stderr.strip().splitlines()
    assert no_bucket.returncode == 2 and len(err) == 1 and "bucket 'attrsearch-missing' does not exist" in err[0], (
        no_bucket.stderr
    )
    assert "Started a local Ray instance" not in no_bucket.stdout + no_bucket.stderr


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sweep_on_s3_with_a_retry_restored_from_s3_and_no_secret_written(tmp_path, moto_s3):
    fs = s3fs(moto_s3)
    fs.create_dir("attrsearch-results")
    data = sweep_dict(
        name="s3sweep",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 2}},
        search={"loss.lambda_tv": {"grid": [0.01, 0.1]}},
        search_alg="grid",
        num_samples=1,
        max_failures=1,
        testing={"fail_once_at_epoch": 1},
        storage="s3://attrsearch-results/sweeps",
    )
    path = write_sweep(tmp_path, data)
    t0 = time.time()
    done = _cli(path, moto_s3, 400)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    exp = "attrsearch-results/sweeps/s3sweep"
    with fs.open_input_stream(f"{exp}/trials.csv") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read().decode())))
    assert len(rows) == 2 and len({r["trial_id"] for r in rows}) == 2
    assert all(r["status"] == "completed" and float(r["epochs"]) == 2.0 and int(r["failures"]) == 1 for r in rows), rows
    for row in rows:  # the retry restored the epoch-1 checkpoint from S3 and went on with epoch 2
        with fs.open_input_stream(f"{exp}/{row['trial_id']}/result.json") as fh:
            lines = [json.loads(x) for x in fh.read().decode().splitlines() if x.strip()]
        assert [(r["epoch"], r["trial/resumed_from_epoch"]) for r in lines] == [(1.0, 0.0), (2.0, 1.0)]
        assert fs.get_file_info(f"{exp}/{row['trial_id']}/run/metrics.json").size > 0
        assert_one_full_checkpoint(fs, f"{exp}/{row['trial_id']}")  # retention on object storage

    import pyarrow.fs

    leaks = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector("attrsearch-results", recursive=True)):
        if info.type == pyarrow.fs.FileType.File:
            with fs.open_input_stream(info.path) as fh:
                if SECRET.encode() in fh.read():
                    leaks.append(f"s3://{info.path}")
    sessions = [p for p in Path("/tmp/ray").glob("session_*") if p.is_dir() and p.stat().st_mtime >= t0 - 5]
    for root in [tmp_path, *sessions]:
        for file in root.rglob("*"):
            try:
                if file.is_file() and not file.is_symlink() and SECRET.encode() in file.read_bytes():
                    leaks.append(str(file))
            except OSError:
                continue
    assert SECRET not in done.stdout + done.stderr
    assert not leaks, leaks
