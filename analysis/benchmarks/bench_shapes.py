"""Time the built-in ``shapes`` generator (brief: 2000+500+500 images at 64 px in at most 30 s).

Usage: ``python analysis/benchmarks/bench_shapes.py [--image-size 64] [--cache DIR]``.
Prints the generation time per split and the load time of the cached copy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from attrsearch.config import DataConfig
from attrsearch.data import build_dataset, collate_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cache", default=None, help="cache folder (default: a fresh temp folder)")
    args = parser.parse_args()
    cache = Path(args.cache or tempfile.mkdtemp(prefix="bench-shapes-"))
    cfg = DataConfig(dataset="shapes", image_size=args.image_size)

    total = 0.0
    for split in ("train", "val", "test"):
        t = time.perf_counter()
        ds = build_dataset(cfg, split, cache)
        dt = time.perf_counter() - t
        total += dt
        print(f"generate {split:5s}: {len(ds):5d} images in {dt:6.2f} s")
    print(f"generate total: {total:.2f} s (limit 30 s, aim < 10 s)")

    t = time.perf_counter()
    ds = build_dataset(cfg, "train", cache)
    print(f"load cached train: {time.perf_counter() - t:.3f} s")
    t = time.perf_counter()
    n = min(len(ds), 1024)
    for start in range(0, n, 64):
        collate_samples([ds[i] for i in range(start, min(n, start + 64))])
    dt = time.perf_counter() - t
    print(f"__getitem__ + collate: {1e6 * dt / n:.0f} us per sample ({n} samples)")


if __name__ == "__main__":
    main()
