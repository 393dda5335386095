"""The Ray node of a sweep's driver: join a cluster (``--address``) or start the embedded local Ray,
and every use of Ray's internals (``ray._private``: the loopback patch of its services, the
autoscaler's cluster config and status), so that a Ray upgrade is checked in this one file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from attrsearch.errors import UserError, first_line

# Ray/Tune settings for the driver (setdefault: the user's environment wins).
_DRIVER_ENV = {
    # PBT's CheckpointConfig(num_to_keep) forces experiment snapshots (tuner.PBT_CHECKPOINTS); do not warn about it.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Tune's per-trial list of checkpoints (tuner.checkpoint_config) holds each one's path without
    # a copy of its metrics (the latest checkpoint, which restores use, keeps them): a smaller snapshot.
    "TUNE_ONLY_STORE_CHECKPOINT_SCORE_ATTRIBUTE": "1",
    "RAY_DEDUP_LOGS": "0",
    # The JSON/CSV result loggers are added explicitly (tuner.build_callbacks); no TensorBoard files.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}


def apply_driver_env() -> None:
    """Ray/Tune settings of a sweep's driver, where the environment does not set them already."""
    for key, value in _DRIVER_ENV.items():
        os.environ.setdefault(key, value)


# HTTP/2's client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5): every gRPC server,
# Ray's GCS included, answers with a SETTINGS frame of its own.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` address must accept a TCP connection and answer as a gRPC server (Ray's GCS)
    within ``timeout_s`` each: ``ray.init`` would otherwise retry the GCS for about a minute before
    failing, or about 30 s on a port that accepts TCP but is not Ray. ``auto`` and ``ray://`` are
    left to Ray, and so is a cluster with TLS (``RAY_USE_TLS``), whose handshake this check cannot do."""
    import socket

    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT of the head node's GCS (e.g. 10.0.0.5:6379), or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            conn.sendall(_HTTP2_PREFACE)
            try:
                head = conn.recv(9)
            except TimeoutError:
                head = b""
    except OSError as err:
        raise UserError(
            f"--address {address}: no Ray head answers there ({err.strerror or type(err).__name__}); "
            "start the cluster (ray up / ray start --head) or check the address"
        ) from None
    if len(head) < 4 or head[3] != 0x04:  # byte 3 of a frame header is its type; 0x04 = SETTINGS
        raise UserError(
            f"--address {address}: no Ray head answers there (the port accepts connections but does not speak "
            "gRPC); give the head's GCS port (6379 unless `ray start --head --port` chose another)"
        )


def start_ray(address: str | None, verbose: int = 0) -> bool:
    """Join ``address`` or start an embedded local Ray with this machine's CPUs; True if we started it.
    Workers' output (Ray's checkpoint lines, W&B's banners) reaches this console only with ``verbose``."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        check_reachable(address)
        only_loopback = loopback_only(address)
        try:
            with keep_loopback(only_loopback):
                extra = {"_node_ip_address": LOOPBACK} if only_loopback else {}
                ray.init(address=address, log_to_driver=verbose > 0, **extra)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"--address {address}: cannot join the Ray cluster ({first_line(err)})") from None
    else:
        start_embedded_ray(os.cpu_count() or 1, log_to_driver=verbose > 0)
    return True


LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def keep_loopback(active: bool = True) -> Iterator[None]:
    """While active, Ray keeps a loopback host as given. ``ray.init`` rewrites 127.0.0.1 / localhost
    (a ``_node_ip_address`` and the host of ``address``) into the machine's routable IP first
    (``ray._private.services.resolve_ip_for_localhost``, Ray 2.60); its gRPC servers then listen on
    all interfaces, and a driver cannot reach a Ray that listens on the loopback only."""
    from ray._private import services

    original = getattr(services, "resolve_ip_for_localhost", None)
    if not active or original is None:
        yield
        return
    services.resolve_ip_for_localhost = lambda host: host
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = original


def loopback_only(address: str) -> bool:
    """Whether ``address`` (HOST:PORT) is a Ray on this machine that listens on the loopback only (an
    embedded attrsearch Ray): its host is loopback and the port does not answer on the routable IP.
    A Ray started with ``ray start --head`` listens on every interface and is joined as Ray does."""
    import ipaddress
    import socket

    host, _, port = address.rpartition(":")
    if host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    from ray._private.services import get_node_ip_address

    try:
        with socket.create_connection((get_node_ip_address(), int(port)), timeout=2.0):
            return False
    except OSError:
        return True


def start_embedded_ray(num_cpus: int, log_to_driver: bool = False) -> None:
    """Start a Ray of this machine only, every server of it (GCS, raylet, object manager, workers)
    listening on 127.0.0.1 (tests/sweep/test_loopback.py checks every listening socket of the
    started processes, so a Ray upgrade that changes it fails there).

    ``address="local"``: a new Ray even when `ray start` left a cluster on this machine (``ray.init()``
    would join it). Ray binds its gRPC servers to the loopback only when the node's IP is 127.0.0.1,
    which ``keep_loopback`` lets through. ``--address 127.0.0.1:PORT`` joins such a Ray.
    """
    import ray

    with keep_loopback():
        ray.init(
            address="local",
            _node_ip_address=LOOPBACK,
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=log_to_driver,
        )


def alive_node_resources() -> list[dict[str, Any]]:
    """The resources of every alive node of the joined cluster and of each node type its autoscaler
    may still start."""
    import ray

    return [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")] + autoscaled_node_types()


def autoscaled_node_types() -> list[dict[str, float]]:
    """The resources of each node type the cluster's autoscaler may still start (none without one)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - an older GCS or no autoscaler: only the alive nodes count
        return []
    if config is None:
        return []
    return [dict(group.resources) for group in config.node_group_configs if group.max_count != 0]


def has_autoscaler() -> bool:
    """Whether the joined cluster runs Ray's (v1) autoscaler: its monitor publishes a status in the GCS."""
    try:
        from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
        from ray.experimental.internal_kv import _internal_kv_get

        return _internal_kv_get(DEBUG_AUTOSCALING_STATUS) is not None
    except Exception:  # noqa: BLE001 - no autoscaler state readable: treat as none
        return False
