"""W&B logging of a sweep: one group per sweep, one run per trial.

Ray's ``WandbLoggerCallback`` is used rather than ``setup_wandb`` inside the trial: schedulers stop
trials right after a report (ASHA at every rung and at ``max_t``), which kills the trial process
before W&B flushes, leaving empty offline runs (checked with Ray 2.60 / wandb 0.31). The callback's
logging actors live on the driver node and finish every run when Tune ends its trial, whatever
ended it. Each run gets the trial's full experiment config, every epoch's scalars (step = epoch
report), the final metrics (the last values = the run summary) and, for trials that finished
training, a mask gallery (``wandb.Image`` with class masks) and the trial's result tables
(``wandb.Table``; ``tables/class_specific`` is Table 1 of Stalder et al. 2022), read from the trial's folder.

Offline runs (the default) are written to ``<storage>/<sweep>/<trial>/wandb/offline-run-*`` and
need no key; ``wandb sync`` uploads them later. Online mode reads the key from WANDB_API_KEY or
``wandb login``; no key is ever written by attrsearch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray.air.integrations.wandb import WandbLoggerCallback, _QueueItem, _WandbLoggingActor

from attrsearch.config import ExperimentConfig
from attrsearch.sweep.experiment import trial_data
from attrsearch.sweep.space import trial_values
from attrsearch.sweep.storage import Storage
from attrsearch.sweep.trainable import GALLERY_FILE, RUN_DIR

MEDIA_KEY = "__attrsearch_media_dir__"
_NOT_LOGGED = [
    "timestamp",
    "pid",
    "hostname",
    "node_ip",
    "date",
    "checkpoint_dir_name",
    "trial_id",
    "experiment_tag",
    "trial/node",
]
_PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
    ],
    dtype=np.uint8,
)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b": value}`` (W&B config columns)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def label_map(masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(C, H, W) soft masks in [0, 1] -> (H, W) uint8 label map: 1 + argmax class where its mask > threshold, else 0."""
    best = masks.argmax(axis=0)
    return np.where(masks.max(axis=0) > threshold, best + 1, 0).astype(np.uint8)


def gt_label_map(gt: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 ground truth (1 inside, 255 void) -> (H, W) label map (first class wins, void = 0)."""
    inside = gt == 1
    return np.where(inside.any(axis=0), inside.argmax(axis=0) + 1, 0).astype(np.uint8)


def class_strip(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The image (H, W, 3) uint8 followed by every class's soft mask (C, H, W) in [0, 1] as grey: (H, W * (1 + C), 3) uint8.

    Every class, not only the present ones: masks of absent classes should stay dark (class specificity).
    """
    tiles = [image] + [np.repeat((m * 255).round().astype(np.uint8)[..., None], 3, axis=2) for m in masks]
    return np.concatenate(tiles, axis=1)


def media_from_folder(folder: Path) -> dict[str, Any]:
    """W&B objects from a trial's run folder: the mask gallery and every result table."""
    import pandas as pd
    import wandb

    media: dict[str, Any] = {}
    gallery = folder / GALLERY_FILE
    if gallery.is_file():
        with np.load(gallery) as z:
            images, masks, gt, labels = z["images"], z["masks"].astype(np.float32), z["gt"], z["labels"]
            names = [str(n) for n in z["class_names"]]
        class_labels = {0: "none", **{i + 1: n for i, n in enumerate(names)}}
        overlays, strips = [], []
        for i in range(len(images)):
            present = [c for c in range(len(names)) if labels[i, c] > 0.5]
            caption = "labels: " + (", ".join(names[c] for c in present) or "none")
            overlays.append(
                wandb.Image(
                    images[i],
                    masks={
                        "explainer": {"mask_data": label_map(masks[i]), "class_labels": class_labels},
                        "ground_truth": {"mask_data": gt_label_map(gt[i]), "class_labels": class_labels},
                    },
                    caption=caption,
                )
            )
            strips.append(
                wandb.Image(
                    class_strip(images[i], masks[i]), caption=f"{caption}; image, then the mask of {', '.join(names)}"
                )
            )
        media["gallery/masks"] = overlays
        media["gallery/class_masks"] = strips
    for csv in sorted((folder / "tables").glob("*.csv")):
        media[f"tables/{csv.stem}"] = wandb.Table(dataframe=pd.read_csv(csv))
    return media


class _SweepLoggingActor(_WandbLoggingActor):
    """Ray's logging actor, plus: a result carrying ``MEDIA_KEY`` logs the gallery and tables of that folder."""

    def run(self) -> None:
        super().run()
        # wandb.finish() returns before wandb-core has flushed the run file, and Ray kills this actor
        # as soon as run() returns: wait for the service to shut down, or the offline run stays empty.
        self._wandb.teardown()

    def _handle_result(self, result: dict) -> tuple[dict, dict]:
        if MEDIA_KEY in result:  # logged at the step of the final report
            folder = _fetch_run_folder(*result[MEDIA_KEY])
            log = media_from_folder(folder) if folder is not None else {}
            log["training_iteration"] = result["training_iteration"]
            return log, {}
        return super()._handle_result(result)


def _fetch_run_folder(path: str, filesystem: Any) -> Path | None:
    """The trial's ``run`` folder on this node: itself on local storage, else downloaded (in the logging actor)."""
    if filesystem is None:
        return Path(path)
    import pyarrow.fs

    target = Path(tempfile.mkdtemp(prefix="attrsearch-media-"))
    try:
        pyarrow.fs.copy_files(path, str(target), source_filesystem=filesystem)
    except (OSError, FileNotFoundError):
        return None
    return target


# How long the end of a sweep waits for offline runs to close (each writes its summary on close).
OFFLINE_FINISH_TIMEOUT_S = 10


class SweepWandbCallback(WandbLoggerCallback):
    """``WandbLoggerCallback`` with the trial's experiment config, run folders in the results, and media."""

    _logger_actor_cls = _SweepLoggingActor

    def __init__(
        self,
        base: dict[str, Any],
        project: str,
        group: str,
        mode: str,
        entity: str | None = None,
        tags: list[str] | None = None,
        storage: Storage | None = None,
    ):
        kwargs: dict[str, Any] = {"mode": mode, "resume": "allow", "tags": list(tags or [])}
        if entity:
            kwargs["entity"] = entity
        super().__init__(project=project, group=group, excludes=list(_NOT_LOGGED), **kwargs)
        self.base = base
        self.mode = mode
        self.storage = storage  # the sweep's storage; None: a local folder

    def __del__(self) -> None:
        try:
            super().__del__()
        except Exception:  # noqa: BLE001 - at interpreter exit Ray's module globals are already gone
            pass

    def setup(self, *args: Any, **kwargs: Any) -> None:
        if self.mode == "online":  # Ray's setup checks for a key (WANDB_API_KEY or `wandb login`)
            super().setup(*args, **kwargs)

    def _start_logging_actor(self, trial: Any, exclude_results: list[str], **wandb_init_kwargs: Any) -> None:
        # Ray's callback copies WANDB_API_KEY into the logging actor's runtime_env, and Ray writes
        # runtime environments into its session logs in plain text. The actor runs on this node and
        # reads the key from the environment it inherits (or from `wandb login`), so none is passed.
        # No restarts (Ray's callback asks for max_restarts=-1): the actor's constructor arguments (the
        # run's whole config) live in the object store, and for such an actor Ray core logs an
        # error-level line on every healthy run ("has constructor arguments in the object store and
        # max_restarts > 0", Ray #53727) that users read as a failure. A logging actor that dies loses
        # the rest of that trial's W&B log; the trial itself and the results folder are unaffected.
        if not self._remote_logger_class:
            import ray
            from ray.air.integrations.wandb import _force_on_current_node

            self._remote_logger_class = ray.remote(num_cpus=0, **_force_on_current_node(), max_restarts=0)(
                self._logger_actor_cls
            )
        super()._start_logging_actor(trial, exclude_results, **wandb_init_kwargs)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """End every run still open (an interrupted sweep ends trials without ``log_trial_end``), then
        wait for them: ``wandb.finish`` of an offline run takes seconds, an online upload longer."""
        for trial in list(self._trial_queues):
            self._signal_logging_actor_stop(trial=trial)
        timeout = self._upload_timeout if self.mode == "online" else OFFLINE_FINISH_TIMEOUT_S
        self._cleanup_logging_actors(timeout=timeout, kill_on_timeout=True)

    def log_trial_start(self, trial: Any) -> None:
        values = trial_values(trial.config)
        data = trial_data(self.base, values)
        try:  # the whole experiment, defaults included
            data = ExperimentConfig.model_validate(data).model_dump(mode="json")
        except ValueError:
            pass  # an invalid combination: the trial fails and says why; log what it was given
        config = flatten(data)
        config.update({f"sweep/{k}": v for k, v in values.items()})
        run_dir = self._run_dir(trial)
        kwargs = dict(
            id=trial.trial_id,
            name=str(trial),
            reinit=True,
            allow_val_change=True,
            group=self.group,
            project=self.project,
            config=config,
            dir=str(run_dir),
        )
        kwargs.update(self.kwargs)
        exclude = self._exclude_results + self.excludes + ["config"]
        self._start_logging_actor(trial, exclude, **kwargs)

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        """Hand the result to the trial's logging actor without waiting for it.

        Ray's callback calls ``Queue.put``, a blocking round trip to the queue actor per result (the
        first one waits for that actor's process to start): most of the ~0.94 s per result the driver
        spent in ``on_trial_result``. Actor calls from one caller run in order, so a fire-and-forget
        ``put`` keeps the order. The media (gallery, tables) are read by the logging actor at the
        trial's end, from the trial's folder (downloaded by the actor on remote storage), never here.
        """
        if trial not in self._trial_logging_actors:
            self.log_trial_start(trial)
        from ray.air.integrations.wandb import _clean_log

        cleaned = _clean_log(result, video_kwargs=self.video_kwargs, image_kwargs=self.image_kwargs)
        queue = self._trial_queues[trial]
        queue.actor.put_nowait.remote((_QueueItem.RESULT, cleaned))
        if result.get("trial/finished") == 1.0:
            source = {MEDIA_KEY: self._media_source(trial), "training_iteration": result.get("training_iteration")}
            queue.actor.put_nowait.remote((_QueueItem.RESULT, source))

    def _local(self, trial: Any) -> bool:
        return self.storage is None or self.storage.is_local

    def _run_dir(self, trial: Any) -> Path:
        """Where the offline run goes: the trial's results folder (local storage) or Ray's synced staging dir."""
        folder = Path(trial.storage.trial_fs_path if self._local(trial) else trial.local_path)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _media_source(self, trial: Any) -> tuple[str, Any]:
        """(path, filesystem) of the trial's ``run`` folder; filesystem None for local storage."""
        path = f"{trial.storage.trial_fs_path}/{RUN_DIR}"
        return (path, None) if self._local(trial) else (path, trial.storage.storage_filesystem)
