"""Dataset arrays as a cache entry (``attrsearch.cache``): a folder of ``.npy`` arrays + ``meta.json``.

Layout: ``root/<key>/{<name>.npy..., meta.json}``, built once per key under a lock and published
atomically (see ``attrsearch.cache.CacheEntry``). Arrays come back memory-mapped read-only
(``np.load(mmap_mode="r")``) so that trials and DataLoader workers share one page-cache copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from attrsearch.cache import META, CacheEntry, read_meta, seal, write_meta

# Bump when the layout of an arrays entry changes: older entries are then rebuilt.
ARRAYS_VERSION = 1


def is_cached(root: Path, key: str) -> bool:
    """Whether ``root/key`` holds a complete entry."""
    return CacheEntry(Path(root), "", key, ARRAYS_VERSION).exists()


def load_arrays(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All ``*.npy`` of a complete entry, memory-mapped read-only, and its meta dict."""
    folder = Path(folder)
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))}
    return arrays, read_meta(folder)


def write_arrays(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write ``arrays`` as ``<name>.npy`` and then ``meta.json`` (the completeness marker, with checksums)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_arrays(folder, arrays)
    write_meta(folder, seal(folder, meta))


def save_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(arr))


def cached_arrays(
    root: Path | str,
    key: str,
    build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load ``root/key`` or, the first time, run ``build() -> (arrays, meta)`` and store it atomically.

    Returns memory-mapped arrays and the meta dict; ``meta["cache_dir"]`` is set to the entry folder.
    """
    entry = CacheEntry(Path(root), "", key, ARRAYS_VERSION)

    def write(folder: Path) -> dict[str, Any]:
        arrays, meta = build()
        save_arrays(folder, arrays)
        return meta

    entry.build(write)
    arrays, meta = load_arrays(entry.path)
    meta["cache_dir"] = str(entry.path)
    return arrays, meta


__all__ = ["META", "cached_arrays", "is_cached", "load_arrays", "write_arrays"]
