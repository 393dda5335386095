"""A full disk (issue 23, B2), injected with a small tmpfs mounted by the test: every write point
(dataset and Explanandum cache entries, checkpoints, results files) fails with one line naming the
path, leaves nothing half-written that a later run would trust, and the next run with space succeeds."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from attrsearch.cache import CHECKSUMS, CacheEntry, problem, read_meta
from attrsearch.data.cache import cached_arrays
from attrsearch.errors import DiskFull
from attrsearch.sweep.storage import Storage
from attrsearch.train.checkpoint import save_checkpoint
from tests.support.sweep_files import REPO


@pytest.fixture
def small_disk(tmp_path):
    """A 192 KiB tmpfs at tmp_path/disk (root only); ``resize(kib)`` remounts it with another size."""
    disk = tmp_path / "disk"
    disk.mkdir()

    def resize(kib: int, first: bool = False) -> None:
        opts = f"size={kib}k" if first else f"remount,size={kib}k"
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(disk)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'mount failed'}): needs root")

    resize(192, first=True)
    yield disk, resize
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp"))


def test_dataset_entry_on_a_full_disk_then_with_space(small_disk):
    disk, resize = small_disk
    big = {"images": np.ones((300, 1024), np.uint8)}  # 300 KiB: more than the disk
    with pytest.raises(DiskFull) as err:
        cached_arrays(disk, "k", lambda: (big, {"n": 300}))
    assert str(disk / "k") in str(err.value) and "\n" not in str(err.value)
    assert not (disk / "k").exists() and _leftovers(disk) == []  # no half-written entry
    resize(1024)
    arrays, meta = cached_arrays(disk, "k", lambda: (big, {"n": 300}))
    assert meta["n"] == 300 and int(arrays["images"].sum()) == 300 * 1024


def test_explanandum_entry_torch_save_on_a_full_disk(small_disk):
    disk, _ = small_disk
    entry = CacheEntry(disk, "explananda", "m")

    def train(folder):
        torch.save({"w": torch.zeros(100_000)}, folder / "model.pt")  # 400 KB: torch reports a RuntimeError
        return {"arch": "x"}

    with pytest.raises(DiskFull, match="explananda/m"):
        entry.build(train)
    assert not entry.path.exists() and _leftovers(disk) == []


def test_checkpoint_on_a_full_disk_keeps_the_previous_one(small_disk):
    disk, _ = small_disk
    path = disk / "run" / "last.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.zeros(10)})
    with pytest.raises(DiskFull, match="last.pt"):
        save_checkpoint(path, {"epoch": 2, "w": torch.zeros(100_000)})
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert _leftovers(disk) == []


def test_results_file_on_a_full_disk_keeps_the_previous_version(small_disk):
    disk, _ = small_disk
    storage = Storage.at(disk)
    storage.write_text("s/trials.csv", "a,b\n1,2\n")
    with pytest.raises(DiskFull, match="trials.csv"):
        storage.write_text("s/trials.csv", "x" * 400_000)
    assert storage.read_text("s/trials.csv") == "a,b\n1,2\n" and _leftovers(disk) == []


@pytest.mark.slow
def test_train_command_on_a_full_cache_disk_then_with_space(small_disk, tmp_path, tiny_experiment):
    """`attrsearch train` with its cache on a full disk: exit 1, one line naming the cache entry, no
    entry left; the same command after the disk grows trains and exits 0."""
    disk, resize = small_disk
    data = tiny_experiment | {"cache_dir": str(disk)}
    data["train"] = {**data["train"], "epochs": 1}
    data["evaluation"] = {**data["evaluation"], "final_suite": "fast"}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(data))
    cmd = [sys.executable, "-m", "attrsearch.cli", "train", str(config), "--out", str(tmp_path / "out")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1, first.stderr[-2000:]
    lines = [line for line in first.stderr.splitlines() if line.startswith("attrsearch: error")]
    assert len(lines) == 1 and str(disk) in lines[0] and "no space left" in lines[0], first.stderr[-2000:]
    for meta in disk.rglob("meta.json"):  # whatever was published before the disk filled is whole
        assert problem(meta.parent, read_meta(meta.parent)) is None and CHECKSUMS in read_meta(meta.parent)
    assert _leftovers(disk) == []
    resize(16 * 1024)
    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
