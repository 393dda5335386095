"""Two sweeps on one storage and one cache (issue 23, B3): one run per results folder (a lock with
its owner, released on exit, recognised as stale after a crash), and sweeps of different names
sharing one Explananda cache train each Explanandum once. No Ray: the lock is taken before it starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attrsearch.errors import UserError
from attrsearch.results.layout import LOCK_FILE
from attrsearch.sweep.lock import acquire, is_stale, release, sweep_lock
from attrsearch.sweep.storage import Storage
from tests.support.sweep_files import REPO, sweep_dict, write_sweep

HOLDER = """
import sys, time
from attrsearch.sweep.lock import acquire
from attrsearch.sweep.storage import Storage
acquire(Storage.at(sys.argv[1]), sys.argv[2])
print("held", flush=True)
time.sleep(120)
"""


def _hold(root: Path, name: str) -> subprocess.Popen:
    """Another process that takes the lock and keeps it (until killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), name], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_holds_its_owner_and_is_released(tmp_path):
    storage = Storage.at(tmp_path)
    with sweep_lock(storage, "s") as owner:
        held = json.loads((tmp_path / "s" / LOCK_FILE).read_text())
        assert held == owner and held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert abs(held["started_at"] - time.time()) < 60
        assert acquire(storage, "s") == owner  # the same process again: not a second sweep
    assert not (tmp_path / "s").exists()  # the lock was all the run left: nothing stays


def test_the_same_name_is_refused_while_the_owner_lives_and_taken_over_after_a_crash(tmp_path, caplog):
    holder = _hold(tmp_path, "s")
    try:
        with pytest.raises(UserError) as err:
            acquire(Storage.at(tmp_path), "s")
        line = str(err.value)
        assert "\n" not in line and f"pid {holder.pid}" in line and "is running" in line
        assert acquire(Storage.at(tmp_path), "other")  # another name is free
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the lock stays behind
        holder.wait()
    assert (tmp_path / "s" / LOCK_FILE).is_file()
    start = time.perf_counter()
    owner = acquire(Storage.at(tmp_path), "s")
    assert time.perf_counter() - start < 1.0  # the dead pid is recognised at once
    assert json.loads((tmp_path / "s" / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert any("gone" in r.getMessage() for r in caplog.records)
    release(Storage.at(tmp_path), "s", owner)


def test_staleness():
    host = socket.gethostname()
    now = time.time()
    assert not is_stale({"pid": os.getpid(), "host": host, "started_at": now})
    assert not is_stale({"pid": 999_999_999, "host": "another-machine", "started_at": now})  # cannot tell
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert is_stale({"pid": dead.pid, "host": host, "started_at": now})
    assert is_stale({"pid": os.getpid(), "host": host, "started_at": now - 10 * 86400 - 60 * 60})  # pid reused
    assert is_stale({"host": host})


def test_second_sweep_of_the_same_name_exits_2_with_one_line(tmp_path):
    """`attrsearch sweep` against a results folder whose sweep runs: refused before Ray, exit 2."""
    results = tmp_path / "results"
    path = write_sweep(tmp_path, sweep_dict(name="busy", storage=str(results)))
    holder = _hold(results, "busy")
    try:
        env = {**os.environ, "ATTRSEARCH_CACHE": str(tmp_path / "cache")}
        env.pop("RAY_ADDRESS", None)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "attrsearch.cli", "sweep", str(path)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        seconds = time.perf_counter() - start
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is running" in lines[0] and f"pid {holder.pid}" in lines[0], proc.stderr
    assert sorted(p.name for p in (results / "busy").iterdir()) == [LOCK_FILE]  # nothing written beside it
    assert not (tmp_path / "cache").exists()  # no dataset, no Explanandum
    print(f"refused in {seconds:.1f} s")


def test_lock_on_s3(moto_s3, monkeypatch):
    from tests.support.s3_server import s3fs

    for key, value in moto_s3.items():
        monkeypatch.setenv(key, value)
    s3fs(moto_s3).create_dir("locks")
    storage = Storage.at("s3://locks/results")
    owner = acquire(storage, "s")
    assert json.loads(storage.read_text(f"s/{LOCK_FILE}"))["pid"] == os.getpid()
    foreign = {**owner, "pid": owner["pid"] + 1, "host": "another-machine"}
    storage.write_text(f"s/{LOCK_FILE}", json.dumps(foreign))
    with pytest.raises(UserError, match="another-machine"):
        acquire(storage, "s")
    release(storage, "s", owner)  # not ours any more: left alone
    assert storage.is_file(f"s/{LOCK_FILE}")
    storage.write_text(f"s/{LOCK_FILE}", json.dumps(owner))
    release(storage, "s", owner)
    assert not storage.is_file(f"s/{LOCK_FILE}")


def _prepare_in_process(data: dict, result: str) -> None:
    """What a sweep's preparation task does for one Explanandum (``ensure_explanandum``), in a spawned
    process: writes 1 when this process trained it, 0 when it loaded another's copy."""
    import torch

    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.sweep.explananda import ensure_explanandum

    torch.set_num_threads(1)
    trained = ensure_explanandum(validate(ExperimentConfig, data), {}, None)
    Path(result).write_text(str(int(trained)))


@pytest.mark.slow
def test_sweeps_of_different_names_train_a_shared_explanandum_once(tmp_path, tiny_experiment):
    """Two sweeps (different names, one cache) prepare the same Explanandum at the same time: the
    cache's build lock lets one train it, the other waits and loads it; the entry is whole."""
    import multiprocessing as mp

    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.train.explanandum import explanandum_entry

    data = tiny_experiment | {"cache_dir": str(tmp_path / "cache")}
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_prepare_in_process, args=(data, str(tmp_path / f"r{i}"))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted((tmp_path / f"r{i}").read_text() for i in range(2)) == ["0", "1"]  # trained once
    entry = explanandum_entry(validate(ExperimentConfig, data))
    assert entry.state()[0] == "ok"
    assert not [p for p in entry.path.parent.iterdir() if p.name.startswith(".tmp")]
