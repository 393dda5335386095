"""Tiny sweep files for the sweep tests (imported by the test modules)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

# A few-seconds trial: 32 px, 64 training images, a 1-epoch Explanandum, 2 Explainer epochs.
TINY_BASE: dict[str, Any] = {
    "seed": 0,
    "data": {"dataset": "shapes", "image_size": 32, "shapes": {"num_train": 64, "num_val": 32, "num_test": 32}},
    "explanandum": {"arch": "small_cnn", "recipe": {"epochs": 1, "batch_size": 32}},
    "explainer": {"arch": "explanandum_encoder"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "evaluation": {
        "fast_subsample": 8,
        "class_specific_max_images": 8,
        "faithfulness": {"max_images": 4},
        "transfer": {"panel": [{"arch": "small_cnn", "seed": 1}]},
    },
}


def sweep_dict(name: str = "tiny", **fields: Any) -> dict[str, Any]:
    """A valid tiny sweep; ``fields`` replace top-level entries."""
    data: dict[str, Any] = {
        "name": name,
        "base": copy.deepcopy(TINY_BASE),
        "search": {"loss.lambda_tv": {"loguniform": [0.01, 1.0]}},
        "objective": "segmentation/iou",
        "num_samples": 2,
        "resources_per_trial": {"cpu": 1},
        "wandb": {"mode": "disabled"},
    }
    data.update(fields)
    return data


def write_sweep(folder: Path, data: dict[str, Any], filename: str | None = None) -> Path:
    path = folder / (filename or f"{data.get('name', 'sweep')}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def checkpoint_folders(fs: Any, trial_root: str) -> dict[str, list[str]]:
    """A trial's ``checkpoint_*`` folders in storage (any pyarrow filesystem) with the files of each."""
    import pyarrow.fs

    out: dict[str, list[str]] = {}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(trial_root.rstrip("/"), recursive=True)):
        rel = info.path[len(trial_root.rstrip("/")) + 1 :]
        if rel.startswith("checkpoint_") and info.type == pyarrow.fs.FileType.File:
            folder, _, name = rel.partition("/")
            out.setdefault(folder, []).append(name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def assert_one_full_checkpoint(fs: Any, trial_root: str) -> None:
    """Retention: the last checkpoint is whole, every older one only its superseded note."""
    from attrsearch.sweep.recovery import MANIFEST, SUPERSEDED

    folders = checkpoint_folders(fs, trial_root)
    *older, last = folders
    assert MANIFEST in folders[last] and len(folders[last]) > 1, folders
    assert all(folders[name] == [SUPERSEDED] for name in older), folders


def kill_driver_when(
    sweep_file: Path, address: str, ready: Callable[[], Any], log: Path, snapshot_every_s: float, poll_s: float = 0.5
) -> Any:
    """Run ``attrsearch sweep FILE --address ADDRESS`` as its own process and SIGKILL it as soon as
    ``ready()`` (polled every ``poll_s``) returns something true, which is returned; fails with the
    driver's log if it never does within 300 s. ``snapshot_every_s``: Tune's experiment snapshot
    period (TUNE_GLOBAL_CHECKPOINT_S)."""
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": str(snapshot_every_s)}
    with open(log, "w") as out:
        driver = subprocess.Popen(
            [sys.executable, "-m", "attrsearch.cli", "sweep", str(sweep_file), "--address", address],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline, done = time.monotonic() + 300, False
            while not done and time.monotonic() < deadline and driver.poll() is None:
                time.sleep(poll_s)
                done = ready()
            assert done, log.read_text()[-3000:]
        finally:
            driver.kill()
            driver.wait()
    return done


def finished_and_interrupted(exp: Path) -> tuple[list, list] | None:
    """From the sweep's stored experiment state: (completed trials, trials running at epoch 1 or 2)
    once there are both, else None."""
    from attrsearch.sweep.results import has_experiment_state, load_trials

    if not has_experiment_state(str(exp)):
        return None
    trials = load_trials(str(exp))
    finished = [t for t in trials if t.status == "completed"]
    interrupted = [t for t in trials if t.status == "running" and t.epochs in (1.0, 2.0)]
    return (finished, interrupted) if finished and interrupted else None
