"""Driver-side cost of a sweep: time in ``on_trial_result`` per result, and a 1,000-trial sweep's bookkeeping.

    .venv/bin/python analysis/benchmarks/bench_sweep_overhead.py [--trials 1000] [--per-result-trials 4] [--epochs 10]

1. Per-result driver time with the sweep's callbacks (JSON/CSV loggers, checkpoint ledger, W&B offline),
   "before": Ray's ``WandbLoggerCallback.log_trial_result`` (a blocking ``Queue.put`` round trip to the
   queue actor per result, the first one waiting for that actor to start, and the remote run folder
   fetched on the driver at the trial's end); "after": ``SweepWandbCallback`` as shipped (fire-and-forget
   put, media read by the logging actor). A timing wrapper around every callback's ``on_trial_result``.
2. ``--trials`` trials of a no-training trainable (2 reports each, with a checkpoint and its manifest, as
   the real trainable) on a local Ray (4 logical CPUs), W&B disabled, with the sweep's driver settings,
   callbacks and checkpoint config: trials reuse their worker processes, Tune lists several checkpoints
   per trial and snapshots its experiment state periodically, and the checkpoint ledger keeps one
   checkpoint per trial. ``--snapshot-per-checkpoint``: ``CheckpointConfig(num_to_keep=1)`` as sweeps
   had it before, where Tune snapshots the whole experiment state (every trial) after each trial
   checkpoint, so the time per trial grows with the trial count. ``--new-actor-per-trial``: a new
   process per trial. Prints wall time and driver RSS per block of 100 finished trials (flat = no
   per-trial growth), the experiment-state file's size, whether trials.csv was written during the
   sweep (it is written once, at the end) and the checkpoint folders left in storage.
Prints the figures; analysis/benchmarks/NOTES.md keeps the ones measured here.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def no_training(config: dict[str, Any]) -> None:
    from ray import tune

    from attrsearch.sweep.recovery import write_manifest

    folder = Path(tempfile.mkdtemp(prefix="bench-ckpt-"))
    for epoch in range(1, int(config["epochs"]) + 1):
        (folder / "last.pt").write_bytes(b"x" * 1024)
        write_manifest(folder, epoch, epoch == config["epochs"])
        metrics = {
            "epoch": float(epoch),
            "segmentation/iou": config["x"] * epoch,
            "trial/finished": float(epoch == config["epochs"]),
        }
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_callbacks(callbacks: list[Any], sink: list[float], firsts: list[float] | None = None) -> list[Any]:
    """Time the callbacks' ``on_trial_result`` (run in list order); ``sink`` gets the seconds per result,
    ``firsts`` those of each trial's first result."""
    firsts = [] if firsts is None else firsts
    from ray import tune

    class Timer(tune.Callback):
        def __init__(self) -> None:
            self.t0 = 0.0

        def on_trial_result(self, *args: Any, **kwargs: Any) -> None:
            dt = time.perf_counter() - self.t0
            sink.append(dt)
            if kwargs.get("result", {}).get("training_iteration") == 1:
                firsts.append(dt)

    class Start(tune.Callback):
        def __init__(self, timer: Any) -> None:
            self.timer = timer

        def on_trial_result(self, *args: Any, **kwargs: Any) -> None:
            self.timer.t0 = time.perf_counter()

    timer = Timer()
    return [Start(timer), *callbacks, timer]


def sweep_object(storage: str, name: str, wandb_mode: str) -> Any:
    """A tiny Sweep (the callbacks only read its base, names and W&B settings)."""
    import sys

    import yaml

    from attrsearch.sweep.load import load_sweep

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.support
    from tests.support.sweep_files import sweep_dict, write_sweep

    folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    path = write_sweep(folder, sweep_dict(name=name, storage=storage, wandb={"mode": wandb_mode}))
    yaml.safe_load(path.read_text())
    return load_sweep(path)


def per_result(trials: int, epochs: int, storage: str, before: bool) -> tuple[list[float], list[float]]:
    from ray import tune

    from attrsearch.sweep import wandb_log
    from attrsearch.sweep.tuner import build_callbacks, checkpoint_config

    sweep = sweep_object(storage, "before" if before else "after", "offline")
    sink: list[float] = []
    firsts: list[float] = []
    original = wandb_log.SweepWandbCallback.log_trial_result
    if before:
        from ray.air.integrations.wandb import WandbLoggerCallback

        def blocking(self, iteration, trial, result):  # the shipped code before this change
            WandbLoggerCallback.log_trial_result(self, iteration, trial, result)
            if result.get("trial/finished") == 1.0:
                path, fs = self._media_source(trial)
                self._trial_queues[trial].put(
                    (
                        wandb_log._QueueItem.RESULT,
                        {wandb_log.MEDIA_KEY: (path, fs), "training_iteration": result.get("training_iteration")},
                    )
                )

        wandb_log.SweepWandbCallback.log_trial_result = blocking
    try:
        tuner = tune.Tuner(
            tune.with_resources(no_training, {"cpu": 1}),
            param_space={"x": tune.uniform(0, 1), "epochs": epochs},
            tune_config=tune.TuneConfig(num_samples=trials, metric="segmentation/iou", mode="max"),
            run_config=tune.RunConfig(
                name=sweep.name,
                storage_path=storage,
                verbose=0,
                callbacks=timed_callbacks(build_callbacks(sweep), sink, firsts),
                checkpoint_config=checkpoint_config(sweep),
            ),
        )
        tuner.fit()
    finally:
        wandb_log.SweepWandbCallback.log_trial_result = original
    return sink, firsts


def checkpoint_folders(exp: Path) -> tuple[int, int, int]:
    """(whole checkpoint folders, superseded notes, bytes under checkpoint folders) in the experiment's storage."""
    from attrsearch.sweep.recovery import SUPERSEDED

    whole = notes = size = 0
    for folder in exp.glob("*/checkpoint_*"):
        files = [f for f in folder.rglob("*") if f.is_file()]
        size += sum(f.stat().st_size for f in files)
        if [f.name for f in files] == [SUPERSEDED]:
            notes += 1
        else:
            whole += 1
    return whole, notes, size


def thousand(trials: int, storage: str, reuse_actors: bool = True, snapshot_per_checkpoint: bool = False) -> None:
    from ray import tune

    from attrsearch.sweep.tuner import build_callbacks, checkpoint_config

    sweep = sweep_object(storage, "thousand", "disabled")
    checkpoints = tune.CheckpointConfig(num_to_keep=1) if snapshot_per_checkpoint else checkpoint_config(sweep)
    exp = Path(storage) / "thousand"
    marks: list[tuple[int, float, float]] = []
    t0 = time.perf_counter()

    class Blocks(tune.Callback):
        def __init__(self) -> None:
            self.done = 0

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            if self.done % 100 == 0:
                marks.append((self.done, time.perf_counter() - t0, rss_mb()))

    sink: list[float] = []
    tuner = tune.Tuner(
        tune.with_resources(no_training, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1), "epochs": 2},
        tune_config=tune.TuneConfig(
            num_samples=trials,
            metric="segmentation/iou",
            mode="max",
            trial_dirname_creator=lambda t: t.trial_id,
            reuse_actors=reuse_actors,  # as a sweep file's ``reuse_actors`` (default true)
        ),
        run_config=tune.RunConfig(
            name="thousand",
            storage_path=storage,
            verbose=0,
            callbacks=[*timed_callbacks(build_callbacks(sweep), sink), Blocks()],
            checkpoint_config=checkpoints,
        ),
    )
    tuner.fit()
    wall = time.perf_counter() - t0
    per_trial = 1000 * wall / trials
    print(
        f"\n{trials} no-training trials (2 reports each, 4 logical CPUs, reuse_actors {reuse_actors}, "
        f"Tune's num_to_keep {checkpoints.num_to_keep}): "
        f"{wall:.0f} s, {per_trial:.0f} ms per trial"
    )
    print("  finished  elapsed_s  s_per_trial_in_block  driver_rss_MB")
    previous = (0, 0.0)
    for done, elapsed, rss in marks:
        print(f"  {done:8d}  {elapsed:9.1f}  {(elapsed - previous[1]) / (done - previous[0]):20.3f}  {rss:13.0f}")
        previous = (done, elapsed)
    state = sorted(exp.glob("experiment_state-*.json"))
    size = state[-1].stat().st_size / 1e6 if state else float("nan")
    p99 = sorted(sink)[int(0.99 * len(sink))]
    print(f"  on_trial_result per result: median {1000 * statistics.median(sink):.1f} ms, p99 {1000 * p99:.1f} ms")
    written = (exp / "trials.csv").exists()
    print(f"  experiment state (Ray's, rewritten per snapshot): {size:.2f} MB; trials.csv mid-sweep: {written}")
    whole, notes, nbytes = checkpoint_folders(exp)
    print(f"  checkpoint folders left: {whole} whole, {notes} superseded notes, {nbytes / 1e6:.2f} MB in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--per-result-trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-thousand", action="store_true")
    parser.add_argument(
        "--new-actor-per-trial", action="store_true", help="the 1,000 trials with reuse_actors false (Tune's default)"
    )
    parser.add_argument(
        "--snapshot-per-checkpoint",
        action="store_true",
        help="the 1,000 trials with CheckpointConfig(num_to_keep=1), as sweeps had it: a forced snapshot per checkpoint",
    )
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    from attrsearch.sweep.ray_node import apply_driver_env

    apply_driver_env()  # the sweep driver's Ray/Tune settings
    import ray

    os.environ.pop("RAY_ADDRESS", None)  # a local Ray of its own, whatever the shell points at
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    storage = tempfile.mkdtemp(prefix="bench-sweep-overhead-")
    for label, before in (("before", True), ("after", False)):
        times, first = per_result(args.per_result_trials, args.epochs, storage, before)
        print(
            f"per-result driver time in on_trial_result, {label}: median {1000 * statistics.median(times):.1f} ms, "
            f"mean {1000 * statistics.mean(times):.1f} ms, max {1000 * max(times):.1f} ms "
            f"(first result of a trial: mean {1000 * statistics.mean(first or [0.0]):.1f} ms; {len(times)} results)"
        )
    if not args.skip_thousand:
        thousand(
            args.trials,
            storage,
            reuse_actors=not args.new_actor_per_trial,
            snapshot_per_checkpoint=args.snapshot_per_checkpoint,
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
