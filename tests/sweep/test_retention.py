"""One checkpoint per trial without Tune's snapshot per checkpoint: the ledger's retention and restores.

No Ray processes: a trial is a driver staging folder and a storage folder on the local disk.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
import pytest
from ray import tune

from attrsearch.sweep.recovery import (
    LEDGER,
    MANIFEST,
    REPLAYED_KEY,
    SUPERSEDED,
    CheckpointLedger,
    JsonResults,
    latest_checkpoint,
    publish_logged,
    write_manifest,
)

FS = pyarrow.fs.LocalFileSystem()


class FakeTrial(SimpleNamespace):
    __hash__ = object.__hash__  # Ray's loggers key their open files by trial


def make_trial(tmp_path: Path, epochs: int) -> FakeTrial:
    """A trial that reported ``epochs`` epochs: ``checkpoint_<i>`` folders in storage, one result line each locally."""
    local, root = tmp_path / "staging" / "t0", tmp_path / "storage" / "t0"
    local.mkdir(parents=True)
    for i in range(epochs):
        folder = root / f"checkpoint_{i:06d}"
        (folder / "seed0").mkdir(parents=True)
        (folder / "last.pt").write_bytes(b"w" * 1000)
        (folder / "seed0" / "best.pt").write_bytes(b"b" * 500)
        write_manifest(folder, i + 1, finished=i + 1 == epochs)
    (local / "result.json").write_text("".join(json.dumps({"epoch": i + 1}) + "\n" for i in range(epochs)))
    storage = SimpleNamespace(trial_fs_path=str(root), storage_filesystem=FS, current_checkpoint_index=0)
    return FakeTrial(
        local_path=str(local), storage=storage, root=root, config={}, init_local_path=lambda: None, checkpoint=None
    )


def kinds(root: Path) -> dict[str, str]:
    out = {}
    for folder in sorted(root.glob("checkpoint_*")):
        names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        out[folder.name] = "superseded" if names == [SUPERSEDED] else "full" if MANIFEST in names else str(names)
    return out


def log(ledger: CheckpointLedger, trial: FakeTrial, epoch: int) -> None:
    name = f"checkpoint_{epoch - 1:06d}"
    ledger.on_trial_result(0, [], trial, {"epoch": float(epoch), "checkpoint_dir_name": name})


def test_a_logged_checkpoint_empties_the_older_ones_after_the_results_are_in_storage(tmp_path):
    trial = make_trial(tmp_path, 3)
    ledger = CheckpointLedger()
    log(ledger, trial, 3)
    ledger.flush()
    assert kinds(trial.root) == {
        "checkpoint_000000": "superseded",
        "checkpoint_000001": "superseded",
        "checkpoint_000002": "full",
    }
    assert json.loads((trial.root / "checkpoint_000000" / SUPERSEDED).read_text()) == {"by": "checkpoint_000002"}
    assert json.loads((trial.root / LEDGER).read_text()) == {"epoch": 3.0, "checkpoint_dir_name": "checkpoint_000002"}
    assert (trial.root / "result.json").read_text() == Path(trial.local_path, "result.json").read_text()
    assert not (trial.root / "progress.csv").exists()  # only the files the driver has


def test_pbt_keeps_every_listed_checkpoint(tmp_path):
    trial = make_trial(tmp_path, 3)
    ledger = CheckpointLedger(retain=False)
    log(ledger, trial, 3)
    ledger.flush()
    assert set(kinds(trial.root).values()) == {"full"}
    assert (trial.root / LEDGER).is_file()


def test_results_are_published_up_to_the_logged_line_only(tmp_path):
    trial = make_trial(tmp_path, 2)
    local = Path(trial.local_path)
    logged = (local / "result.json").stat().st_size
    with open(local / "result.json", "a") as fh:
        fh.write('{"epoch": 3')  # the driver is appending the next line
    publish_logged(
        FS,
        str(trial.root),
        local,
        {"result.json": logged},
        {"epoch": 2.0, "checkpoint_dir_name": "checkpoint_000001"},
        set(),
    )
    assert [json.loads(x)["epoch"] for x in (trial.root / "result.json").read_text().splitlines()] == [1, 2]


def test_a_failed_results_upload_leaves_the_ledger_and_the_folders_as_they_were(tmp_path):
    trial = make_trial(tmp_path, 2)
    (trial.root / LEDGER).write_text(json.dumps({"epoch": 1.0, "checkpoint_dir_name": "checkpoint_000000"}))
    missing = {"progress.csv": 10}  # the local file is gone: reading it fails
    publish_logged(
        FS,
        str(trial.root),
        Path(trial.local_path),
        missing,
        {"epoch": 2.0, "checkpoint_dir_name": "checkpoint_000001"},
        set(),
    )
    assert json.loads((trial.root / LEDGER).read_text())["checkpoint_dir_name"] == "checkpoint_000000"
    assert set(kinds(trial.root).values()) == {"full"}


def test_a_restore_from_a_superseded_checkpoint_takes_the_ledgers(tmp_path):
    """An older experiment snapshot names checkpoint 0, emptied since: Tune's restore still finds the
    folder (it refuses a missing one), and the trial resumes from the ledger's checkpoint 2."""
    from ray.train._internal.storage import _exists_at_fs_path  # what Trainable.restore checks (Ray 2.60)

    trial = make_trial(tmp_path, 3)
    ledger = CheckpointLedger()
    log(ledger, trial, 3)
    ledger.flush()
    old = str(trial.root / "checkpoint_000000")
    assert _exists_at_fs_path(FS, old)
    chosen, orphans = latest_checkpoint(tune.Checkpoint(path=old, filesystem=FS), trial.storage)
    assert Path(chosen.path) == trial.root / "checkpoint_000002"
    assert orphans is None  # the ledger's folder is resumed from, not dropped after the next report
    assert trial.storage.current_checkpoint_index == 2  # the next report goes to a new folder


def test_a_persisted_but_unlogged_checkpoint_is_an_orphan(tmp_path):
    trial = make_trial(tmp_path, 3)  # epoch 3 was persisted, the driver never logged it
    (trial.root / LEDGER).write_text(json.dumps({"epoch": 2.0, "checkpoint_dir_name": "checkpoint_000001"}))
    chosen, orphans = latest_checkpoint(None, trial.storage)
    assert Path(chosen.path) == trial.root / "checkpoint_000001"
    assert orphans == [str(trial.root / "checkpoint_000002")]


def test_a_replayed_final_result_is_not_logged_twice(tmp_path):
    trial = make_trial(tmp_path, 0)
    Path(trial.local_path, "result.json").unlink()
    logger = JsonResults()
    logger.log_trial_result(1, trial, {"epoch": 2.0, "trial/finished": 1.0})
    logger.log_trial_result(1, trial, {"epoch": 2.0, "trial/finished": 1.0, REPLAYED_KEY: 1.0})
    logger.log_trial_end(trial)
    lines = Path(trial.local_path, "result.json").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [2.0]


@pytest.mark.parametrize("retain", [True, False])
def test_the_ledger_pickles_without_its_thread(tmp_path, retain):
    trial = make_trial(tmp_path, 2)
    ledger = CheckpointLedger(retain=retain)
    log(ledger, trial, 2)  # its thread exists now
    copy = pickle.loads(pickle.dumps(ledger))
    ledger.flush()
    assert copy.retain is retain and copy._pool is None
