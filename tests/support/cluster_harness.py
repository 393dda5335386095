"""A multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``) running one sweep; run as a script.

The session's shared Ray (conftest) is one node; a test that needs several nodes, or removes
them, runs this script in a subprocess, so the two Rays never meet in one process:

    python tests/support/cluster_harness.py SPEC.json

SPEC: ``sweep`` (a sweep file), ``head`` and ``workers`` (``Cluster.add_node`` arguments, logical
CPUs/GPUs), ``mode``: ``cli`` submits ``attrsearch sweep FILE --address ADDR`` as its own process;
``driver`` runs the sweep in this process with a node killer added to Tune's callbacks:
``kill_at_epochs`` lists, in order, the epochs whose report removes the node that sent it
(``allow_graceful=False``, as a lost spot node) and adds a fresh worker with the same resources;
``extra_nodes`` adds workers (one per entry) right after the first removal instead.
A node's arguments may hold ``cache``: that node's ``ATTRSEARCH_CACHE`` (its own cache folder, as a
node without a shared disk has), set in this process's environment right before the node starts
(its raylet and workers inherit it); ``driver_cache`` is the driver's.
Writes ``result`` (JSON): worker node ids, removals done, the driver's exit status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class NodeKiller:
    """A Tune callback (built lazily: ray.tune is imported in ``main``) that removes nodes at given reports.

    It runs after the JSON/CSV loggers, so the report is logged before the node goes: the window in
    which Tune has logged a result but not yet registered its checkpoint (the save call follows).
    """

    def __init__(self, cluster: Any, worker_args: dict[str, Any], epochs: list[float], log: list[dict[str, Any]]):
        self.cluster, self.worker_args, self.epochs, self.log = cluster, worker_args, list(epochs), log

    def __getstate__(self) -> dict[str, Any]:  # the Tuner pickles its callbacks (tuner.pkl); a Cluster holds locks
        return {"worker_args": self.worker_args, "epochs": [], "log": [], "cluster": None}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not self.epochs or float(result.get("epoch", -1)) != self.epochs[0]:
            return
        node_id = result.get("trial/node")
        victims = [n for n in self.cluster.worker_nodes if n.node_id == node_id]
        if not victims:
            return
        self.epochs.pop(0)
        t0 = time.monotonic()
        self.cluster.remove_node(victims[0], allow_graceful=False)
        new = self.cluster.add_node(**node_args(self.worker_args))
        self.log.append(
            {
                "trial": trial.trial_id,
                "epoch": result["epoch"],
                "removed": node_id,
                "added": new.node_id,
                "seconds": round(time.monotonic() - t0, 2),
            }
        )


def node_args(args: dict[str, Any]) -> dict[str, Any]:
    """``Cluster.add_node`` arguments; a ``cache`` entry becomes ``ATTRSEARCH_CACHE`` for the node about to start."""
    args = dict(args)
    cache = args.pop("cache", None)
    if cache is not None:
        os.environ["ATTRSEARCH_CACHE"] = str(cache)
    return args


def main(spec_path: str) -> int:
    import ray
    from ray.cluster_utils import Cluster

    spec = json.loads(Path(spec_path).read_text())
    cluster = Cluster(initialize_head=True, head_node_args=node_args(spec.get("head", {"num_cpus": 1})))
    workers = [cluster.add_node(**node_args(args)) for args in spec.get("workers", [])]
    cluster.wait_for_nodes()
    if spec.get("driver_cache"):
        os.environ["ATTRSEARCH_CACHE"] = spec["driver_cache"]
    out: dict[str, Any] = {"address": cluster.address, "workers": [w.node_id for w in workers], "removals": []}
    try:
        if spec.get("mode", "cli") == "cli":
            env = {**os.environ, "RAY_ADDRESS": ""}
            done = subprocess.run(
                [sys.executable, "-m", "attrsearch.cli", "sweep", spec["sweep"], "--address", cluster.address],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=spec.get("timeout", 400),
            )
            out["rc"], out["log"] = done.returncode, (done.stdout + done.stderr)[-4000:]
        else:
            from ray import tune

            from attrsearch.sweep import tuner
            from attrsearch.sweep.load import load_sweep
            from attrsearch.sweep.run import run_sweep

            killer = type("NodeKillerCallback", (NodeKiller, tune.Callback), {})(
                cluster, spec["workers"][0], spec.get("kill_at_epochs", []), out["removals"]
            )
            original = tuner.build_callbacks
            tuner.build_callbacks = lambda sweep, **kwargs: [*original(sweep, **kwargs), killer]
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                out["rc"] = run_sweep(load_sweep(Path(spec["sweep"])), address=cluster.address, verbose=0)
            finally:
                ray.shutdown()
    finally:
        Path(spec["result"]).write_text(json.dumps(out, indent=1))
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
