"""Node-loss soak: a sweep on a local multi-node Ray while worker nodes are removed at random.

In miniature, Ray's worker fault-tolerance release test (release/tune_tests/fault_tolerance_tests):
a killer removes nodes at random while trials checkpoint; it passes only if every trial ends once,
at its last epoch, with each epoch reported once. Runs by hand (minutes):

    .venv/bin/python analysis/chaos/kill_nodes.py SWEEP.yaml [--workers 2] [--kills 4] [--every 20 60] [--seed 0]

The cluster is ``ray.cluster_utils.Cluster`` on this machine: a head without GPU and ``--workers``
workers with 2 logical CPUs and 1 logical GPU each (give the sweep ``resources_per_trial: {cpu: 1,
gpu: 0.5}`` so trials run only on workers). Each removal (``allow_graceful=False``, as a lost spot
node) picks a random worker and adds a fresh one. Set ``max_failures`` in the sweep at least to
``--kills``. Prints each removal, then the check, and exits 1 if it fails.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

WORKER = {"num_cpus": 2, "num_gpus": 1}


def killer(
    cluster, kills: int, every: tuple[float, float], rng: random.Random, stop: threading.Event, log: list
) -> None:
    for _ in range(kills):
        if stop.wait(rng.uniform(*every)):
            return
        workers = list(cluster.worker_nodes)
        if not workers:
            continue
        victim = rng.choice(workers)
        cluster.remove_node(victim, allow_graceful=False)
        new = cluster.add_node(**WORKER)
        log.append((time.strftime("%H:%M:%S"), victim.node_id[:8], new.node_id[:8]))
        print(f"[kill_nodes] {log[-1][0]} removed {log[-1][1]}, added {log[-1][2]}", flush=True)


def check(experiment: Path, epochs: int, samples: int) -> list[str]:
    import csv

    problems = []
    with open(experiment / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    if len(rows) != samples or len({r["trial_id"] for r in rows}) != len(rows):
        problems.append(f"{len(rows)} rows for {samples} trials")
    for row in rows:
        lines = [
            json.loads(x) for x in (experiment / row["trial_id"] / "result.json").read_text().splitlines() if x.strip()
        ]
        seen = [int(x["epoch"]) for x in lines]
        if row["status"] != "completed" or seen != list(range(1, epochs + 1)):
            problems.append(f"{row['trial_id']}: status {row['status']}, epochs reported {seen}")
    failures = sum(int(r["failures"] or 0) for r in rows)
    print(f"[kill_nodes] {len(rows)} trials, {failures} failures recovered")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--every", type=float, nargs=2, default=(20.0, 60.0), metavar=("MIN_S", "MAX_S"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from attrsearch.sweep.load import load_sweep
    from attrsearch.sweep.run import run_sweep

    sweep = load_sweep(Path(args.sweep))
    # The killer thread adds nodes: with shutdown_at_exit (the default) each new node installs a
    # SIGTERM handler, which Python allows in the main thread only. `finally` shuts the cluster down.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False)
    for _ in range(args.workers):
        cluster.add_node(**WORKER)
    cluster.wait_for_nodes()
    stop, log = threading.Event(), []
    thread = threading.Thread(
        target=killer, args=(cluster, args.kills, tuple(args.every), random.Random(args.seed), stop, log)
    )
    t0 = time.monotonic()
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        thread.start()
        run_sweep(sweep, address=cluster.address, verbose=0)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        ray.shutdown()
        cluster.shutdown()
    print(f"[kill_nodes] {len(log)} removals in {time.monotonic() - t0:.0f} s")
    problems = check(Path(sweep.experiment_path), sweep.max_epochs, sweep.num_trials())
    if len(log) < args.kills:
        problems.append(f"{len(log)} of {args.kills} removals happened (the sweep ended first: lower --every)")
    for p in problems:
        print(f"[kill_nodes] FAIL {p}")
    print("[kill_nodes] PASS" if not problems else "[kill_nodes] FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
