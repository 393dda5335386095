"""A sweep driver stopped by Ctrl-C, and a W&B key that never reaches a file.

Both run a real driver process against the session's shared Ray (``--address``), as a user's
terminal would, with W&B offline (the default).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.sweep_files import REPO, TINY_BASE, sweep_dict, write_sweep

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FAKE_KEY = "attrsearch0test0secret0" + "7f3a9c" * 4  # 40 characters, like a real key


def _driver(path: Path, address: str, log: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1", **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "attrsearch.cli", "sweep", str(path), "--address", address],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError("driver ended early:\n" + log.read_text()[-3000:])
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("timed out:\n" + log.read_text()[-3000:])


def test_one_ctrl_c_stops_the_sweep_and_keeps_what_finished(tmp_path, ray_address):
    data = sweep_dict(
        name="sigint",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 6}},
        search={"loss.lambda_tv": {"grid": [0.01, 0.1, 1.0]}},
        search_alg="grid",
        num_samples=1,
        max_concurrent_trials=1,
        storage=str(tmp_path / "results"),
        wandb={"mode": "offline"},
    )
    path = write_sweep(tmp_path, data)
    exp = tmp_path / "results" / "sigint"
    log = tmp_path / "driver.log"
    driver = _driver(path, ray_address, log)

    def some_trial_reported() -> bool:
        return any(p.stat().st_size > 0 for p in exp.glob("*/result.json"))

    _wait_for(some_trial_reported, driver, 300, log)
    t0 = time.monotonic()
    driver.send_signal(signal.SIGINT)
    try:
        driver.wait(timeout=30)
    finally:
        driver.kill()
    stopped = time.monotonic() - t0
    text = log.read_text()
    assert stopped <= 15, f"took {stopped:.1f} s to stop:\n{text[-3000:]}"
    assert (exp / "trials.csv").is_file(), text[-3000:]
    assert "--resume" in text, text[-3000:]
    time.sleep(2.0)  # Ray releases the dead driver's trial actors


def test_wandb_key_is_never_written(tmp_path, ray_address):
    import ray

    data = sweep_dict(
        name="secret",
        base={**TINY_BASE, "train": {**TINY_BASE["train"], "epochs": 1}},
        num_samples=1,
        storage=str(tmp_path / "results"),
        wandb={"mode": "offline", "gallery_images": 2},
    )
    path = write_sweep(tmp_path, data)
    log = tmp_path / "driver.log"
    driver = _driver(path, ray_address, log, {"WANDB_API_KEY": FAKE_KEY})
    assert driver.wait(timeout=400) == 0, log.read_text()[-3000:]
    session = Path(ray._private.worker.global_worker.node.get_session_dir_path())
    leaks = []
    for root in (tmp_path / "results", session):
        for file in root.rglob("*"):
            if file.is_file() and not file.is_symlink():
                try:
                    if FAKE_KEY.encode() in file.read_bytes():
                        leaks.append(str(file))
                except OSError:
                    continue
    assert not leaks, leaks
    assert list((tmp_path / "results" / "secret").glob("*/wandb/offline-run-*")), "no W&B run was written"
