"""The pre-flight scan of a file-based dataset (VOC, COCO, folder): every file a run will read is checked before
anything is trained, cached or written, so that a bad file is one line at the start and not a traceback
in the first epoch (or, for a COCO image, after the Explanandum was trained and cached).

What is checked, per image (``ScanTarget``, listed by the ``scan`` of the dataset's ``DatasetSpec``):

- the image exists and PIL reads its header, within ``PIL.Image.MAX_IMAGE_PIXELS`` (``open_image``),
  in a mode ``read_rgb`` converts (``check_rgb_mode``: a float image is refused);
- it is complete. Truncation is invisible in the header and to ``Image.verify()`` for JPEG (measured:
  a JPEG cut at 10%..99% of its bytes opens and verifies, and fails only at ``load()``), so the scan reads
  the file's last bytes: a JPEG must end with its EOI marker (``FF D9``), a PNG with its ``IEND`` chunk.
  A file that does not (a truncated one, or one with bytes appended after the end) and every other
  format is decoded in full, which decides (PIL refuses truncated data);
- its (width, height) is the one its annotation records, where it records one (COCO);
- its segmentation PNG, where there is one (VOC): a palette or greyscale image (an RGB rendering of the
  colours is refused), of the image's own size (never resized to fit: that would misalign the masks),
  holding only class indices 0..C and 255 (void). The indices need the decoded pixels: PIL's C
  ``histogram()`` counts them without a numpy copy;
- its per-class mask PNGs, where it has them (folder): palette or greyscale, the image's size, complete.

Problems of the annotation files themselves (a CSV label not in the class list, an image id listed twice
in a COCO file, a split file naming an unknown image) are raised by the dataset's scanner while it lists
the targets, as one line naming the file.

All files are checked; the first problem is raised as a ``UserError`` naming the file, with the count of
the others. A clean scan is recorded as a cache entry ``<cache_dir>/scans/<key>/<split>`` keyed by the
``DataConfig`` fields and ``attrsearch.data.fingerprint`` (the split files, annotation files' size and
mtime), so it runs once per dataset version; a failed scan records nothing. The fingerprint does not stamp
each image, so a file damaged after a clean scan is still refused, with one line, when it is read.
``analysis/benchmarks/bench_scan.py`` measures the cold and the cached scan of 10,000 images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from attrsearch.cache import CacheEntry
from attrsearch.config.base import stable_hash
from attrsearch.data import DATASETS, SPLITS, ScanTarget, fingerprint
from attrsearch.data.images import check_label_image, check_rgb_mode, decode, open_image
from attrsearch.errors import UserError

# Bump when the scan checks more: older clean scans are then redone.
SCAN_VERSION = 2
KIND = "scans"

JPEG_END = b"\xff\xd9"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# Threads overlap the file reads of a cold disk; with a warm page cache on 2 busy cores they neither
# helped nor hurt (1, 4, 8 threads within 20%, analysis/benchmarks/NOTES.md).
MAX_THREADS = 8


def scan_key(cfg) -> str:
    """The cache key of ``cfg``'s scan: its fields, the dataset fingerprint and the scan version."""
    return stable_hash({"data": cfg.model_dump(mode="json"), "fingerprint": fingerprint(cfg), "scan": SCAN_VERSION})


def scan_dataset(cfg, cache_dir: Path | str, splits: Iterable[str] = SPLITS) -> None:
    """Check every file the ``splits`` of ``cfg`` (a ``DataConfig``) read; ``UserError`` naming the first bad
    file. Datasets without a scanner (the generated ``shapes``) need none. Runs once per dataset version."""
    scanner = DATASETS.get(cfg.dataset).scan if cfg.dataset in DATASETS else None
    if scanner is None:
        return
    key = scan_key(cfg)
    entries = {s: CacheEntry(Path(cache_dir), KIND, f"{key}/{s}", SCAN_VERSION) for s in dict.fromkeys(splits)}
    todo = [split for split, entry in entries.items() if not entry.exists()]
    if not todo:
        return
    started = time.perf_counter()
    targets: dict[Path, ScanTarget] = {}
    counts = {}
    for split in todo:
        listed = scanner(cfg, split)
        counts[split] = len(listed)
        for target in listed:
            targets.setdefault(target.image, target)
    problems = check_targets(list(targets.values()))
    if problems:
        more = f" (and {len(problems) - 1} more bad files)" if len(problems) > 1 else ""
        raise UserError(problems[0] + more)
    seconds = time.perf_counter() - started
    for split in todo:  # only a clean scan of every split is recorded
        entries[split].build(lambda folder, n=counts[split]: {"images": n, "seconds": round(seconds, 3)})


def check_targets(targets: list[ScanTarget], threads: int | None = None) -> list[str]:
    """The one-line problem of each bad target, in the order given (empty when all are fine)."""
    if not targets:
        return []
    threads = threads or max(1, min(MAX_THREADS, 2 * (os.cpu_count() or 1), len(targets)))
    if threads == 1:
        results = map(check_target, targets)
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(check_target, targets, chunksize=64))
    return [p for p in results if p is not None]


def check_target(target: ScanTarget) -> str | None:
    """The problem with one image and its mask as one line naming the file, or None."""
    try:
        size = check_image(target.image, target.size)
        if target.mask is not None:
            check_mask(target.mask, target.num_classes, size)
        for path in target.class_masks:
            with open_image(path) as img:
                check_label_image(img, path, size)
                decode(img, path)
    except UserError as err:
        return str(err)
    return None


def check_image(path: Path, expected: tuple[int, int] | None = None) -> tuple[int, int]:
    """Header, mode, completeness and (if ``expected``) size of one image; returns its (width, height)."""
    with open_image(path) as img:
        check_rgb_mode(img, path)
        if expected is not None and tuple(img.size) != tuple(expected):
            raise UserError(
                f"{path}: image is {img.size[0]} x {img.size[1]} but its annotation says {expected[0]} x {expected[1]}"
            )
        if not ends_complete(path, img.format):
            decode(img, path)  # no end marker: only a full decode tells a truncated file from trailing bytes
        return img.size


def check_mask(path: Path, num_classes: int, image_size: tuple[int, int]) -> None:
    """Mode, size (the image's) and class indices (0..C, 255) of one segmentation PNG."""
    with open_image(path) as img:
        check_label_image(img, path, image_size)
        decode(img, path)
        hist = img.histogram()
    bad = [v for v in range(num_classes + 1, 255) if hist[v]]
    if bad:
        raise UserError(f"{path}: class index {max(bad)} outside 1..{num_classes} (and 255 void)")


def ends_complete(path: Path, fmt: str | None) -> bool:
    """Whether a JPEG ends with its EOI marker or a PNG with its IEND chunk (reads the last 16 bytes)."""
    end = {"JPEG": JPEG_END, "MPO": JPEG_END, "PNG": PNG_END}.get(fmt or "")
    if end is None:
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16))
            return fh.read().endswith(end)
    except OSError:
        return False


__all__ = ["SCAN_VERSION", "check_image", "check_mask", "check_target", "check_targets", "scan_dataset", "scan_key"]
