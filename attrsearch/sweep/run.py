"""``attrsearch sweep FILE [--dry-run] [--resume] [--address ADDR] [--results DIR]``.

Order of a run: validate the sweep file (``load``), run the pre-flight (``preflight.blockers``: storage,
results folder, named files, ImageNet weights, resources, W&B; every blocker reported in one error,
nothing written), build the datasets on the driver (which checks dataset folders), and only then
create the storage folder, all before Ray starts (with ``--address``, Ray is joined before the
datasets are built); then prepare every Explanandum as parallel Ray tasks, run the Tuner (or restore
it with ``--resume``), rewrite the results files and print the leaderboard. ``--dry-run`` prints the
resolved space and the trial count, runs the same pre-flight (exit status 2 for a blocker of the
sweep's inputs; this machine's are printed) and imports neither Ray nor Optuna.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from attrsearch.sweep.dryrun import describe, sample_trials
from attrsearch.sweep.load import Sweep, load_sweep
from attrsearch.sweep.lock import sweep_lock
from attrsearch.sweep.preflight import blockers, check_datasets, check_resources, create_storage, raise_blockers
from attrsearch.sweep.ray_node import apply_driver_env, check_reachable, start_ray
from attrsearch.sweep.storage import Storage, StorageUnavailable, with_retries

STORAGE_STOPPED = 3  # exit status of a sweep stopped because its storage did not answer (storage_retry)


def run_sweep_command(args: argparse.Namespace) -> int:
    sweep = load_sweep(Path(args.file), results=args.results)
    if args.dry_run:
        print(describe(sweep, address=args.address))
        if args.sample:
            print(sample_trials(sweep, args.sample, args.seed))
        found = blockers(sweep, args.resume, args.address)
        machine = [b for b in found if b.machine]
        if machine:
            print(f"pre-flight: this machine cannot run it ({len(machine)}; a run here would stop):")
            print("\n".join(f"  {b.text}" for b in machine))
        raise_blockers(sweep, [b for b in found if not b.machine])
        print(f"dry run: nothing started{'' if found else '; the pre-flight found no blocker'}")
        return 0
    return run_sweep(sweep, resume=args.resume, address=args.address, verbose=getattr(args, "verbose", 0))


def resume_command(sweep: Sweep, address: str | None) -> str:
    """The command that continues this sweep."""
    parts = ["attrsearch", "sweep", str(sweep.path), "--resume"]
    if address:
        parts += ["--address", address]
    if sweep.storage != Storage.at(sweep.config.storage):
        parts += ["--results", sweep.storage.root]
    return " ".join(parts)


def run_sweep(sweep: Sweep, *, resume: bool = False, address: str | None = None, verbose: int = 0) -> int:
    """Run (or ``resume``) a validated sweep; returns the exit status (0 if some trial completed)."""
    apply_driver_env()
    if address:
        check_reachable(address)  # first: an unreachable cluster is one line within seconds
    raise_blockers(sweep, blockers(sweep, resume, address))  # every blocker at once, nothing written
    with sweep_lock(sweep.storage, sweep.name):  # one run per results folder (issue 23, B3)
        return _run_locked(sweep, resume, address, verbose)


def _run_locked(sweep: Sweep, resume: bool, address: str | None, verbose: int) -> int:
    """The sweep once its pre-flight has passed and its lock is held."""
    import ray

    started = time.perf_counter()
    # A cluster is joined before the datasets are built: an address that is not a Ray head fails in seconds.
    own_ray = start_ray(address, verbose) if address else False
    try:
        check_datasets(sweep)
        create_storage(sweep)  # the first write into storage, once every check has passed
    except BaseException:
        if own_ray:
            ray.shutdown()
        raise

    from attrsearch.sweep import outage
    from attrsearch.sweep.explananda import explananda_plan, needed_explananda
    from attrsearch.sweep.results import SWEEP_FILE, write_results, write_text
    from attrsearch.sweep.tuner import build_tuner, restore_tuner

    own_ray = start_ray(None, verbose) or own_ray
    try:
        if address:
            check_resources(sweep, address)
        jobs, _ = needed_explananda(sweep)
        plan = explananda_plan(sweep, address)
        _prepare_explananda(jobs, plan, sweep.config.resources_per_trial)
        if resume:
            tuner = restore_tuner(sweep, plan)
        else:
            tuner = build_tuner(sweep, verbose=verbose, plan=plan)
            write_text(f"{sweep.experiment_path}/{SWEEP_FILE}", yaml.safe_dump(sweep.identity(), sort_keys=False))
        outage.reset()
        storage_down = False
        try:
            tuner.fit()
        except OSError:  # Tune reads the experiment back from storage at the end: not while it is down
            if not outage.stopped():
                raise
            storage_down = True
    finally:
        if own_ray:
            ray.shutdown()
    if outage.stopped():
        return _stopped_for_storage(sweep, outage.stopped(), time.perf_counter() - started, address, storage_down)
    try:
        results = _storage_call(sweep, lambda: write_results(sweep))
    except StorageUnavailable as err:  # every trial ran; only the results files wait for storage
        print(f"sweep {sweep.name}: results files not written: {err}")
        print(f"once storage answers again, write them with  {resume_command(sweep, address)}")
        return STORAGE_STOPPED
    _print_summary(sweep, results, time.perf_counter() - started, address)
    return 0 if results.completed() else 1


def _storage_call(sweep: Sweep, action: Any) -> Any:
    """A driver's storage call, retried as the trials retry theirs (``storage_retry``) on remote storage."""
    if sweep.storage.is_local:
        return action()
    retry = sweep.config.storage_retry
    return with_retries(action, sweep.storage.root, retry.attempts, retry.max_wait_s, say=print)


def _stopped_for_storage(sweep: Sweep, reason: str, seconds: float, address: str | None, down: bool) -> int:
    """The console lines of a sweep stopped because its storage stopped answering (``down``: still, as Tune
    found at its end), with the results files rewritten if storage answers again; exit status 3."""
    from attrsearch.errors import first_line
    from attrsearch.sweep.results import write_results

    print(f"sweep {sweep.name} stopped after {seconds:.0f} s: {reason}")
    try:
        if down:
            raise OSError("Tune could not read the experiment back")
        Storage.at(sweep.experiment_path).exists()  # one look before the results files' many reads
        results = write_results(sweep)
        print(f"results: {', '.join(results.written)} (rewritten from the experiment state)")
    except OSError as err:
        print(f"results files not rewritten (storage unreachable: {first_line(err)}); --resume writes them")
    print(
        "trials keep their last checkpoint in storage; once storage answers again, "
        f"continue with  {resume_command(sweep, address)}"
    )
    return STORAGE_STOPPED


def _prepare_explananda(jobs: list[Any], plan: Any, res: Any) -> None:
    """Prepare every Explanandum as parallel Ray tasks; one console line on how many were ready."""
    from attrsearch.sweep.explananda import prepare_explananda

    t0 = time.perf_counter()
    done = prepare_explananda(jobs, res.cpu, res.gpu, plan)
    if jobs:
        trained = ", ".join(f"{j.label} {s:.0f} s" for j, s in done) or "none"
        ready = "in storage" if plan.shared else "cached"
        print(
            f"explananda: {len(jobs)} ready ({len(jobs) - len(done)} {ready}; trained: {trained}) in {time.perf_counter() - t0:.0f} s"
        )
        if plan.shared:
            print(f"  shared through {plan.cache.location(jobs[0].entry).rsplit('/', 1)[0]}/")


def _print_summary(sweep: Sweep, results: Any, seconds: float, address: str | None) -> None:
    """The sweep's closing console lines: leaderboard, counts, errors, files, how to continue."""
    from attrsearch.sweep.results import format_leaderboard

    print(format_leaderboard(results))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results.counts().items()))
    print(f"sweep {sweep.name}: {len(results.trials)} trials ({counts}) in {seconds:.0f} s")
    for t in [t for t in results.trials if t.status == "error"][:10]:
        print(f"  error {t.trial_id}: {t.error}")
    print(f"results: {sweep.experiment_path}")
    for path in results.written:
        print(f"  {path}")
    if sweep.config.wandb.mode == "offline":
        print(f"W&B offline runs: {sweep.experiment_path}/*/wandb/offline-run-*  (upload: wandb sync <run dirs>)")
    unfinished = [t for t in results.trials if t.status in ("running", "pending", "paused")]
    if unfinished or (len(results.trials) < sweep.num_trials() and sweep.config.time_budget_s is None):
        left = max(len(unfinished), sweep.num_trials() - len(results.completed()))
        print(f"{left} trials left: continue with  {resume_command(sweep, address)}")
