"""Which checkpoint a restarted trial resumes from, so that no reported epoch is trained (or logged) twice.

The bug (a node lost right after a trial's first report; the retry restarted from epoch 0 and logged
epoch 1 twice): ``tune.report(metrics, checkpoint=...)`` persists the checkpoint folder
(``checkpoint_<index>``) before the result leaves the trial, the driver logs the result (callbacks,
``result.json``) and only then sends the trial a ``save`` call; the checkpoint is registered when
that call returns (``TuneController._process_trial_result`` -> ``_schedule_trial_save`` ->
``_process_trial_save``, Ray 2.60). A node lost in between leaves an epoch logged and persisted but
unknown to Tune: the retry's ``tune.get_checkpoint()`` is the previous checkpoint (None after the
first epoch), so that epoch was trained again and logged twice. (After a later epoch the save of
the previous report had returned, so the loss went unseen unless it hit the same window.) And
the retry persisted its next report under the unregistered folder's index, over it.

The fix, in two halves:

- the driver (``CheckpointLedger``, a Tune callback) writes ``LEDGER`` into the trial's folder each
  time it logs a result: the epoch and the checkpoint folder of the last logged report;
- the trial (``latest_checkpoint``) resumes from the ledger's folder when it is newer than Tune's
  and complete (``MANIFEST``, written by the trial before each report: epoch and file sizes), and
  moves the storage's checkpoint index past every existing folder. A checkpoint persisted but never
  logged (the node went before the driver fetched the result) is not taken: its epoch is trained
  and reported again, once. ``drop_orphans`` removes the unregistered folders after the next report.

A checkpoint in another trial's folder (a PBT exploit) is taken as Tune gives it.

A third way to lose a logged epoch, found by the node-loss test: when a trial restarts with a
checkpoint, Ray's JSON and CSV loggers copy ``result.json`` / ``progress.csv`` from the trial's
storage over the driver's local copy (``LoggerCallback._restore_from_remote``). The storage copy
is only as new as the last driver sync, so lines logged after it vanished (epoch 2 of a trial whose
node went right after that report). ``result_loggers`` keeps the driver's local file when it has
one: the driver writes locally first and syncs later, so its copy is never the older one; after a
driver restart (a new staging folder, no local file) the storage copy is fetched as before.

Retention (why a trial's older checkpoints are emptied here and not by Tune): Tune keeps
``CheckpointConfig(num_to_keep=N)`` consistent with its experiment state by snapshotting the whole
state (every trial so far) each time a trial has checkpointed N times since the last snapshot
(``_ExperimentCheckpointManager.on_trial_checkpoint``, Ray 2.60); with N = 1 that is once per
checkpoint, so a trial's cost grows with the trial count. Sweeps therefore let Tune keep every
checkpoint (``num_to_keep=None``: its snapshots stay periodic, at most 5% of the driver's time) and
keep one themselves: once the driver has logged a checkpoint, ``CheckpointLedger`` empties the trial's
older folders down to a ``SUPERSEDED`` note. The folder stays, so Tune's restore (which refuses
a checkpoint that storage no longer holds) accepts the older one a snapshot may still name, and
``latest_checkpoint`` then takes the ledger's, which is never emptied. The ledger is written only
after the trial's ``result.json`` / ``progress.csv`` up to that result are in storage, so a driver
restarted from an older snapshot resumes with every logged line. A restarted trial that re-sends
its logged final result (``REPLAYED_KEY``) is not logged twice.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from attrsearch.sweep.storage import write_whole

MANIFEST = "attrsearch_checkpoint.json"  # in every reported checkpoint folder
LEDGER = "attrsearch_logged.json"  # in the trial's folder, written by the driver
SUPERSEDED = "attrsearch_superseded.json"  # all that is left of a checkpoint folder once a newer one is logged
RESULT_FILES = ("result.json", "progress.csv")  # Ray's JSON and CSV loggers' files in a trial's folder
REPLAYED_KEY = "trial/replayed"  # 1: a restarted trial re-sends its final result, which was logged before


def write_manifest(checkpoint_dir: Path, epoch: int, finished: bool) -> None:
    """The epoch of ``checkpoint_dir`` and the size of each of its files, written before the report
    persists the folder: a persisted copy is complete when every listed size matches."""
    files = {
        str(f.relative_to(checkpoint_dir)): f.stat().st_size
        for f in sorted(checkpoint_dir.rglob("*"))
        if f.is_file() and f.name != MANIFEST and not f.name.startswith(".")
    }
    tmp = checkpoint_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"epoch": epoch, "finished": finished, "files": files}, indent=1))
    tmp.replace(checkpoint_dir / MANIFEST)


def _read_json(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        with fs.open_input_stream(path) as fh:
            return json.loads(fh.read().decode())
    except (OSError, ValueError, FileNotFoundError):
        return None


def manifest_epoch(fs: Any, folder: str) -> int | None:
    """The epoch of a persisted checkpoint folder if it is complete (every manifest file, same size)."""
    import pyarrow.fs

    manifest = _read_json(fs, f"{folder}/{MANIFEST}")
    if manifest is None:
        return None
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(folder, recursive=True))
    except (OSError, FileNotFoundError):
        return None
    sizes = {info.path[len(folder) + 1 :]: info.size for info in infos if info.type == pyarrow.fs.FileType.File}
    if any(sizes.get(name) != size for name, size in manifest.get("files", {}).items()):
        return None
    return int(manifest["epoch"])


def checkpoint_index(name: str) -> int | None:
    prefix = "checkpoint_"
    rest = name[len(prefix) :]
    return int(rest) if name.startswith(prefix) and rest.isdigit() else None


def own_checkpoint(checkpoint: Any, storage: Any) -> bool:
    """Whether ``checkpoint`` lies in the trial's own folder (not another trial's: a PBT exploit)."""
    root = str(storage.trial_fs_path).rstrip("/")
    return checkpoint is not None and str(checkpoint.path).rstrip("/").startswith(root + "/")


def latest_checkpoint(tuned: Any, storage: Any) -> tuple[Any, list[str] | None]:
    """(the checkpoint a (re)started trial resumes from, the unregistered folders to drop after its next report)."""
    import pyarrow.fs
    from ray import tune

    fs, root = storage.storage_filesystem, str(storage.trial_fs_path).rstrip("/")
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
    except OSError:
        return tuned, None
    folders = {
        info.path.rstrip("/"): checkpoint_index(info.base_name)
        for info in infos
        if info.type == pyarrow.fs.FileType.Directory and checkpoint_index(info.base_name) is not None
    }
    if folders:  # the next report goes to a new folder, never over one this trial resumes from
        storage.current_checkpoint_index = max(storage.current_checkpoint_index, max(folders.values()))
    if tuned is not None and not own_checkpoint(tuned, storage):
        return tuned, None  # another trial's checkpoint (PBT exploit)
    tuned_path = None if tuned is None else str(tuned.path).rstrip("/")

    def with_orphans(chosen: Any, path: str | None) -> tuple[Any, list[str] | None]:
        # Orphans: folders newer than the one resumed from (persisted, never logged).
        index = -1 if path is None else folders.get(path, -1)
        return chosen, [p for p, i in folders.items() if i > index] or None

    ledger = _read_json(fs, f"{root}/{LEDGER}") or {}
    name = ledger.get("checkpoint_dir_name")
    if not name:
        return with_orphans(tuned, tuned_path)
    # None for a superseded folder (emptied once a newer checkpoint was logged: the ledger's is taken)
    tuned_epoch = -1 if tuned is None else manifest_epoch(tuned.filesystem, tuned_path)
    logged = f"{root}/{name}"
    epoch = manifest_epoch(fs, logged) if logged != tuned_path else None
    if epoch is not None and epoch == ledger.get("epoch") and (tuned_epoch is None or epoch > tuned_epoch):
        return with_orphans(tune.Checkpoint(path=logged, filesystem=fs), logged)
    return with_orphans(tuned, tuned_path)


def drop_orphans(storage: Any, orphans: list[str] | None) -> None:
    """After a resumed trial's first report (a newer checkpoint is persisted), its unregistered folders go."""
    current = f"{str(storage.trial_fs_path).rstrip('/')}/{storage.checkpoint_dir_name}"
    for path in orphans or []:
        if path != current:
            try:
                storage.storage_filesystem.delete_dir(path)
            except (OSError, FileNotFoundError):
                pass


class _KeepLocalResults:
    """Mixin for Ray's logger callbacks: restore a results file from storage only when the driver has
    none, and do not log a replayed final result (its line is in the file already)."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        if result.get(REPLAYED_KEY):
            return
        super().log_trial_result(iteration, trial, result)  # type: ignore[misc]

    def _restore_from_remote(self, file_name: str, trial: Any) -> None:
        local = Path(trial.local_path, file_name)
        if local.is_file() and local.stat().st_size > 0:
            return
        super()._restore_from_remote(file_name, trial)  # type: ignore[misc]


class JsonResults(_KeepLocalResults, JsonLoggerCallback):
    """``result.json``, one line per reported result."""


class CsvResults(_KeepLocalResults, CSVLoggerCallback):
    """``progress.csv``."""


def result_loggers() -> list[Any]:
    """Ray's JSON and CSV result loggers that never replace the driver's newer local copy with the
    storage's older one when a trial restarts (the Tuner pickles them: module-level classes)."""
    return [JsonResults(), CsvResults()]


def supersede(fs: Any, folder: str, successor: str) -> None:
    """Empty a checkpoint folder down to a ``SUPERSEDED`` note naming ``successor``. The note is written
    first: on object storage a folder without objects does not exist, and Tune's restore of a
    checkpoint an older snapshot names must find the folder."""
    import pyarrow.fs

    write_whole(fs, f"{folder}/{SUPERSEDED}", json.dumps({"by": successor}).encode())
    for info in fs.get_file_info(pyarrow.fs.FileSelector(folder, allow_not_found=True)):
        if info.base_name == SUPERSEDED:
            continue
        if info.type == pyarrow.fs.FileType.Directory:
            fs.delete_dir(info.path)
        else:
            fs.delete_file(info.path)


def supersede_older(fs: Any, root: str, name: str, done: set[int]) -> None:
    """Empty every checkpoint folder of the trial at ``root`` older than ``name`` (indices in ``done``
    were emptied before, by this driver)."""
    import pyarrow.fs

    newest = checkpoint_index(name)
    if newest is None:
        return
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        index = checkpoint_index(info.base_name)
        if info.type == pyarrow.fs.FileType.Directory and index is not None and index < newest and index not in done:
            supersede(fs, info.path.rstrip("/"), name)
            done.add(index)


def publish_logged(
    fs: Any, root: str, local: Path, sizes: dict[str, int], ledger: dict[str, Any], done: set[int] | None
) -> None:
    """In order: the results files up to the logged result (their first ``sizes`` bytes: the driver may
    be appending the next line) into the trial's storage folder, then ``LEDGER``, then (``done`` not
    None) the older checkpoint folders emptied. A failed step stops there: the ledger never names a
    checkpoint whose lines storage lacks, and a folder is never emptied before a newer one is named."""
    try:
        for file_name, size in sizes.items():
            with open(local / file_name, "rb") as fh:
                write_whole(fs, f"{root}/{file_name}", fh.read(size))
        write_whole(fs, f"{root}/{LEDGER}", json.dumps(ledger).encode())
        if done is not None:
            supersede_older(fs, root, ledger["checkpoint_dir_name"], done)
    except OSError:
        pass  # a missing ledger costs the retry one epoch; a folder left full costs disk only


class CheckpointLedger(Callback):
    """Driver side: after each logged result with a checkpoint, ``publish_logged`` puts the trial's
    results files into storage, names the checkpoint in ``LEDGER`` and (``retain``) empties the
    trial's older checkpoint folders. It runs in one background thread, in the order of the results,
    so the driver's ``on_trial_result`` only queues it. ``retain=False`` for PBT, whose exploits
    restore other trials' checkpoints as Tune lists them."""

    def __init__(self, retain: bool = True) -> None:
        self.retain = retain
        self._pool: ThreadPoolExecutor | None = None
        self._emptied: dict[str, set[int]] = {}  # trial folder -> checkpoint indices emptied (the thread's)

    def __getstate__(self) -> dict[str, Any]:  # the Tuner pickles its callbacks
        return {"retain": self.retain}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        name = result.get("checkpoint_dir_name")
        if not name:
            return
        fs, root = trial.storage.storage_filesystem, str(trial.storage.trial_fs_path).rstrip("/")
        local = Path(trial.local_path)
        sizes: dict[str, int] = {}
        try:
            same = os.path.samefile(local, root)  # a staging folder that is the storage folder needs no copy
        except OSError:
            same = False  # a remote root, or no folder yet
        if not same:
            for file_name in RESULT_FILES:
                if (local / file_name).is_file():
                    sizes[file_name] = (local / file_name).stat().st_size
        ledger = {"epoch": result.get("epoch"), "checkpoint_dir_name": name}
        done = self._emptied.setdefault(root, set()) if self.retain else None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attrsearch-ledger")
        self._pool.submit(publish_logged, fs, root, local, sizes, ledger, done)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def flush(self) -> None:
        """Wait for every queued ledger write (end of the sweep, and tests)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
