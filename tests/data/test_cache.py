from __future__ import annotations

import multiprocessing as mp

import numpy as np

from attrsearch import cache
from attrsearch.data.cache import cached_arrays, is_cached, write_arrays
from tests.support.data_files import slow_cache_worker


def _builder(calls: list, value: int = 1):
    def build():
        calls.append(value)
        return {"a": np.full((2, 3), value, np.uint8), "b": np.arange(4)}, {"value": value}

    return build


def test_builds_once_and_memory_maps(tmp_path):
    calls: list = []
    arrays, meta = cached_arrays(tmp_path, "k", _builder(calls))
    again, meta2 = cached_arrays(tmp_path, "k", _builder(calls, 2))
    assert calls == [1]
    assert isinstance(again["a"], np.memmap) and not again["a"].flags.writeable
    np.testing.assert_array_equal(again["a"], np.ones((2, 3), np.uint8))
    assert meta2["value"] == 1 and meta2["cache_dir"] == str(tmp_path / "k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "k.lock"]


def test_incomplete_entry_is_rebuilt(tmp_path):
    (tmp_path / "k").mkdir()
    np.save(tmp_path / "k" / "a.npy", np.zeros(3))  # a killed writer's debris: no meta.json
    calls: list = []
    arrays, _ = cached_arrays(tmp_path, "k", _builder(calls))
    assert calls == [1] and arrays["a"].shape == (2, 3)


def test_lost_race_uses_the_winner(tmp_path, monkeypatch):
    """Without a lock, a process that finishes second drops its copy and reads the winner's."""
    monkeypatch.setattr(cache, "fcntl", None)

    def build():
        write_arrays(tmp_path / "k", {"a": np.full(2, 7)}, {"by": "winner"})  # another process wins meanwhile
        return {"a": np.full(2, 8)}, {"by": "loser"}

    arrays, meta = cached_arrays(tmp_path, "k", build)
    assert meta["by"] == "winner" and arrays["a"].tolist() == [7, 7]
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # the temp folder is gone


def test_two_processes_share_one_build(tmp_path):
    log = tmp_path / "builds.log"
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=slow_cache_worker, args=(str(tmp_path / "c"), str(log), str(tmp_path / f"r{i}")))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert [(tmp_path / f"r{i}").read_text() for i in range(2)] == ["0.0 2.0 4.0 6.0 8.0"] * 2
    assert len(log.read_text().split()) == 1  # the second process waited and loaded
    assert is_cached(tmp_path / "c", "entry")
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp")]


def test_is_cached(tmp_path):
    assert not is_cached(tmp_path, "k")
    write_arrays(tmp_path / "k", {"a": np.zeros(1)}, {})
    assert is_cached(tmp_path, "k")
