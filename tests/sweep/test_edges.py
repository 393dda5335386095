"""Bad input at the edges of a cluster sweep: an ``--address`` no Ray head answers is one line, quickly:
nothing listens there, or something that is not Ray (silent, or speaking HTTP/1)."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.sweep_files import REPO, sweep_dict, write_sweep


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _not_ray(kind: str) -> Iterator[int]:
    """A port on 127.0.0.1: ``closed`` (nothing listens), ``silent`` (accepts and never answers) or
    ``http`` (an HTTP/1 server)."""
    if kind == "closed":
        yield _free_port()
        return
    if kind == "http":
        server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            server.server_close()
        return
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    held.append(server.accept()[0])

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield server.getsockname()[1]
        finally:
            stop.set()
            thread.join()
            for conn in held:
                conn.close()


@pytest.mark.parametrize("kind", ["closed", "silent", "http"])
def test_unreachable_address_is_one_line_within_30_s(tmp_path, kind):
    path = write_sweep(tmp_path, sweep_dict(name="edge", storage=str(tmp_path / "results")))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_USE_TLS")}
    with _not_ray(kind) as port:
        address = f"127.0.0.1:{port}"
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "attrsearch.cli", "sweep", str(path), "--address", address],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - t0
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(err) == 1 and f"--address {address}" in err[0] and "no Ray head" in err[0], done.stderr
    if kind != "closed":
        assert "does not speak gRPC" in err[0]
    assert took < 30, took
    assert not (tmp_path / "results" / "edge").exists()
