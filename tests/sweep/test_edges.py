"""Bad input at the edges of a cluster sweep: an ``--address`` no Ray head answers is one line, quickly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from sweep_files import REPO, sweep_dict, write_sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_is_one_line_within_30_s(tmp_path):
    path = write_sweep(tmp_path, sweep_dict(name="edge", storage=str(tmp_path / "results")))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    address = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "attrsearch.cli", "sweep", str(path), "--address", address],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - t0
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(err) == 1 and f"--address {address}" in err[0] and "no Ray head" in err[0], done.stderr
    assert took < 30, took
    assert not (tmp_path / "results" / "edge").exists()
