"""One cache entry: a folder built once under a file lock and published atomically, with a metadata JSON.

Layout: ``root/kind/key/{payload files..., meta.json}`` (``key`` may hold a ``/``, e.g. ``<hash>/train``),
a lock file ``root/kind/key.lock`` next to it. The builder writes the payload into a private temp folder
beside the entry; ``meta.json`` is written last, then the whole folder appears at once through
``os.replace``, so a reader never sees a half-written entry (``meta.json`` marks a complete one).
Concurrent builders on one machine: an advisory ``flock`` makes the others wait and then read the
winner's copy; if locking is unavailable, both build and the loser of the rename drops its own copy.

``version`` is written into ``meta.json`` as ``cache_version``; an entry of another version counts as
absent and is rebuilt (entries written before the field existed count as version 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # POSIX only; without it concurrent builders just duplicate the work.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

META = "meta.json"
VERSION_FIELD = "cache_version"


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``lock_path`` (created if needed); a no-op without ``fcntl``."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``meta.json`` of a complete entry folder."""
    return json.loads((Path(folder) / META).read_text())


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` (the completeness marker: write it after the payload)."""
    (Path(folder) / META).write_text(json.dumps(meta, indent=1, sort_keys=True))


@dataclass(frozen=True)
class CacheEntry:
    """``root/kind/key``: built once by ``build(fn)``, then read by every process."""

    root: Path
    kind: str
    key: str
    version: int = 1

    @property
    def path(self) -> Path:
        return Path(self.root) / self.kind / self.key

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        """Whether the entry is complete and of this ``version``."""
        if not (self.path / META).is_file():
            return False
        try:
            return read_meta(self.path).get(VERSION_FIELD, 1) == self.version
        except (OSError, ValueError, AttributeError):
            return False

    def meta(self) -> dict[str, Any]:
        return read_meta(self.path)

    def build(self, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """The entry's meta dict; the first time, ``fn(folder)`` writes the payload into an empty temp
        folder and returns the meta dict, and the folder is published as the entry."""
        if not self.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with exclusive(self.lock_path):
                if not self.exists():  # nobody finished it while we waited for the lock
                    self._publish(fn)
        return self.meta()

    def _publish(self, fn: Callable[[Path], dict[str, Any]]) -> None:
        tmp = self.path.parent / f".tmp-{self.path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            meta = dict(fn(tmp))
            meta[VERSION_FIELD] = self.version
            write_meta(tmp, meta)
            if self.path.exists() and not self.exists():
                shutil.rmtree(self.path, ignore_errors=True)  # debris of a killed writer, or another version
            os.replace(tmp, self.path)
        except OSError:
            if not self.exists():
                raise
            # Another process (without the lock) won the race: use its copy.
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
