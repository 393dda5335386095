"""Time the pre-flight dataset scan (``attrsearch.data.scan.scan_dataset``) on a generated VOC folder.

Writes ``--images`` JPEG images (``--width`` x ``--height``, noise, quality 90) in the VOC-2007 layout
into a temporary folder (annotation XMLs, ``ImageSets/Main/{train,val,test}.txt`` splitting them
80/10/10, and a palette segmentation PNG for the first ``--masks`` share of them), then times:

- cold: the first ``scan_dataset`` of all three splits (parses the split files and XMLs, opens every image
  header, reads every JPEG's last bytes, decodes every mask), page cache warm from the writing;
- cached: the same call again (the clean scan is a cache entry keyed by the dataset fingerprint);
- for scale: a full decode of every image (``img.load()``), what a scan without the end-marker check
  would need to catch truncated JPEGs.

Usage: ``python analysis/benchmarks/bench_scan.py [--images 10000] [--width 64] [--height 48] [--masks 1.0]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from attrsearch.config import DataConfig
from attrsearch.data.export import voc_palette
from attrsearch.data.scan import scan_dataset
from attrsearch.data.voc import VOC_CLASSES


def write_voc(base: Path, n: int, width: int, height: int, mask_share: float) -> Path:
    """``base/VOC2007`` with ``n`` images; returns that folder."""
    voc = base / "VOC2007"
    for d in ("JPEGImages", "Annotations", "ImageSets/Main", "SegmentationClass"):
        (voc / d).mkdir(parents=True)
    rng = np.random.default_rng(0)
    palette = voc_palette()
    ids = [f"{i:06d}" for i in range(n)]
    n_masks = round(mask_share * n)
    for i, image_id in enumerate(ids):
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=90)
        k = i % len(VOC_CLASSES)
        (voc / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size><object><name>{VOC_CLASSES[k]}</name><difficult>0</difficult><bndbox>"
            f"<xmin>1</xmin><ymin>1</ymin><xmax>{width // 2}</xmax><ymax>{height // 2}</ymax></bndbox>"
            "</object></annotation>"
        )
        if i < n_masks:
            seg = np.zeros((height, width), np.uint8)
            seg[: height // 2, : width // 2] = k + 1
            seg[height // 2, : width // 2] = 255
            img = Image.fromarray(seg).convert("P")
            img.putpalette(palette)
            img.save(voc / "SegmentationClass" / f"{image_id}.png")
    a, b = int(0.8 * n), int(0.9 * n)
    for split, part in (("train", ids[:a]), ("val", ids[a:b]), ("test", ids[b:])):
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in part))
    return voc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--masks", type=float, default=1.0, help="share of images with a segmentation PNG")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    try:
        t0 = time.perf_counter()
        voc = write_voc(tmp / "data", args.images, args.width, args.height, args.masks)
        shape = f"{args.width} x {args.height} ({args.masks:.0%} with masks)"
        print(f"wrote {args.images} images of {shape} in {time.perf_counter() - t0:.1f} s")
        cfg = DataConfig(dataset="voc2007", root=voc)
        cache = tmp / "cache"
        t0 = time.perf_counter()
        scan_dataset(cfg, cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        scan_dataset(cfg, cache)
        cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        for path in sorted((voc / "JPEGImages").iterdir()):
            with Image.open(path) as img:
                img.load()
        full = time.perf_counter() - t0
        print(f"scan of {args.images} images: cold {cold:.2f} s, cached {cached * 1000:.1f} ms")
        print(f"for scale, a full decode of every image: {full:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
