"""cluster.yaml on this machine: Ray's autoscaler with the fake multinode provider, and a sweep submitted to it.

    .venv/bin/python analysis/chaos/fake_cluster.py derive [OUT.yaml]          # the derived config only
    .venv/bin/python analysis/chaos/fake_cluster.py smoke [--tiny] [SWEEP.yaml] # start, sweep, scale down, stop

``derive`` is the one place the local config comes from: cluster.yaml with its provider swapped for
``fake_multinode``, the head type renamed to the one that provider expects, docker, file mounts and
cloud node configs dropped, everything else (node types and resources, max_workers, setup and start
commands) kept. The fake provider starts worker raylets on this machine itself (node updaters off), so it runs none of
the setup or start commands; they are kept so the derived file states the same cluster (what remains
unverified without a cloud: the commands, the image, the AMI, instance types and zones).

``smoke``: ``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=derived.yaml`` with its own
``--temp-dir`` and port (a ``ray start`` cluster in /tmp/ray would be joined by every ``ray.init()`` on
this shared machine), the sweep (default sweeps/quickstart.yaml; ``--tiny``: a smaller variant of it,
see ``sweep_variant``) submitted as ``attrsearch sweep FILE --address HEAD`` from a shell, the
autoscaler's scale events read from its monitor.log and this cluster's raylets counted every 2 s
(scale-up for pending trials, scale-down once idle), then the cluster's own processes are ended by
pid (never ``ray stop``, which ends every Ray on the machine). Prints the wall times and exits 0 only
when every trial finished, ran on an autoscaled worker, and every worker was removed as idle.
The head gets 1 logical CPU and no GPU, so trials asking for a GPU need workers.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "sweeps" / "quickstart.yaml"
FAKE_HEAD_TYPE = "ray.head.default"  # ray.autoscaler._private.fake_multi_node.node_provider.FAKE_HEAD_NODE_TYPE
FAKE_HEAD_ID = "f" * 51 + "00000"  # ... FAKE_HEAD_NODE_ID: the head's node id under RAY_FAKE_CLUSTER=1
KEPT = (
    "cluster_name", "max_workers", "upscaling_speed", "auth", "initialization_commands", "setup_commands",
    "cluster_synced_files", "file_mounts_sync_continuously", "rsync_exclude", "rsync_filter",
    "head_setup_commands", "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands",
)  # fmt: skip


def derive(
    cluster: dict[str, Any], gcs_address: str | None = None, idle_timeout_minutes: float = 0.5
) -> dict[str, Any]:
    """The fake-provider twin of ``cluster`` (a parsed cluster.yaml)."""
    out = {key: copy.deepcopy(cluster[key]) for key in KEPT if key in cluster}
    out["idle_timeout_minutes"] = idle_timeout_minutes
    # The fake provider starts raylets in-process: no node updater (it would run the setup commands over
    # SSH and mark the node "launch failed"), as on KubeRay; the commands stay in the file, not run.
    # use_node_id_as_ip: every fake node has this machine's IP, and the fake provider names a node by its
    # node id (FakeMultiNodeProvider.internal_ip returns the id). Without it the monitor keys LoadMetrics
    # by the shared real IP (monitor.py update_load_metrics), StandardAutoscaler._update prunes that IP
    # every round as unknown to the provider ("Removed 1 stale ip mappings"), and
    # terminate_nodes_to_enforce_config_constraints never finds a worker's id in last_used: idle workers
    # are never terminated. Ray's own fake_multi_node/example.yaml sets it too.
    out["provider"] = {
        "type": "fake_multinode",
        "use_node_id_as_ip": True,
        "launch_multiple": True,
        "disable_node_updaters": True,
        "disable_launch_config_check": True,
    }
    if gcs_address:
        out["provider"]["gcs_address"] = gcs_address
    head = cluster["head_node_type"]
    types = {}
    for name, spec in cluster["available_node_types"].items():
        entry = {"resources": dict(spec.get("resources", {})), "node_config": {}}
        if name == head:
            entry.update(min_workers=0, max_workers=0, resources={"CPU": 1, "GPU": 0})
            types[FAKE_HEAD_TYPE] = entry
        else:
            entry.update(min_workers=spec.get("min_workers", 0), max_workers=spec.get("max_workers", 1))
            types[name] = entry
    out["available_node_types"] = types
    out["head_node_type"] = FAKE_HEAD_TYPE
    out["file_mounts"] = {}
    return out


def load_cluster_yaml() -> dict[str, Any]:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def sweep_variant(sweep: dict[str, Any], storage: str, tiny: bool = False) -> dict[str, Any]:
    """The sweep as submitted to the fake cluster: results under ``storage`` and one GPU per trial.

    cluster.yaml puts the trials on its GPU workers ("each sweep asks for fractional GPUs per trial");
    the quickstart asks for a CPU only, which cluster.yaml's 8-CPU head would serve without ever
    scaling, so the trials here ask for 1 GPU each: one worker per running trial (the fake workers'
    GPU is a logical resource; training runs on the CPU). ``tiny``: the same search, scheduler and
    objective on 64 images of 32 px, 1-epoch Explananda, 2-epoch trials, 4 samples and W&B off, so that
    the whole smoke fits a test (the full quickstart trains for minutes on a 2-core machine).
    """
    out = copy.deepcopy(sweep)
    out["storage"] = storage
    out["resources_per_trial"] = {**out.get("resources_per_trial", {}), "gpu": 1}
    if tiny:
        out["name"] = f"{out['name']}_tiny"
        base = out["base"]
        base["data"].update(image_size=32, shapes={"num_train": 64, "num_val": 32, "num_test": 32})
        base["explanandum"]["recipe"].update(epochs=1)
        base["train"].update(epochs=2)
        base["evaluation"] = {
            "fast_subsample": 8,
            "class_specific_max_images": 8,
            "faithfulness": {"max_images": 4},
            "transfer": {"panel": [{**p, "epochs": 1} for p in base["evaluation"]["transfer"]["panel"]]},
        }
        out["num_samples"] = 4
        out["scheduler"] = {**out["scheduler"], "grace_period": 1}
        out["wandb"] = {"mode": "disabled"}
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_procs(marker: str) -> dict[int, str]:
    """pid -> name of the processes whose command line names ``marker`` (this cluster's temp dir), this
    process excluded: the head's and every worker node's Ray processes, and the sweep driver."""
    procs = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                procs[int(proc.name)] = (proc / "comm").read_text().strip()
        except OSError:
            continue
    return procs


def _raylets(marker: str) -> int:
    return sum(1 for name in _own_procs(marker).values() if name == "raylet")


def _end(marker: str, grace_s: float = 10.0) -> tuple[list[str], int]:
    """SIGTERM this cluster's processes, SIGKILL what is left after ``grace_s``; returns the names of
    those killed and how many survive even that."""
    for pid in _own_procs(marker):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace_s
    while _own_procs(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    killed = _own_procs(marker)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + 5.0
    while _own_procs(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return sorted(killed.values()), len(_own_procs(marker))


def scaling_events(temp: str) -> list[tuple[float, int, str, str]]:
    """The autoscaler's own scale events from its monitor log: (epoch s, +added / -removed workers, their
    type, why removed)."""
    events = []
    for log in sorted(
        {path.resolve() for path in Path(temp).glob("session_*/logs/monitor.log")}
    ):  # not session_latest twice
        for line in log.read_text(errors="replace").splitlines():
            m = re.search(
                r"^(\S+ \S+).*:event_summary:(Adding|Removing) (\d+) nodes?\S* of type (\S+)( \((.*)\))?", line
            )
            if m and m.group(4).rstrip(".") != FAKE_HEAD_TYPE:
                stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
                sign = 1 if m.group(2) == "Adding" else -1
                events.append((stamp, sign * int(m.group(3)), m.group(4).rstrip("."), m.group(6) or ""))
    return events


def _trials(results: Path) -> list[dict[str, str]]:
    files = list(results.glob("*/trials.csv"))
    if not files:
        return []
    with files[0].open(newline="") as f:
        return list(csv.DictReader(f))


def smoke(sweep_file: str | Path = QUICKSTART, tiny: bool = False, sweep_timeout_s: float = 1800.0) -> dict[str, Any]:
    """Start the fake cluster, run the sweep on it, wait for the idle workers to go; the figures, with
    ``ok``. Every process of the cluster is ended before it returns."""
    import ray._private.services as services
    from ray.autoscaler._private.util import validate_config

    temp = tempfile.mkdtemp(prefix="attrsearch-fakeray-")  # short: Ray's socket paths live under it
    port = _free_port()
    address = f"{services.get_node_ip_address()}:{port}"
    # Ray's prepare_config cannot fill defaults for this provider (its example.yaml is not in the wheel):
    # derive() keeps every key the autoscaler reads, and the schema check still runs.
    config = derive(load_cluster_yaml(), gcs_address=address)
    validate_config(config)
    config_path = Path(temp) / "fake_cluster.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    sweep = sweep_variant(yaml.safe_load(Path(sweep_file).read_text()), str(Path(temp) / "results"), tiny)
    if isinstance(sweep["base"], str):  # a base path is relative to the original sweep file
        sweep["base"] = str((Path(sweep_file).parent / sweep["base"]).resolve())
    sweep_path = Path(temp) / f"{sweep['name']}.yaml"
    sweep_path.write_text(yaml.safe_dump(sweep, sort_keys=False))

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(
        RAY_FAKE_CLUSTER="1",
        RAY_AUTH_MODE=env.get("RAY_AUTH_MODE", "token"),
        # Autoscaler v1 (StandardAutoscaler), as `ray up` runs it; v2 would need the head's instance id
        # and launch_multiple wired as in ray.cluster_utils.AutoscalingCluster(autoscaler_v2=True).
        RAY_enable_autoscaler_v2="0",
        # The Explananda are trained on the cluster's workers, not taken from this machine's cache.
        ATTRSEARCH_CACHE=str(Path(temp) / "cache"),
    )
    bin_dir = Path(sys.executable).parent
    figures: dict[str, Any] = {"temp_dir": temp, "sweep": sweep["name"], "ok": False}
    previous_term = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    t0 = time.monotonic()
    try:
        subprocess.run(
            [str(bin_dir / "ray"), "start", "--head", f"--port={port}", f"--temp-dir={temp}",
             f"--autoscaling-config={config_path}", "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false",
             "--disable-usage-stats"],
            env=env, check=True, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        figures["head_start_s"] = round(time.monotonic() - t0, 1)

        log_path = Path(temp) / "sweep.log"
        sweep_start = time.time()
        t1 = time.monotonic()
        peak_raylets = _raylets(temp)
        with log_path.open("w") as log:
            driver = subprocess.Popen(
                [sys.executable, "-m", "attrsearch.cli", "sweep", str(sweep_path), "--address", address],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                while driver.poll() is None and time.monotonic() - t1 < sweep_timeout_s:
                    peak_raylets = max(peak_raylets, _raylets(temp))
                    time.sleep(2.0)
            finally:
                if driver.poll() is None:
                    driver.kill()
                rc = driver.wait()
        sweep_end = time.time()
        figures["sweep_s"] = round(time.monotonic() - t1, 1)
        figures["sweep_rc"] = rc
        print(log_path.read_text(errors="replace")[-3000:])

        # idle_timeout_minutes 0.5, the autoscaler's 5 s update period and the GCS's idle report
        deadline = time.monotonic() + 60 * config["idle_timeout_minutes"] + 150
        while time.monotonic() < deadline:
            events = scaling_events(temp)
            if (
                any(n < 0 for _, n, _, _ in events)
                and sum(n for _, n, _, _ in events) == 0
                and _raylets(temp) == 1  # the head's
            ):
                break
            time.sleep(2.0)
        events = scaling_events(temp)
        alive, peak = 0, 0
        for _, n, _, _ in events:
            alive += n
            peak = max(peak, alive)
        removals = [stamp for stamp, n, _, _ in events if n < 0]
        trials = _trials(Path(temp) / "results")
        statuses: dict[str, int] = {}
        for row in trials:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        nodes = sorted({row.get("node", "") for row in trials})
        figures.update(
            first_worker_added_s=next((round(s - sweep_start, 1) for s, n, _, _ in events if n > 0), None),
            peak_workers=peak,
            peak_raylets=peak_raylets,
            workers_left=alive,
            raylets_left=_raylets(temp),
            all_removed_as_idle=bool(removals) and all(why == "idle" for _, n, _, why in events if n < 0),
            scale_down_s=round(max(removals) - sweep_end, 1) if removals and alive == 0 else None,
            trials=len(trials),
            trial_statuses=statuses,
            trial_nodes=[node[-5:] for node in nodes],
            events=[f"{s - sweep_start:+.1f} s: {n:+d} {kind} {why}".rstrip() for s, n, kind, why in events],
        )
        figures["ok"] = (
            rc == 0
            and len(trials) == sweep["num_samples"]
            and set(statuses) <= {"completed", "stopped"}
            and FAKE_HEAD_ID not in nodes  # every trial ran on an autoscaled worker
            and peak >= 1
            and alive == 0
            and figures["raylets_left"] == 1
            and figures["all_removed_as_idle"]
        )
        return figures
    finally:
        t2 = time.monotonic()
        figures["sigkilled"], figures["processes_left"] = _end(temp)
        figures["cleanup_s"] = round(time.monotonic() - t2, 1)
        figures["total_s"] = round(time.monotonic() - t0, 1)
        signal.signal(signal.SIGTERM, previous_term)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    derive_cmd = commands.add_parser("derive", help="print (or write to OUT) the config derived from cluster.yaml")
    derive_cmd.add_argument("out", nargs="?", type=Path, help="write the derived config here instead of stdout")
    smoke_cmd = commands.add_parser("smoke", help="start the fake cluster, run a sweep on it, scale down, stop")
    smoke_cmd.add_argument("sweep", nargs="?", default=str(QUICKSTART), help="sweep file (default: the quickstart)")
    smoke_cmd.add_argument("--tiny", action="store_true", help="a smaller variant of the sweep (sweep_variant)")
    args = parser.parse_args()
    if args.command == "derive":
        text = yaml.safe_dump(derive(load_cluster_yaml()), sort_keys=False)
        if args.out:
            args.out.write_text(text)
        else:
            print(text)
        return 0
    if not Path(args.sweep).is_file():
        parser.error(f"{args.sweep}: no such sweep file")
    figures = smoke(args.sweep, tiny=args.tiny)
    print(json.dumps(figures, indent=1))
    return 0 if figures["ok"] and figures["processes_left"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
