"""Trained Explananda shared through the sweep's storage: published once, fetched by every node that lacks them.

The unit tests publish and fetch cache entries against a local folder (and moto's S3 server); the
cluster test runs a sweep on three nodes of this machine, each with its own cache folder (no
shared disk), and counts the trained and fetched copies.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from attrsearch.cache import META, CacheEntry
from attrsearch.sweep.dryrun import describe
from attrsearch.sweep.explananda import ExplanandaPlan, explananda_plan, is_ready, needed_explananda
from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.shared_cache import FETCHED, SharedCache, is_fetched, public_uri
from tests.support.multinode import WORKER, four_fractional_trials, read_rows, run_harness
from tests.support.s3_server import s3fs
from tests.support.sweep_files import TINY_BASE, sweep_dict, write_sweep


def _entry(root: Path, key: str = "small_cnn-s0-abc") -> CacheEntry:
    return CacheEntry(root, "explananda", key, version=1)


def _build(entry: CacheEntry, payload: bytes = b"weights") -> None:
    def fn(folder: Path) -> dict:
        (folder / "model.pt").write_bytes(payload)
        (folder / "sub").mkdir()
        (folder / "sub" / "extra.txt").write_text("x")
        return {"arch": "small_cnn"}

    entry.build(fn)


def test_publish_then_fetch_through_a_local_folder(tmp_path):
    shared = SharedCache(str(tmp_path / "storage" / "sweep"))
    node_a, node_b = _entry(tmp_path / "a"), _entry(tmp_path / "b")
    _build(node_a)
    assert not shared.fetch(node_b) and not node_b.exists()  # nothing published yet
    assert shared.publish(node_a)
    assert not shared.publish(node_a)  # once
    stored = tmp_path / "storage" / "sweep" / "explananda" / node_a.key
    assert sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file()) == [
        META,
        "model.pt",
        "sub/extra.txt",
    ]
    assert shared.fetch(node_b)
    assert node_b.exists() and (node_b.path / "model.pt").read_bytes() == b"weights"
    assert (node_b.path / "sub" / "extra.txt").read_text() == "x"
    assert node_b.meta()["arch"] == "small_cnn"
    assert is_fetched(node_b.path) and not is_fetched(node_a.path)
    assert json.loads((node_b.path / FETCHED).read_text())["source"] == shared.location(node_b)
    assert not shared.fetch(node_b)  # already in this node's cache
    assert [p.name for p in node_b.path.parent.iterdir() if p.name.startswith(".tmp-")] == []


def test_an_entry_without_meta_json_is_not_fetched(tmp_path):
    """A half-published entry (payload there, meta.json not yet) counts as absent; so does another version."""
    shared = SharedCache(str(tmp_path / "storage"))
    half = tmp_path / "storage" / "explananda" / "small_cnn-s0-abc"
    half.mkdir(parents=True)
    (half / "model.pt").write_bytes(b"partial")
    target = _entry(tmp_path / "node")
    assert not shared.is_published(target)
    assert not shared.fetch(target) and not target.path.exists()
    (half / META).write_text(json.dumps({"cache_version": 2}))
    assert not shared.is_published(target) and not shared.fetch(target)
    (half / META).write_text(json.dumps({"cache_version": 1, "arch": "small_cnn"}))
    assert shared.fetch(target) and (target.path / "model.pt").read_bytes() == b"partial"


def test_a_fetched_copy_published_into_another_storage_drops_its_marker(tmp_path):
    first, second = SharedCache(str(tmp_path / "s1")), SharedCache(str(tmp_path / "s2"))
    trained, fetched = _entry(tmp_path / "a"), _entry(tmp_path / "b")
    _build(trained)
    first.publish(trained)
    first.fetch(fetched)
    assert second.publish(fetched)
    assert not (tmp_path / "s2" / "explananda" / fetched.key / FETCHED).exists()


def test_the_recorded_source_holds_no_credentials():
    assert public_uri("s3://KEY:SECRET@bucket/sweeps/x?endpoint_override=h") == "s3://bucket/sweeps/x"
    assert public_uri("/tmp/results/x") == "/tmp/results/x"
    shared = SharedCache("s3://KEY:SECRET@bucket/sweeps/x")
    assert "SECRET" not in shared.location(_entry(Path("/c")))


def test_publish_and_fetch_on_s3(tmp_path, moto_s3, monkeypatch):
    for key, value in moto_s3.items():
        monkeypatch.setenv(key, value)
    fs = s3fs(moto_s3)
    fs.create_dir("attrsearch-cache")
    shared = SharedCache("s3://attrsearch-cache/results/sweep")
    node_a, node_b = _entry(tmp_path / "a"), _entry(tmp_path / "b")
    _build(node_a, b"s3 weights")
    assert not shared.is_published(node_a)
    assert shared.publish(node_a) and shared.is_published(node_a)
    assert fs.get_file_info(f"attrsearch-cache/results/sweep/explananda/{node_a.key}/model.pt").size == 10
    assert shared.fetch(node_b) and (node_b.path / "model.pt").read_bytes() == b"s3 weights"
    assert json.loads((node_b.path / FETCHED).read_text())["source"].startswith("s3://attrsearch-cache/")
    fs.delete_file(f"attrsearch-cache/results/sweep/explananda/{node_a.key}/{META}")
    assert not shared.fetch(_entry(tmp_path / "c"))  # without meta.json: not complete


def test_the_setting_and_node_caches(tmp_path):
    local = load_sweep(write_sweep(tmp_path, sweep_dict(name="plan", storage=str(tmp_path / "r"))))
    assert explananda_plan(local, None) == ExplanandaPlan(None, False)  # embedded Ray: one cache
    on_cluster = explananda_plan(local, "10.0.0.5:6379")
    assert on_cluster.shared == f"{tmp_path / 'r'}/plan" and on_cluster.node_cache
    assert "cache_dir" in local.base and "cache_dir" not in on_cluster.node_data(local.base)
    s3 = load_sweep(write_sweep(tmp_path, sweep_dict(name="plan", storage="s3://b/r")))
    assert explananda_plan(s3, None).shared == "s3://b/r/plan"
    off = load_sweep(write_sweep(tmp_path, sweep_dict(name="plan", storage="s3://b/r", share_explananda="off")))
    assert explananda_plan(off, "10.0.0.5:6379").shared is None
    forced = load_sweep(write_sweep(tmp_path, sweep_dict(name="plan", share_explananda="storage")))
    assert explananda_plan(forced, None).shared is not None
    pinned = load_sweep(
        write_sweep(tmp_path, sweep_dict(name="plan", base={**copy.deepcopy(TINY_BASE), "cache_dir": "mycache"}))
    )
    plan = explananda_plan(pinned, "10.0.0.5:6379")
    assert not plan.node_cache and plan.node_data(pinned.base)["cache_dir"] == str(Path("mycache").resolve())
    with pytest.raises(Exception, match="share_explananda"):
        load_sweep(write_sweep(tmp_path, sweep_dict(name="plan", share_explananda="sometimes")))
    # The setting is how a sweep runs, not what it computes: changing it keeps --resume possible.
    off_locally = sweep_dict(name="plan", storage=str(tmp_path / "r"), share_explananda="off")
    assert local.identity() == load_sweep(write_sweep(tmp_path, off_locally)).identity()


def test_a_node_fetches_what_another_node_trained_and_published(tmp_path, monkeypatch):
    """ensure_explanandum (the preparation task and the trial's step) on two node caches: one training."""
    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.sweep import explananda
    from attrsearch.train import explanandum as train_explanandum

    sweep = load_sweep(write_sweep(tmp_path, sweep_dict(name="nodes", storage=str(tmp_path / "r"))))
    plan = explananda_plan(sweep, "10.0.0.5:6379")
    jobs, _ = needed_explananda(sweep)
    assert [j.role for j in jobs] == ["explanandum", "panel"] and not any(is_ready(j, plan) for j in jobs)
    shown = describe(sweep, address="10.0.0.5:6379")  # the dry run reads the storage, not this machine's cache
    assert "shared through" in shown and "(0 in storage)" in shown and shown.count(" to train ") == 2
    trainings = []
    original = train_explanandum.train_explanandum
    monkeypatch.setattr(
        train_explanandum, "train_explanandum", lambda *a, **k: trainings.append(1) or original(*a, **k)
    )
    for node in ("a", "b"):
        monkeypatch.setenv("ATTRSEARCH_CACHE", str(tmp_path / node))
        cfg = validate(ExperimentConfig, plan.node_data(sweep.base))
        assert cfg.cache_dir == tmp_path / node
        explananda.fetch_trial_explananda(cfg, plan.cache)
    assert len(trainings) == 2  # node a trained the Explanandum and the panel member; node b fetched both
    assert all(is_ready(j, plan) for j in jobs)
    shown = describe(sweep, address="10.0.0.5:6379")
    assert "(2 in storage)" in shown and shown.count(" in storage ") == 2
    monkeypatch.setattr(SharedCache, "is_published", lambda self, entry: (_ for _ in ()).throw(OSError("no route")))
    assert "not checked: the storage cannot be read (no route)" in describe(sweep, address="10.0.0.5:6379")
    for node, fetched in (("a", False), ("b", True)):
        entries = sorted((tmp_path / node / "explananda").glob("*/meta.json"))
        assert len(entries) == 2 and all(is_fetched(e.parent) == fetched for e in entries)


# ------------------------------------------------------------------------------ a three-node cluster


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_three_nodes_without_a_shared_disk_train_each_explanandum_once(tmp_path):
    """Head (1 CPU) + two workers (2 CPUs, 1 logical GPU), each node with its own cache; four trials
    at gpu 0.5 joined with --address. One Explanandum training per cluster: each entry (the
    Explanandum and the transfer panel's member) is in storage once, trained in exactly one node
    cache and fetched into the other worker's."""
    caches = {name: tmp_path / f"cache-{name}" for name in ("driver", "head", "w1", "w2")}
    path = four_fractional_trials(tmp_path, "shared")  # final_suite full: a transfer panel
    t0 = time.monotonic()
    out = run_harness(
        tmp_path,
        {
            "sweep": str(path),
            "head": {"num_cpus": 1, "cache": str(caches["head"])},
            "workers": [{**WORKER, "cache": str(caches["w1"])}, {**WORKER, "cache": str(caches["w2"])}],
            "driver_cache": str(caches["driver"]),
        },
        400,
    )
    rows = read_rows(tmp_path / "results" / "shared")
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows), rows
    assert "explananda: 2 ready (0 in storage; trained: " in out["log"], out["log"]

    stored = tmp_path / "results" / "shared" / "explananda"
    names = sorted(p.name for p in stored.iterdir())
    assert len(names) == 2 and all((stored / n / META).is_file() and (stored / n / "model.pt").is_file() for n in names)
    copies = {node: sorted((cache / "explananda").glob("*/meta.json")) for node, cache in caches.items()}
    assert copies["driver"] == [] and copies["head"] == []  # neither trains: no task or trial fits there
    for name in names:
        held = {node: (caches[node] / "explananda" / name) for node in ("w1", "w2")}
        held = {node: folder for node, folder in held.items() if (folder / META).is_file()}
        trained = [node for node, folder in held.items() if not is_fetched(folder)]
        assert len(trained) == 1, (name, held)  # one training per cluster
        assert len(held) == 2, (name, held)  # the other worker fetched it
    node_of = dict(zip(out["workers"], ("w1", "w2")))
    ran = {node_of[r["node"]] for r in rows}
    assert ran == {"w1", "w2"}, rows
    fetched = [f for node in ran for f in copies[node] if is_fetched(f.parent)]
    assert len(fetched) == 2  # every entry fetched once, by the worker that did not train it
    print(f"three-node sweep: {time.monotonic() - t0:.0f} s")


def test_a_corrupt_copy_in_storage_is_never_fetched(tmp_path, caplog):
    """A stored file cut in half (issue 23, B4): the copy fails the checksums of the stored meta.json,
    is reported in one line and is not published into the node's cache."""
    import logging

    shared = SharedCache(str(tmp_path / "storage" / "sweep"))
    node_a, node_b = _entry(tmp_path / "a"), _entry(tmp_path / "b")
    _build(node_a, payload=b"w" * 1000)
    shared.publish(node_a)
    stored = tmp_path / "storage" / "sweep" / "explananda" / node_a.key / "model.pt"
    stored.write_bytes(stored.read_bytes()[:500])
    with caplog.at_level(logging.WARNING, logger="attrsearch"):
        assert not shared.fetch(node_b)
    assert not node_b.exists() and not node_b.path.exists()
    lines = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(lines) == 1 and "model.pt" in lines[0] and shared.location(node_b) in lines[0]
