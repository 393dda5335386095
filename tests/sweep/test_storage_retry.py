"""Uploads to storage that stops answering: the retry helper, the driver's reading of the cause, the relay."""

from __future__ import annotations

import socket

import pytest

from attrsearch.errors import DiskFull
from attrsearch.sweep.outage import storage_cause
from attrsearch.sweep.storage import StorageUnavailable, backoff_waits, with_retries
from tests.support.s3_server import Relay, free_port


def flaky(failures: int, err: Exception):
    calls = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise err
        return "done"

    return action, calls


def test_backoff_doubles_and_is_capped():
    assert backoff_waits(5, 60) == [2, 4, 8, 16]
    assert backoff_waits(5, 5) == [2, 4, 5, 5]
    assert backoff_waits(1, 60) == []


def test_retries_until_storage_answers_with_one_line_per_failure():
    action, calls = flaky(2, OSError("AWS Error NETWORK_CONNECTION during PutObject\nmore"))
    lines, slept = [], []
    assert with_retries(action, "s3://b/sweeps", 5, 60, say=lines.append, sleep=slept.append) == "done"
    assert len(calls) == 3 and slept == [2, 4]
    assert lines == [
        "storage s3://b/sweeps unreachable (attempt 1/5): AWS Error NETWORK_CONNECTION during PutObject; retrying in 2 s",
        "storage s3://b/sweeps unreachable (attempt 2/5): AWS Error NETWORK_CONNECTION during PutObject; retrying in 4 s",
    ]


def test_gives_up_after_the_attempts_with_storage_unavailable():
    action, calls = flaky(10, OSError("connection refused"))
    slept = []
    clock = iter([0.0, 9.5])
    with pytest.raises(StorageUnavailable, match=r"s3://b unreachable after 3 attempts over 10 s .*connection refused"):
        with_retries(action, "s3://b", 3, 1.5, say=lambda _: None, sleep=slept.append, clock=lambda: next(clock))
    assert len(calls) == 3 and slept == [1.5, 1.5]


def test_other_errors_are_not_retried():
    for err in (ValueError("a bug"), DiskFull("/x"), RuntimeError("other")):
        action, calls = flaky(1, err)
        with pytest.raises(type(err)):
            with_retries(action, "s3://b", 5, 1, say=lambda _: None, sleep=lambda _: None)
        assert len(calls) == 1
    action, calls = flaky(1, RuntimeError("Unable to set up cluster storage with the following settings"))
    assert with_retries(action, "s3://b", 2, 1, say=lambda _: None, sleep=lambda _: None) == "done"


def test_storage_cause_reads_the_last_failure_of_an_error_file():
    err = "attrsearch.sweep.storage.StorageUnavailable: storage s3://b unreachable after 3 attempts over 4 s"
    text = f"Failure # 1 (occurred at x)\nRuntimeError: injected\nFailure # 2 (occurred at y)\nTraceback...\n{err}\n"
    assert storage_cause(text) == "storage s3://b unreachable after 3 attempts over 4 s"
    assert storage_cause(f"Failure # 1 (x)\n{err}\nFailure # 2 (y)\nRuntimeError: injected\n") is None
    assert storage_cause("") is None


def test_relay_refuses_while_paused_and_relays_again():
    port = free_port()
    echo = socket.socket()
    echo.bind(("127.0.0.1", port))
    echo.listen(4)
    relay = Relay(port)
    try:
        client = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        peer, _ = echo.accept()
        client.sendall(b"ping")
        assert peer.recv(4) == b"ping"
        relay.pause()
        try:  # the open connection is dropped
            assert client.recv(4) == b""
        except ConnectionResetError:
            pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        relay.resume()
        again = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
        peer2, _ = echo.accept()
        peer2.sendall(b"pong")
        assert again.recv(4) == b"pong"
        for sock in (client, peer, again, peer2):
            sock.close()
    finally:
        relay.close()
        echo.close()
