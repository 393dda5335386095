"""cluster.yaml on this machine: Ray's autoscaler with the fake multinode provider, and a sweep submitted to it.

    .venv/bin/python analysis/chaos/fake_cluster.py derive [OUT.yaml]     # the derived config only
    .venv/bin/python analysis/chaos/fake_cluster.py smoke SWEEP.yaml      # start, sweep, scale down, stop

``derive`` is the one place the local config comes from: cluster.yaml with its provider swapped for
``fake_multinode``, the head type renamed to the one that provider expects, docker, file mounts and
cloud node configs dropped, everything else (node types and resources, max_workers, setup and start
commands) kept. The fake provider starts worker raylets on this machine itself (node updaters off), so it runs none of
the setup or start commands; they are kept so the derived file states the same cluster (what remains
unverified without a cloud: the commands, the image, the AMI, instance types and zones).

``smoke``: ``RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=derived.yaml`` with its own
``--temp-dir`` and port (a ``ray start`` cluster in /tmp/ray would be joined by every ``ray.init()`` on
this shared machine), the sweep submitted as ``attrsearch sweep FILE --address HEAD`` from a shell,
workers counted every 2 s (scale-up for pending trials, scale-down once idle), then the cluster's
own processes are ended by pid (never ``ray stop``, which ends every Ray on the machine). Prints the
wall times. The head gets 1 logical CPU and no GPU, so trials asking for a GPU need workers.
"""

from __future__ import annotations

import copy
import json
import os
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
FAKE_HEAD_TYPE = "ray.head.default"  # ray.autoscaler._private.fake_multi_node.node_provider.FAKE_HEAD_NODE_TYPE
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
    out["provider"] = {
        "type": "fake_multinode",
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_pids(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (this cluster's temp dir), this process excluded."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def scaling_events(temp: str) -> list[tuple[str, int, str]]:
    """The autoscaler's own scale events from its monitor log: (time, +added / -removed workers, why)."""
    import re

    events = []
    for log in sorted(
        {path.resolve() for path in Path(temp).glob("session_*/logs/monitor.log")}
    ):  # not session_latest twice
        for line in log.read_text(errors="replace").splitlines():
            m = re.search(
                r"^(\S+ \S+).*:event_summary:(Adding|Removing) (\d+) nodes?\S* of type (\S+)( \((.*)\))?", line
            )
            if m and m.group(4).rstrip(".") != FAKE_HEAD_TYPE:
                sign = 1 if m.group(2) == "Adding" else -1
                events.append((m.group(1), sign * int(m.group(3)), m.group(6) or ""))
    return events


def smoke(sweep_file: str) -> int:
    import ray._private.services as services

    temp = tempfile.mkdtemp(prefix="attrsearch-fakeray-")
    port = _free_port()
    ip = services.get_node_ip_address()
    address = f"{ip}:{port}"
    from ray.autoscaler._private.util import validate_config

    # Ray's prepare_config cannot fill defaults for this provider (its example.yaml is not in the wheel):
    # derive() keeps every key the autoscaler reads, and the schema check still runs.
    config = derive(load_cluster_yaml(), gcs_address=address)
    validate_config(config)
    config_path = Path(temp) / "fake_cluster.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_FAKE_CLUSTER="1", RAY_AUTH_MODE=env.get("RAY_AUTH_MODE", "token"))
    bin_dir = Path(sys.executable).parent
    t0 = time.monotonic()
    try:
        subprocess.run(
            [str(bin_dir / "ray"), "start", "--head", f"--port={port}", f"--temp-dir={temp}",
             f"--autoscaling-config={config_path}", "--num-cpus=1", "--num-gpus=0", "--include-dashboard=false",
             "--disable-usage-stats"],
            env=env, check=True, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        head_s = time.monotonic() - t0

        t1 = time.monotonic()
        sweep = subprocess.run(
            [sys.executable, "-m", "attrsearch.cli", "sweep", sweep_file, "--address", address],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        sweep_s = time.monotonic() - t1
        print(sweep.stdout[-2500:])
        if sweep.returncode != 0:
            print(sweep.stderr[-3000:])
        deadline = time.monotonic() + 180  # idle_timeout_minutes 0.5 + the autoscaler's update period
        while time.monotonic() < deadline:
            events = scaling_events(temp)
            if events and sum(n for _, n, _ in events) == 0 and any(n < 0 for _, n, _ in events):
                break
            time.sleep(2.0)
        events = scaling_events(temp)
        alive, peak = 0, 0
        for _, n, _ in events:
            alive += n
            peak = max(peak, alive)
        down = next((stamp for stamp, n, why in events if n < 0 and "idle" in why), None)
        print(json.dumps({
            "head_start_s": round(head_s, 1), "sweep_s": round(sweep_s, 1), "sweep_rc": sweep.returncode,
            "peak_workers": peak, "workers_left": alive, "scaled_down_idle_at": down,
            "total_s": round(time.monotonic() - t0, 1), "events": events,
        }, indent=1))  # fmt: skip
        return 0 if sweep.returncode == 0 and peak >= 1 and alive == 0 and down is not None else 1
    finally:
        for pid in _own_pids(temp):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        time.sleep(3)
        for pid in _own_pids(temp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("derive", "smoke"):
        print(__doc__)
        return 2
    if sys.argv[1] == "derive":
        text = yaml.safe_dump(derive(load_cluster_yaml()), sort_keys=False)
        if len(sys.argv) > 2:
            Path(sys.argv[2]).write_text(text)
        else:
            print(text)
        return 0
    return smoke(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
