"""One running sweep per results folder: ``<storage>/<name>/sweep.lock``.

A sweep run takes the lock before it starts Ray and gives it back when it ends, however it ends
(completion, a refusal, Ctrl-C, an exception). The file holds the owner as JSON: pid, host, start
time and the command line. A second run of the same name (also ``--resume``) is refused with one
line naming the owner, while the owner lives. A lock left by a crash (``kill -9``, power loss) is
recognised as stale when its host is this machine and its pid is gone, or now belongs to a process
started after the lock (a reused pid), and is taken over with one warning line.

On a local folder the lock is created atomically (``O_CREAT | O_EXCL``). On remote storage (S3)
there is no atomic create: the lock is read, then written, so two runs started within the same
second can both pass (best effort); a lock held by another host cannot be checked for staleness
and stays until that sweep ends or someone deletes the file (the refusal names it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrsearch.errors import UserError, first_line
from attrsearch.results.layout import LOCK_FILE
from attrsearch.sweep.storage import Storage

log = logging.getLogger(__name__)


def owner_record() -> dict[str, Any]:
    """Who holds the lock: this process."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": round(time.time(), 3),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }


def is_stale(owner: dict[str, Any]) -> bool:
    """Whether a lock's owner is known to be gone: same host, and its pid is not alive or is a
    process that started after the lock (the pid was reused). A lock of another host is never stale."""
    if owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    started = process_start_time(pid)
    return started is not None and started > float(owner.get("started_at", 0) or 0) + 5.0  # a reused pid


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (unix time; Linux ``/proc``), None where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return float(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def describe_owner(owner: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(owner.get("started_at", 0) or 0)))
    return f"pid {owner.get('pid')} on {owner.get('host')}, since {when}"


def _read_owner(storage: Storage, rel: str) -> dict[str, Any] | None:
    text = storage.read_text(rel)
    if text is None:
        return None
    try:
        owner = json.loads(text)
    except ValueError:
        return {}  # an unreadable lock (a writer killed mid-write on a local disk cannot leave one)
    return owner if isinstance(owner, dict) else {}


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _create_local(path: Path, owner: dict[str, Any]) -> bool:
    """Create the lock file atomically; False when it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(owner))
    return True


def acquire(storage: Storage, name: str) -> dict[str, Any]:
    """Take ``<storage>/<name>/sweep.lock`` for this process; ``UserError`` while another run holds it."""
    rel = f"{name}/{LOCK_FILE}"
    owner = owner_record()
    for _ in range(60):  # a stale lock removed by us (or by a racing run) is retried
        if storage.is_local:
            if _create_local(Path(storage.fs_path(rel)), owner):
                return owner
        held = _read_owner(storage, rel)
        if held is None:
            if not storage.is_local:
                storage.write_text(rel, json.dumps(owner))
                return owner
            continue  # released between our create and our read
        if held.get("pid") == owner["pid"] and held.get("host") == owner["host"]:
            return held  # this process holds it already
        if not held and storage.is_local and _age(Path(storage.fs_path(rel))) < 10.0:
            time.sleep(0.2)  # created this instant, its owner not written yet
            continue
        if held and not is_stale(held):
            raise UserError(
                f"{storage.join(name)}: sweep {name!r} is running ({describe_owner(held)}); wait for it to end "
                f"or stop it (a lock left by a crash on another machine: delete {storage.join(rel)})"
            )
        log.warning(f"{storage.join(rel)}: taking over the lock of a sweep that is gone ({describe_owner(held)})")
        with contextlib.suppress(OSError):
            storage.filesystem.delete_file(storage.fs_path(rel))
    raise UserError(f"{storage.join(rel)}: could not take the sweep lock (another run keeps taking it)")


def release(storage: Storage, name: str, owner: dict[str, Any]) -> None:
    """Remove the lock if this process holds it; also the results folder if the lock was all it held."""
    rel = f"{name}/{LOCK_FILE}"
    try:
        held = _read_owner(storage, rel)
    except OSError as err:  # storage unreachable (a sweep stopped by an outage): a later run takes it over
        log.warning(f"{storage.join(rel)}: could not remove the sweep lock ({first_line(err)})")
        return
    if held is None or held.get("pid") != owner["pid"] or held.get("host") != owner["host"]:
        return
    with contextlib.suppress(OSError):
        storage.filesystem.delete_file(storage.fs_path(rel))
    if storage.is_local:
        with contextlib.suppress(OSError):
            Path(storage.fs_path(name)).rmdir()  # only when empty: a refused run leaves nothing


@contextlib.contextmanager
def sweep_lock(storage: Storage, name: str) -> Iterator[dict[str, Any]]:
    """Hold the sweep's lock for the duration of the block."""
    owner = acquire(storage, name)
    try:
        yield owner
    finally:
        release(storage, name, owner)
