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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

MANIFEST = "attrsearch_checkpoint.json"  # in every reported checkpoint folder
LEDGER = "attrsearch_logged.json"  # in the trial's folder, written by the driver


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
    if tuned is not None and not str(tuned.path).rstrip("/").startswith(root + "/"):
        return tuned, None  # another trial's checkpoint (PBT exploit)
    tuned_path = None if tuned is None else str(tuned.path).rstrip("/")
    tuned_index = -1 if tuned_path is None else folders.get(tuned_path, -1)
    orphans = [path for path, index in folders.items() if index > tuned_index]
    ledger = _read_json(fs, f"{root}/{LEDGER}") or {}
    name = ledger.get("checkpoint_dir_name")
    if not name:
        return tuned, orphans or None
    tuned_epoch = -1 if tuned is None else manifest_epoch(tuned.filesystem, tuned_path)
    logged = f"{root}/{name}"
    epoch = manifest_epoch(fs, logged) if logged != tuned_path else None
    if epoch is not None and epoch == ledger.get("epoch") and (tuned_epoch is None or epoch > tuned_epoch):
        return tune.Checkpoint(path=logged, filesystem=fs), orphans or None
    return tuned, orphans or None


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
    """Mixin for Ray's logger callbacks: restore a results file from storage only when the driver has none."""

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


class CheckpointLedger(Callback):
    """Driver side: after each logged result with a checkpoint, ``LEDGER`` names it in the trial's folder."""

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        name = result.get("checkpoint_dir_name")
        if not name:
            return
        fs, root = trial.storage.storage_filesystem, str(trial.storage.trial_fs_path).rstrip("/")
        text = json.dumps({"epoch": result.get("epoch"), "checkpoint_dir_name": name}).encode()
        try:
            import pyarrow.fs

            if isinstance(fs, pyarrow.fs.LocalFileSystem):  # whole or not at all
                tmp = Path(root) / f".{LEDGER}.tmp"
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(text)
                tmp.replace(Path(root) / LEDGER)
            else:  # one PUT: an object appears whole
                with fs.open_output_stream(f"{root}/{LEDGER}") as fh:
                    fh.write(text)
        except OSError:
            pass  # a missing ledger only costs the retry one epoch
