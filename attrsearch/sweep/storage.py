"""Where a sweep's results live: a local folder or a URI pyarrow opens (``s3://...``), and how to use it.

``Storage`` is the one place that decides whether storage is local or remote. It is built when the
sweep is loaded (``Sweep.storage``) from the sweep file's ``storage`` or ``--results``, and every
other module asks it: the pyarrow filesystem and the path in it, reads, whole-file writes (atomic on
a local folder: a temp file and a rename; one put on S3), uploads of local files and folders,
listings. Paths given to its methods are relative to its root (``""``: the root itself).

It pickles as its root alone (it travels to Ray workers); the filesystem is opened on first use.
Credentials come from the environment, read by pyarrow's client; attrsearch never writes them.

Remote storage can stop answering for a while (an outage, a network partition): ``with_retries``
calls an upload again after a back-off (2, 4, 8, ... s, each wait at most ``max_wait_s``), one
console line per failed attempt, and raises ``StorageUnavailable`` after ``attempts`` tries; the
sweep driver then stops the sweep the way Ctrl-C does (``sweep.outage``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from attrsearch.errors import DiskFull, first_line, is_disk_full

T = TypeVar("T")


@dataclass(frozen=True)
class Storage:
    """A local folder (absolute path) or a URI, ``root``; its filesystem is opened lazily."""

    root: str
    _fs: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)  # [(fs, root path)] once opened

    @classmethod
    def at(cls, location: str | Path) -> Storage:
        """Storage rooted at ``location``: a URI as given, a local path expanded and made absolute."""
        location = str(location)
        if "://" in location:
            return cls(location)
        return cls(str(Path(location).expanduser().resolve()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Storage, (self.root,))

    def __str__(self) -> str:
        return self.root

    @property
    def is_local(self) -> bool:
        """A folder on this machine's filesystem (not a URI)."""
        return "://" not in self.root

    def join(self, *parts: str) -> str:
        """The location (local path or URI) of ``root/parts...``."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def sub(self, *parts: str) -> Storage:
        """Storage rooted at ``root/parts...``."""
        return Storage(self.join(*parts))

    def _opened(self) -> tuple[Any, str]:
        if not self._fs:
            import pyarrow.fs

            if self.is_local:
                self._fs.append((pyarrow.fs.LocalFileSystem(), self.root))
            else:
                self._fs.append(pyarrow.fs.FileSystem.from_uri(self.root))
        return self._fs[0]

    @property
    def filesystem(self) -> Any:
        """The pyarrow filesystem of the storage (``LocalFileSystem`` for a local folder)."""
        return self._opened()[0]

    def fs_path(self, rel: str = "") -> str:
        """The path of ``rel`` inside ``filesystem``."""
        root = self._opened()[1].rstrip("/")
        return f"{root}/{rel.strip('/')}" if rel.strip("/") else root

    def _type(self, rel: str) -> Any:
        return self.filesystem.get_file_info(self.fs_path(rel)).type

    def exists(self, rel: str = "") -> bool:
        import pyarrow.fs

        return self._type(rel) != pyarrow.fs.FileType.NotFound

    def is_file(self, rel: str) -> bool:
        import pyarrow.fs

        return self._type(rel) == pyarrow.fs.FileType.File

    def is_dir(self, rel: str = "") -> bool:
        import pyarrow.fs

        return self._type(rel) == pyarrow.fs.FileType.Directory

    def list(self, rel: str = "") -> list[str]:
        """Names of the entries directly in folder ``rel``; a missing folder raises (``OSError``)."""
        import pyarrow.fs

        infos = self.filesystem.get_file_info(pyarrow.fs.FileSelector(self.fs_path(rel)))
        return [Path(i.path).name for i in infos]

    def files(self, rel: str = "") -> list[str]:
        """Paths (relative to ``rel``) of every file under folder ``rel``, recursively; [] if missing."""
        import pyarrow.fs

        folder = self.fs_path(rel)
        infos = self.filesystem.get_file_info(pyarrow.fs.FileSelector(folder, recursive=True, allow_not_found=True))
        return [i.path[len(folder) + 1 :] for i in infos if i.type == pyarrow.fs.FileType.File]

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's bytes; None if it is not a file."""
        if not self.is_file(rel):
            return None
        with self.filesystem.open_input_stream(self.fs_path(rel)) as fh:
            return fh.read()

    def read_text(self, rel: str) -> str | None:
        """A text file; None if it is not a file."""
        data = self.read_bytes(rel)
        return None if data is None else data.decode()

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a file whole or not at all (``write_whole``)."""
        write_whole(self.filesystem, self.fs_path(rel), data)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def upload(self, local: str | Path, rel: str) -> None:
        """Copy a local file to ``rel`` (complete or absent: a temp file and a rename on a local folder,
        one put on S3), or a local folder into ``rel`` file by file."""
        import uuid

        import pyarrow.fs

        local = Path(local)
        if local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file()):
                self.upload(path, f"{rel}/{path.relative_to(local).as_posix()}")
            return
        fs, dest = self.filesystem, self.fs_path(rel)
        folder, _, name = dest.rpartition("/")
        fs.create_dir(folder, recursive=True)
        src = pyarrow.fs.LocalFileSystem()
        if not self.is_local:
            pyarrow.fs.copy_files(str(local), dest, source_filesystem=src, destination_filesystem=fs)
            return
        tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            pyarrow.fs.copy_files(str(local), tmp, source_filesystem=src, destination_filesystem=fs)
            fs.move(tmp, dest)
        finally:
            if fs.get_file_info(tmp).type != pyarrow.fs.FileType.NotFound:
                fs.delete_file(tmp)

    def download(self, rel: str, local: str | Path) -> None:
        """Copy the file ``rel`` to the local path ``local`` (its folder is created)."""
        import pyarrow.fs

        Path(local).parent.mkdir(parents=True, exist_ok=True)
        pyarrow.fs.copy_files(
            self.fs_path(rel),
            str(local),
            source_filesystem=self.filesystem,
            destination_filesystem=pyarrow.fs.LocalFileSystem(),
        )


def write_whole(fs: Any, fs_path: str, data: bytes) -> None:
    """Write a file on a pyarrow filesystem whole or not at all: a local file through a temp file and
    a rename (an interrupt mid-write leaves the previous version), a remote object in one put."""
    import os
    import tempfile

    import pyarrow.fs

    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        folder = Path(fs_path).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{Path(fs_path).name}-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, fs_path)
        except OSError as err:
            if is_disk_full(err, folder):
                raise DiskFull(fs_path) from err  # the previous version stays; one line names the file
            raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    fs.create_dir(fs_path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(fs_path) as fh:
        fh.write(data)


class StorageUnavailable(Exception):
    """Remote storage did not answer through every attempt of ``with_retries`` (the message names it)."""


def _storage_error(err: BaseException) -> bool:
    """An error of an unreachable storage: pyarrow's ``OSError`` (not a full local disk), or Ray's
    ``RuntimeError`` when it cannot see the storage's validation marker before a checkpoint upload."""
    if isinstance(err, DiskFull):
        return False
    if isinstance(err, OSError):
        return True
    return isinstance(err, RuntimeError) and "Unable to set up cluster storage" in str(err)


def backoff_waits(attempts: int, max_wait_s: float, first_s: float = 2.0) -> list[float]:
    """The waits between ``attempts`` tries: ``first_s`` doubling, each at most ``max_wait_s``."""
    return [min(first_s * 2**i, max_wait_s) for i in range(max(attempts - 1, 0))]


def with_retries(
    action: Callable[[], T],
    location: str,
    attempts: int,
    max_wait_s: float,
    say: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``action()``, called again after ``backoff_waits`` while it fails with a storage error; after
    ``attempts`` failures ``StorageUnavailable`` (from the last error). ``say`` (default: stderr, which
    Ray shows on the driver's console) gets one line per failed attempt:
    ``storage s3://b/x unreachable (attempt 2/5): <error>; retrying in 4 s``. An attempt itself can
    take seconds: the S3 client retries a refused connection for about 6 s before it fails."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    waits = backoff_waits(attempts, max_wait_s)
    start = clock()
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as err:
            if not _storage_error(err):
                raise
            if attempt == attempts:
                raise StorageUnavailable(
                    f"storage {location} unreachable after {attempts} attempts over {clock() - start:.0f} s "
                    f"(storage_retry): {first_line(err)}"
                ) from err
            wait = waits[attempt - 1]
            say(
                f"storage {location} unreachable (attempt {attempt}/{attempts}): {first_line(err)}; retrying in {wait:.0f} s"
            )
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
