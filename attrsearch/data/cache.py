"""A folder of ``.npy`` arrays + ``meta.json`` built once per key and shared by every process.

Layout: ``root/<key>/{<name>.npy..., meta.json}``. ``meta.json`` is written last, and the whole
folder appears at once through ``os.replace`` of a private temp folder, so a reader never sees a
half-written entry. Concurrent builders on one machine: an advisory ``flock`` on ``root/<key>.lock``
makes the others wait and then read the winner's copy; if locking is unavailable, both build and
the loser of the rename drops its own copy. Arrays come back memory-mapped read-only
(``np.load(mmap_mode="r")``) so that trials and DataLoader workers share one page-cache copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

try:  # POSIX only; without it concurrent builders just duplicate the work.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

META = "meta.json"


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def is_cached(root: Path, key: str) -> bool:
    """Whether ``root/key`` holds a complete entry."""
    return (Path(root) / key / META).is_file()


def load_arrays(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All ``*.npy`` of a complete entry, memory-mapped read-only, and its meta dict."""
    folder = Path(folder)
    meta = json.loads((folder / META).read_text())
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))}
    return arrays, meta


def write_arrays(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write ``arrays`` as ``<name>.npy`` and then ``meta.json`` (the completeness marker)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr))
    (folder / META).write_text(json.dumps(meta, indent=1, sort_keys=True))


def cached_arrays(
    root: Path | str,
    key: str,
    build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load ``root/key`` or, the first time, run ``build() -> (arrays, meta)`` and store it atomically.

    Returns memory-mapped arrays and the meta dict; ``meta["cache_dir"]`` is set to the entry folder.
    """
    root = Path(root)
    final = root / key
    if not is_cached(root, key):
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root / f"{key}.lock"):
            if not is_cached(root, key):  # nobody finished it while we waited for the lock
                arrays, meta = build()
                tmp = root / f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                try:
                    write_arrays(tmp, arrays, meta)
                    if final.exists() and not is_cached(root, key):
                        shutil.rmtree(final, ignore_errors=True)  # debris of a killed writer
                    os.replace(tmp, final)
                except OSError:
                    if not is_cached(root, key):
                        raise
                    # Another process (without the lock) won the race: use its copy.
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    arrays, meta = load_arrays(final)
    meta["cache_dir"] = str(final)
    return arrays, meta
