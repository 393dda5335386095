"""A corrupt cache entry (issue 23, B4): detected by the checksums written at publish, reported in
one line, rebuilt, never used; an entry written before checksums is trusted once and sealed."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from attrsearch import cache
from attrsearch.cache import CHECKSUMS, META, META_CHECKSUM, CacheEntry, file_sha256
from attrsearch.data.cache import cached_arrays


def _builder(calls: list, value: int):
    def build():
        calls.append(value)
        return {"a": np.full((64, 64), value, np.int64), "b": np.arange(4)}, {"value": value}

    return build


def _corrupt_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "corrupt" in r.getMessage()]


def test_publish_writes_checksums_of_every_file(tmp_path):
    cached_arrays(tmp_path, "k", _builder([], 1))
    meta = json.loads((tmp_path / "k" / META).read_text())
    assert sorted(meta[CHECKSUMS]) == ["a.npy", "b.npy"]
    import hashlib

    assert meta[CHECKSUMS]["a.npy"] == hashlib.sha256((tmp_path / "k" / "a.npy").read_bytes()).hexdigest()
    assert len(meta[META_CHECKSUM]) == 64


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_array_file_is_rebuilt_and_never_used(tmp_path, caplog, damage):
    calls: list = []
    cached_arrays(tmp_path, "k", _builder(calls, 1))
    path = tmp_path / "k" / "a.npy"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size: only the hash can tell
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    else:
        path.unlink()
    assert CacheEntry(tmp_path, "", "k").state()[0] == "corrupt"
    with caplog.at_level(logging.WARNING, logger="attrsearch"):
        arrays, meta = cached_arrays(tmp_path, "k", _builder(calls, 2))
    assert calls == [1, 2]  # rebuilt
    assert meta["value"] == 2 and arrays["a"].shape == (64, 64) and int(arrays["a"][0, 0]) == 2
    lines = _corrupt_lines(caplog)
    assert len(lines) == 1 and "a.npy" in lines[0] and str(tmp_path / "k") in lines[0]
    assert "\n" not in lines[0]
    assert CacheEntry(tmp_path, "", "k").state()[0] == "ok"


def test_edited_meta_json_is_rebuilt(tmp_path, caplog):
    calls: list = []
    cached_arrays(tmp_path, "k", _builder(calls, 1))
    meta_path = tmp_path / "k" / META
    meta = json.loads(meta_path.read_text())
    meta["value"] = 5  # a hand edit: the payload is intact, the metadata is not what was published
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="attrsearch"):
        _, again = cached_arrays(tmp_path, "k", _builder(calls, 2))
    assert calls == [1, 2] and again["value"] == 2
    lines = _corrupt_lines(caplog)
    assert len(lines) == 1 and META in lines[0]


def test_unreadable_meta_json_is_rebuilt(tmp_path):
    calls: list = []
    cached_arrays(tmp_path, "k", _builder(calls, 1))
    meta_path = tmp_path / "k" / META
    meta_path.write_text(meta_path.read_text()[:20])  # cut in half
    _, again = cached_arrays(tmp_path, "k", _builder(calls, 2))
    assert calls == [1, 2] and again["value"] == 2


def test_entry_written_before_checksums_is_trusted_once_and_sealed(tmp_path, caplog):
    folder = tmp_path / "k"
    folder.mkdir()
    np.save(folder / "a.npy", np.full((2, 2), 7))
    (folder / META).write_text(json.dumps({"value": 7}))  # the old layout: no checksums
    calls: list = []
    with caplog.at_level(logging.INFO, logger="attrsearch"):
        arrays, meta = cached_arrays(tmp_path, "k", _builder(calls, 1))
    assert calls == [] and meta["value"] == 7 and int(arrays["a"][0, 0]) == 7  # trusted
    stored = json.loads((folder / META).read_text())
    assert stored[CHECKSUMS] == {"a.npy": file_sha256(folder / "a.npy")}  # sealed
    assert any("sealed" in r.getMessage() for r in caplog.records)
    np.save(folder / "a.npy", np.full((2, 2), 8))  # from now on a change is caught
    _, meta = cached_arrays(tmp_path, "k", _builder(calls, 1))
    assert calls == [1] and meta["value"] == 1


def test_checkpoint_cut_in_half_is_rebuilt(tmp_path, caplog):
    import torch

    entry = CacheEntry(tmp_path, "explananda", "m", 1)
    calls: list = []

    def train(folder):
        calls.append(1)
        torch.save({"w": torch.arange(10_000.0)}, folder / "model.pt")
        return {"arch": "x"}

    entry.build(train)
    model = entry.path / "model.pt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    assert not entry.exists()
    with caplog.at_level(logging.WARNING, logger="attrsearch"):
        entry.build(train)
    assert calls == [1, 1] and len(_corrupt_lines(caplog)) == 1
    assert torch.load(model, weights_only=True)["w"].shape == (10_000,)


def test_each_file_is_hashed_once_per_process(tmp_path, monkeypatch):
    cached_arrays(tmp_path, "k", _builder([], 1))
    hashed: list = []
    real = cache.hashlib.file_digest
    monkeypatch.setattr(cache.hashlib, "file_digest", lambda fh, alg: hashed.append(fh.name) or real(fh, alg))
    for _ in range(3):
        cached_arrays(tmp_path, "k", _builder([], 2))
    assert hashed == []  # remembered since publish (same size and mtime)
