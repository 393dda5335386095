"""A restarted trial keeps every result line the driver logged (Ray's loggers restore from a stale storage copy)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
import pytest
from ray.tune.logger import JsonLoggerCallback

from attrsearch.sweep.recovery import CsvResults, JsonResults


def fake_trial(tmp_path: Path) -> SimpleNamespace:
    local, remote = tmp_path / "driver_staging", tmp_path / "storage" / "trial"
    local.mkdir(parents=True)
    remote.mkdir(parents=True)
    storage = SimpleNamespace(trial_fs_path=str(remote), storage_filesystem=pyarrow.fs.LocalFileSystem())
    return SimpleNamespace(local_path=str(local), storage=storage, checkpoint=object())


@pytest.mark.parametrize("name", ["result.json", "progress.csv"])
def test_newer_local_results_survive_a_trial_restart(tmp_path, name):
    trial = fake_trial(tmp_path)
    local, remote = Path(trial.local_path, name), Path(trial.storage.trial_fs_path, name)
    local.write_text("epoch 1\nepoch 2\n")  # the driver logged epoch 2, then the node went
    remote.write_text("epoch 1\n")  # the last sync to storage was before it
    JsonLoggerCallback()._restore_from_remote(name, trial)  # Ray's own: the storage copy wins
    assert local.read_text() == "epoch 1\n"
    local.write_text("epoch 1\nepoch 2\n")
    for cb in (JsonResults(), CsvResults()):
        cb._restore_from_remote(name, trial)
        assert local.read_text() == "epoch 1\nepoch 2\n"


def test_results_are_fetched_from_storage_after_a_driver_restart(tmp_path):
    trial = fake_trial(tmp_path)
    Path(trial.storage.trial_fs_path, "result.json").write_text("epoch 1\n")
    JsonResults()._restore_from_remote("result.json", trial)  # a new driver: no local copy yet
    assert Path(trial.local_path, "result.json").read_text() == "epoch 1\n"
