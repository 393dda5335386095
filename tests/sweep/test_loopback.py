"""The embedded local Ray listens on 127.0.0.1 only (a single-machine sweep needs nothing else), and
``--address 127.0.0.1:PORT`` still joins it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="Linux /proc")]

# Run in a fresh process: start Ray as `attrsearch sweep` does, run one task, then list the
# listening TCP sockets of every process below this one (GCS, raylet, workers, this driver).
PROBE = textwrap.dedent(
    """
    import json, os, sys
    import ray
    from attrsearch.sweep.ray_node import start_embedded_ray

    def listening():  # (local address, port) of every LISTEN socket, by socket inode
        out = {}
        for name in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in open(name).read().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A":  # TCP_LISTEN
                    addr, port = f[1].split(":")
                    out[f[9]] = (addr, int(port, 16))
        return out

    def descendants(root):
        parents = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                parents[int(pid)] = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
        found, grew = {root}, True
        while grew:
            new = {p for p, pp in parents.items() if pp in found} - found
            grew, found = bool(new), found | new
        return found

    start_embedded_ray(1)
    ray.get(ray.remote(lambda: 1).remote())
    sockets, rows = listening(), []
    for pid in descendants(os.getpid()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        name = open(f"/proc/{pid}/comm").read().strip()
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
            if inode in sockets:
                rows.append([name, *sockets[inode]])
    # a second driver joins it the way `attrsearch sweep --address 127.0.0.1:PORT` does
    port = ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]
    join = (
        "import ray; from attrsearch.sweep.ray_node import start_ray; "
        f"start_ray('127.0.0.1:{port}'); print('joined', ray.get(ray.remote(lambda: 7).remote()))"
    )
    import subprocess
    joined = subprocess.run([sys.executable, "-c", join], capture_output=True, text=True, timeout=90)
    ray.shutdown()
    json.dump({"rows": rows, "joined": joined.stdout.strip().splitlines()[-1:], "err": joined.stderr[-2000:]}, sys.stdout)
    """
)

# /proc/net/tcp writes addresses as little-endian hex words: 127.0.0.1 and ::ffff:127.0.0.1 (tcp6).
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def test_embedded_ray_listens_on_the_loopback_only(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    rows = out["rows"]
    assert out["joined"] == ["joined 7"], out["err"]
    names = {name for name, _, _ in rows}
    assert {"gcs_server", "raylet"} <= names, rows  # the probe found Ray's servers
    exposed = [row for row in rows if row[1] not in LOOPBACK]
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"
