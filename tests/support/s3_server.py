"""moto's S3 server on 127.0.0.1 for the S3 tests: its secret key, a free port, a pyarrow client.

The ``moto_s3`` fixture (tests/sweep/conftest.py) starts the server; the secret key is unique, so any
file that holds it (results, Ray's session logs, S3 objects) is a leak.
"""

from __future__ import annotations

import socket
import threading

SECRET = "attrsearchS3secret" + "9d41c7" * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3fs(env):
    import pyarrow.fs

    return pyarrow.fs.S3FileSystem(
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        endpoint_override=env["AWS_ENDPOINT_URL"],
        scheme="http",
        allow_bucket_creation=True,
    )


class Relay:
    """A TCP relay on 127.0.0.1 (``port``) to ``target_port``, for storage outages: ``pause`` closes its
    listening socket and every open connection (clients get "connection refused" until ``resume``
    listens on the same port again)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.resume()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def resume(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.1)
        self._server = server
        self._acceptor = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._acceptor.start()

    def pause(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # stops listening now (close waits for a blocked accept)
            except OSError:
                pass
            server.close()
            self._acceptor.join(timeout=5)
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            for close in (lambda c=conn: c.shutdown(socket.SHUT_RDWR), conn.close):
                try:
                    close()
                except OSError:
                    pass

    close = pause

    def _accept(self, server: socket.socket) -> None:
        while self._server is server:
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._server is not server:  # paused meanwhile
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()  # the other pump closes dst
            with self._lock:
                self._open.discard(src)
