"""Shared pieces of the sweep tests: one local Ray for the whole session, moto's S3 server.

Ray start-up is most of a toy sweep's time, so every test that needs Ray shares ``ray_address``
(2 CPUs). Tests that must prove no Ray was started run their commands in a subprocess instead.
Tiny sweep files come from ``tests.support.sweep_files``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.support.s3_server import SECRET, free_port


@pytest.fixture(scope="session")
def ray_address() -> str:
    """One local Ray (2 CPUs) for every sweep test of the session; its GCS address."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        from attrsearch.sweep.ray_node import start_embedded_ray

        start_embedded_ray(2)  # as `attrsearch sweep` starts it: loopback only
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def moto_s3(tmp_path):
    """moto's S3 server on a free local port for one test; the AWS_* environment that reaches it."""
    pytest.importorskip("moto")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=(tmp_path / "moto.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto server did not start:\n" + (tmp_path / "moto.log").read_text()[-2000:])
            time.sleep(0.3)
    env = {
        "AWS_ACCESS_KEY_ID": "attrsearchtestkey",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    try:
        yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
