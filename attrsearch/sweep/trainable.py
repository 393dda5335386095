"""One sweep trial: ``attrsearch.evaluate.experiment.run_experiment`` reporting to Ray Tune after every epoch.

A trial builds its experiment config (the sweep's base + its sampled values), restores its last
Tune checkpoint (after a failure, a driver restart or a PBT exploit) into ``run/checkpoints`` and
trains; every epoch's record (the epoch suite on the val split, losses) goes to ``tune.report``
with the checkpoint folder, and the last record (``trial/finished`` = 1) also carries the final
suite. Before that last report the trial writes its mask gallery (``run/gallery.npz``) next to
``run/metrics.json`` and ``run/tables/*.csv`` in its folder of the sweep's storage, for W&B.

Trial folder: ``<storage>/<sweep>/<trial id>/`` (Ray's files, checkpoints, W&B runs) with the
training outputs in ``run/`` (on remote storage they are written locally and uploaded). With
shared Explananda (``TrialSpec.shared_explananda``) a trial first fetches the ones its node lacks.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrsearch.config import ExperimentConfig
from attrsearch.errors import UserError
from attrsearch.sweep.experiment import trial_experiment
from attrsearch.sweep.recovery import REPLAYED_KEY, drop_orphans, latest_checkpoint, own_checkpoint, write_manifest
from attrsearch.sweep.space import trial_values
from attrsearch.sweep.storage import Storage, with_retries
from attrsearch.sweep.watchdog import HUNG_EXIT_CODE, REASON_FILE, ReportWatchdog

GALLERY_FILE = "gallery.npz"
RUN_DIR = "run"
_FAULT_MARKER = ".fault_injected"
_HANG_MARKER = ".hang_injected"
STARTED_KEY, REPORTED_KEY, REPORT_WAIT_KEY = "trial/started_at", "trial/reported_at", "trial/report_wait_s"
NODE_KEY = "trial/node"  # the Ray node id of the trial's last report (trials.csv column ``node``)


@dataclass(frozen=True)
class TrialSpec:
    """What every trial shares (passed once through ``tune.with_parameters``)."""

    base: dict[str, Any]
    seeds: tuple[int, ...] | None
    cpus: float
    gpus: float
    gallery_images: int
    objectives: tuple[str, ...] = ()  # reported first, so Tune's progress table shows them
    fail_once_at_epoch: int | None = None  # test hook (SweepConfig.testing)
    shared_explananda: str | None = None  # ExplanandaPlan.shared: fetch the node's missing Explananda from there
    storage: Storage | None = None  # the sweep's storage (build_trainable sets it); None: a local folder
    report_timeout_s: float | None = None  # SweepConfig.trial_report_timeout_s (watchdog.py)
    hang_once_at_epoch: int | None = None  # test hook (SweepConfig.testing)
    storage_retry: tuple[int, float] = (5, 60.0)  # SweepConfig.storage_retry: (attempts, max_wait_s)


def trial_config(spec: TrialSpec, values: dict[str, Any], source: str) -> ExperimentConfig:
    """The trial's experiment: base + values; torch threads = the trial's CPUs; no progress bars."""
    return trial_experiment(spec.base, values, source, threads=spec.cpus)


def scalar_metrics(record: dict[str, Any], first: tuple[str, ...] = ()) -> dict[str, float]:
    """The numeric entries of a record as floats, ``first`` keys leading (text records are dropped)."""
    out = {}
    lead = [k for k in (*first, "epoch", "val/loss") if k in record]
    for key in lead + [k for k in record if k not in lead]:
        value = record[key]
        if isinstance(value, bool) or isinstance(value, (int, float)):
            out[key] = float(value)
    return out


def cap_gpu_memory(gpus: float) -> None:
    """A fractional-GPU trial caps its own memory share (Ray only schedules, it does not enforce)."""
    if 0.0 < gpus < 1.0:
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(gpus)


def restore_checkpoint(checkpoint: Any, out: Path, cfg: ExperimentConfig) -> bool:
    """Put Tune's checkpoint into ``out/checkpoints``; True when the trial resumes from it.

    Tune's checkpoint wins over whatever ``out/checkpoints`` holds (it matches Tune's iteration
    count). A checkpoint made under another config (PBT exploit) is resumed with this trial's config.
    """
    from attrsearch.train.run import check_output_dir

    if checkpoint is None:
        return False
    target = out / "checkpoints"
    if target.exists():
        shutil.rmtree(target)
    checkpoint.to_directory(str(target))
    try:
        check_output_dir(cfg, out, resume=True)
    except UserError:
        (out / "config.yaml").unlink()
    return True


def best_checkpoint(out: Path, seeds: tuple[int, ...] | None) -> Path:
    folder = out / "checkpoints"
    return folder / f"seed{seeds[0]}" / "best.pt" if seeds and len(seeds) > 1 else folder / "best.pt"


def write_gallery(cfg: ExperimentConfig, checkpoint: Path, target: Path, count: int) -> Path | None:
    """Masks of the first ``count`` val images (fixed across trials) for the W&B gallery.

    Writes ``images`` (N, H, W, 3) uint8, ``masks`` (N, C, H, W) float16 in [0, 1], ``gt``
    (N, C, H, W) uint8 (255 = void), ``labels`` (N, C) and ``class_names``.
    """
    if count <= 0:
        return None
    import numpy as np

    from attrsearch.attribution import explainer_attribution
    from attrsearch.data import build_dataset, collate_samples, denormalize
    from attrsearch.train.checkpoint import load_explainer

    ds = build_dataset(cfg.data, "val", cfg.cache_dir)
    batch = collate_samples([ds[i] for i in range(min(count, len(ds)))])
    _, explainer = load_explainer(checkpoint, "cpu", num_classes=ds.info.num_classes)
    masks = explainer_attribution(explainer)(batch["image"])
    images = (
        (denormalize(batch["image"], ds.info.mean, ds.info.std).permute(0, 2, 3, 1).numpy() * 255)
        .round()
        .astype(np.uint8)
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        target,
        images=images,
        masks=masks.numpy().astype(np.float16),
        gt=batch["masks"].numpy().astype(np.uint8),
        labels=batch["labels"].numpy(),
        class_names=np.array(ds.info.class_names),
    )
    return target


def _upload(out: Path, storage: Any) -> None:
    """Remote storage: copy the run's results (not its checkpoints, Tune keeps those) to the trial folder."""
    import pyarrow.fs

    dest = f"{storage.trial_fs_path}/{RUN_DIR}"
    fs = storage.storage_filesystem
    fs.create_dir(dest, recursive=True)
    for name in ("config.yaml", "metrics.json", "history.json", GALLERY_FILE, "tables"):
        src = out / name
        if src.exists():
            pyarrow.fs.copy_files(str(src), f"{dest}/{name}", destination_filesystem=fs)


def _first_to_hang(folder: Path) -> bool:
    """Test hook: True for the first trial of the sweep (trials share ``folder``) to ask, once."""
    try:
        os.close(os.open(folder / _HANG_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def hung_trial(trial_root: Path, storage: Any, local: bool, ctx: Any, reason: str) -> None:
    """The watchdog's end of a trial that stopped reporting: the reason into ``<trial>/no_report.txt``
    (uploaded to remote storage, best effort for 10 s), a line for the driver's console (``tell_driver``),
    and the worker process ends (Tune records a failed trial)."""
    try:
        (trial_root / REASON_FILE).write_text(reason + "\n")
        if not local:

            def put() -> None:
                with storage.storage_filesystem.open_output_stream(f"{storage.trial_fs_path}/{REASON_FILE}") as fh:
                    fh.write((reason + "\n").encode())

            upload = threading.Thread(target=put, daemon=True)
            upload.start()
            upload.join(timeout=10)
    except Exception as err:  # the process ends either way; the reason is on stderr
        print(f"attrsearch: could not write {REASON_FILE}: {err}", file=sys.stderr)
    finally:
        try:
            from attrsearch.sweep.outage import tell_driver

            tell_driver(ctx.get_experiment_name(), f"trial {ctx.get_trial_id()}: {reason}; its worker is ended")
        finally:
            os._exit(HUNG_EXIT_CODE)


def run_trial(config: dict[str, Any], spec: TrialSpec) -> None:
    """The Tune function trainable of every sweep (watched by a ``ReportWatchdog`` when the sweep sets
    ``trial_report_timeout_s``)."""
    from ray import tune

    ctx = tune.get_context()
    storage = ctx.get_storage()
    local = spec.storage is None or spec.storage.is_local
    trial_root = Path(storage.trial_fs_path) if local else Path.cwd()
    watchdog = None
    if spec.report_timeout_s:  # started (its clock too) when training starts: _run_trial
        watchdog = ReportWatchdog(spec.report_timeout_s, functools.partial(hung_trial, trial_root, storage, local, ctx))
    try:
        _run_trial(config, spec, ctx, storage, local, trial_root, watchdog)
    finally:
        if watchdog is not None:
            watchdog.stop()


def _run_trial(
    config: dict[str, Any],
    spec: TrialSpec,
    ctx: Any,
    storage: Any,
    local: bool,
    trial_root: Path,
    watchdog: ReportWatchdog | None,
) -> None:
    import ray
    from ray import tune

    from attrsearch.evaluate.experiment import run_experiment

    started_at = time.time()  # wall clock (not monotonic): compared across processes by the bookkeeping benchmark
    node = ray.get_runtime_context().get_node_id()  # hostname and IP are one for every node of one machine
    out = trial_root / RUN_DIR

    def remote(action: Any) -> Any:
        """A storage call; on remote storage tried again while storage does not answer (``with_retries``:
        ``StorageUnavailable`` fails the trial and the driver stops the sweep), the watchdog paused."""
        if local:
            return action()
        from attrsearch.sweep.outage import tell_driver

        say = functools.partial(tell_driver, ctx.get_experiment_name())
        with watchdog.paused() if watchdog is not None else nullcontext():
            return with_retries(action, spec.storage.root, *spec.storage_retry, say=say)

    cfg = trial_config(spec, trial_values(config), source=f"trial {ctx.get_trial_id()}")
    cap_gpu_memory(spec.gpus)
    if spec.shared_explananda:  # nodes without a shared disk: this node's copies before training builds them
        from attrsearch.sweep.explananda import fetch_trial_explananda
        from attrsearch.sweep.shared_cache import SharedCache
        from attrsearch.train.runtime import resolve_device

        fetch_trial_explananda(cfg, SharedCache(spec.shared_explananda), resolve_device(cfg.train.device))
    checkpoint, orphans = latest_checkpoint(tune.get_checkpoint(), storage)
    resume = remote(lambda: restore_checkpoint(checkpoint, out, cfg))
    state: dict[str, Any] = {"first_epoch": None, "orphans": orphans, "report_wait_s": 0.0}

    def send(metrics: dict[str, float], checkpoint_dir: Path) -> None:
        """``tune.report`` with the trial's clock: its start, this report's time and the seconds spent
        inside earlier reports (analysis/benchmarks/bench_quickstart_bookkeeping.py reads them)."""
        metrics[STARTED_KEY] = started_at
        metrics[REPORTED_KEY] = time.time()
        metrics[REPORT_WAIT_KEY] = state["report_wait_s"]
        t0 = time.perf_counter()
        index = getattr(storage, "current_checkpoint_index", None)

        def put() -> None:
            try:
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))
            except Exception:
                if index is not None:  # Ray counted the checkpoint before its upload failed: the retry reuses the name
                    storage.current_checkpoint_index = index
                raise

        with watchdog.paused() if watchdog is not None else nullcontext():
            remote(put)
        state["report_wait_s"] += time.perf_counter() - t0

    def finish() -> None:
        if (
            getattr(cfg, "method", None) is None
        ):  # a method trial (method: set) has no Explainer checkpoint to draw masks from
            write_gallery(cfg, best_checkpoint(out, spec.seeds), out / GALLERY_FILE, spec.gallery_images)
        if not local:
            remote(lambda: _upload(out, storage))

    def report(record: dict[str, Any], checkpoint_dir: Path, finished: bool) -> None:
        epoch = int(record.get("epoch", 0))
        if watchdog is not None:
            watchdog.feed(epoch)
        if state["first_epoch"] is None:
            state["first_epoch"] = epoch
        metrics = scalar_metrics(record, spec.objectives)
        metrics["trial/finished"] = float(finished)
        metrics["trial/resumed_from_epoch"] = float(state["first_epoch"] - 1)
        metrics[NODE_KEY] = node
        if finished:
            finish()
        write_manifest(checkpoint_dir, epoch, finished)
        send(metrics, checkpoint_dir)
        drop_orphans(storage, state.pop("orphans", None))
        if spec.fail_once_at_epoch == epoch and not (trial_root / _FAULT_MARKER).exists():
            (trial_root / _FAULT_MARKER).write_text("injected\n")
            raise RuntimeError(f"injected fault after epoch {epoch} (sweep testing hook)")
        if spec.hang_once_at_epoch == epoch and _first_to_hang(trial_root.parent):
            threading.Event().wait()  # a deadlock: only the watchdog ends it

    if watchdog is not None:  # the clock covers building the datasets and the first epoch
        watchdog.start()
    summary = run_experiment(cfg, out, resume=resume, seeds=list(spec.seeds) if spec.seeds else None, report=report)
    if state["first_epoch"] is None:
        # Restored from a final checkpoint: a trial whose end Tune had not recorded (the driver died
        # in between) or a PBT clone of a finished trial. Report its final metrics, do not train again.
        metrics = scalar_metrics(summary["metrics"], spec.objectives)
        metrics["trial/finished"] = 1.0
        # Its own final checkpoint was logged with its final result (the ledger or Tune named it):
        # the results files have that line already. A PBT clone's final result is new to this trial.
        metrics[REPLAYED_KEY] = float(own_checkpoint(checkpoint, storage))
        metrics["trial/resumed_from_epoch"] = metrics.get("train/epochs", math.nan)
        metrics.setdefault("epoch", metrics.get("train/epochs", math.nan))
        metrics[NODE_KEY] = node
        finish()
        write_manifest(out / "checkpoints", int(metrics["epoch"]) if math.isfinite(metrics["epoch"]) else 0, True)
        send(metrics, out / "checkpoints")
        drop_orphans(storage, state.pop("orphans", None))
