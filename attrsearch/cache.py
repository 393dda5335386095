"""One cache entry: a folder built once under a file lock and published atomically, with a metadata JSON.

Layout: ``root/kind/key/{payload files..., meta.json}`` (``key`` may hold a ``/``, e.g. ``<hash>/train``),
a lock file ``root/kind/key.lock`` next to it. The builder writes the payload into a private temp folder
beside the entry; ``meta.json`` is written last, then the whole folder appears at once through
``os.replace``, so a reader never sees a half-written entry (``meta.json`` marks a complete one).
Concurrent builders on one machine: an advisory ``flock`` makes the others wait and then read the
winner's copy; if locking is unavailable, both build and the loser of the rename drops its own copy.

``version`` is written into ``meta.json`` as ``cache_version``; an entry of another version counts as
absent and is rebuilt (entries written before the field existed count as version 1).

Checksums: at publish ``meta.json`` records the SHA-256 of every payload file (``checksums``) and of
its own other fields (``meta_checksum``). A reader verifies both before it uses an entry: a truncated
or edited file, or an edited ``meta.json``, makes the entry *corrupt*; ``build`` reports it in one
warning line naming the folder and the file, and rebuilds it (a corrupt entry is never used). Hashes
are remembered per process by (inode, size, mtime), so an entry is hashed once per process, not at
every read. A full disk while an entry is built raises ``DiskFull`` naming the entry; the temp
folder is removed, so nothing half-written is left. Entries written before checksums existed (no ``checksums`` field) are trusted once: the
first ``build`` that reads one seals it (computes and writes its checksums under the entry's lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrsearch.errors import DiskFull, is_disk_full

try:  # POSIX only; without it concurrent builders just duplicate the work.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

META = "meta.json"
VERSION_FIELD = "cache_version"
CHECKSUMS = "checksums"  # in meta.json: {payload file (relative, posix): sha256 hex}
META_CHECKSUM = "meta_checksum"  # in meta.json: sha256 of its other fields as canonical JSON
FETCHED = "fetched.json"  # a fetched copy's note of its source (attrsearch.sweep.shared_cache)
LOCAL_FILES = frozenset({META, FETCHED})  # files of an entry folder that are not its payload

_PUBLISHED: set[str] = set()  # entry folders this process published (built, not found)
_HASHES: dict[tuple[int, int, int, int], str] = {}  # (device, inode, size, mtime_ns) -> sha256


class CorruptEntry(Exception):
    """A cache entry (or a copy of one) whose files do not match its checksums."""


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
    """Write ``meta.json`` (the completeness marker: write it after the payload) whole or not at all."""
    tmp = Path(folder) / f".{META}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(tmp, Path(folder) / META)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, remembered for its (device, inode, size, mtime): a file renamed
    into place (the publish) is not hashed again."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        with open(path, "rb") as fh:
            _HASHES[key] = hashlib.file_digest(fh, "sha256").hexdigest()
    return _HASHES[key]


def meta_sha256(meta: dict[str, Any]) -> str:
    """SHA-256 of ``meta`` without its ``meta_checksum`` field, as canonical JSON."""
    body = {k: v for k, v in meta.items() if k != META_CHECKSUM}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def payload_files(folder: Path) -> list[str]:
    """The payload files of an entry folder (relative posix paths), without ``meta.json`` and local notes."""
    folder = Path(folder)
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() not in LOCAL_FILES
    )


def seal(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the checksums of ``folder``'s payload files and of itself."""
    sealed = {k: v for k, v in meta.items() if k != META_CHECKSUM}
    sealed[CHECKSUMS] = {rel: file_sha256(Path(folder) / rel) for rel in payload_files(folder)}
    sealed[META_CHECKSUM] = meta_sha256(sealed)
    return sealed


def problem(folder: Path, meta: dict[str, Any]) -> str | None:
    """Why ``folder``'s files do not match the checksums of ``meta`` (one phrase), or None when they
    match or ``meta`` has none (an entry written before checksums)."""
    sums = meta.get(CHECKSUMS)
    if sums is None and META_CHECKSUM not in meta:
        return None
    if not isinstance(sums, dict) or meta.get(META_CHECKSUM) != meta_sha256(meta):
        return f"{META} does not match its checksum (edited or damaged)"
    for rel, digest in sums.items():
        path = Path(folder) / rel
        if not path.is_file():
            return f"{rel} is missing"
        if file_sha256(path) != digest:
            return f"{rel} does not match its checksum (truncated, edited or damaged)"
    return None


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

    def state(self) -> tuple[str, str | None]:
        """(state, why): ``absent`` (also another version), ``corrupt`` (why names the file),
        ``unsealed`` (complete, written before checksums) or ``ok``."""
        if not (self.path / META).is_file():
            return "absent", None
        try:
            meta = read_meta(self.path)
            if not isinstance(meta, dict):
                return "corrupt", f"{META} is not a JSON object"
        except (OSError, ValueError) as err:
            return "corrupt", f"{META} is unreadable ({type(err).__name__})"
        if meta.get(VERSION_FIELD, 1) != self.version:
            return "absent", None
        why = problem(self.path, meta)
        if why is not None:
            return "corrupt", why
        return ("ok" if CHECKSUMS in meta else "unsealed"), None

    def exists(self) -> bool:
        """Whether the entry is complete, of this ``version`` and matches its checksums."""
        return self.state()[0] in ("ok", "unsealed")

    def built_here(self) -> bool:
        """Whether this process published the entry (its ``build`` ran ``fn``; not a copy found ready)."""
        return str(self.path) in _PUBLISHED

    def meta(self) -> dict[str, Any]:
        return read_meta(self.path)

    def build(self, fn: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """The entry's meta dict; the first time, ``fn(folder)`` writes the payload into an empty temp
        folder and returns the meta dict, and the folder is published as the entry. A corrupt entry is
        reported (one warning line) and rebuilt; an unsealed one is sealed."""
        state, why = self.state()
        if state == "ok":
            return self.meta()
        if state == "corrupt":
            log.warning(f"cache entry {self.path} is corrupt: {why}; rebuilding it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(self.lock_path):
            state, _ = self.state()  # somebody may have finished (or sealed) it while we waited
            if state == "unsealed":
                write_meta(self.path, seal(self.path, self.meta()))
                log.info(f"cache entry {self.path}: written before checksums, trusted once and sealed")
            elif state != "ok":
                self._publish(fn)
        return self.meta()

    def _publish(self, fn: Callable[[Path], dict[str, Any]]) -> None:
        tmp = self.path.parent / f".tmp-{self.path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            meta = dict(fn(tmp))
            why = problem(tmp, meta)  # a copy of a sealed entry (fetched from storage) must match its sums
            if why is not None:
                raise CorruptEntry(why)
            meta[VERSION_FIELD] = self.version
            write_meta(tmp, seal(tmp, meta))
            if self.path.exists() and not self.exists():
                shutil.rmtree(self.path, ignore_errors=True)  # debris of a killed writer, another version, corrupt
            os.replace(tmp, self.path)
            _PUBLISHED.add(str(self.path))
        except OSError as err:
            if is_disk_full(err, self.path.parent):
                raise DiskFull(self.path) from err
            if not self.exists():
                raise
            # Another process (without the lock) won the race: use its copy.
        except Exception as err:  # noqa: BLE001 - torch.save reports a full disk as a RuntimeError
            if is_disk_full(err, self.path.parent):
                raise DiskFull(self.path) from err
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
