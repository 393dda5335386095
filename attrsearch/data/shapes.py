"""The built-in ``shapes`` benchmark: procedural images with exact masks, boxes and a planted context bias.

Nothing is downloaded; everything follows from ``ShapesConfig``, the image size and
``GENERATOR_VERSION``. A class is a (shape, colour) pair laid out so that every shape and every
colour belongs to two classes (for ``num_classes >= 4``): neither cue alone names the class. Hard
negatives are unlabelled objects with a class's shape in another class's colour. The drawing
(class layout, shapes, cues, ``Painter``) is in ``attrsearch.data.shapes_render``; this module
generates the splits, caches them and serves them as a dataset.

Images are drawn in this order: textured background (procedural noise and/or scikit-image's
CC0 textures), clutter (blobs and strokes), context cues, objects (later objects occlude earlier
ones). Objects are drawn without anti-aliasing, so the pixel masks are exact: a class mask is the
visible pixels of its instances; a box is the box of one instance's visible pixels; ``context``
is the visible pixels of the cues. Splits use independent random streams
``SeedSequence([seed, split_id])`` and are cached as arrays (``attrsearch.data.cache``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from attrsearch.config import DataConfig, ShapesConfig, stable_hash
from attrsearch.data.base import AttributionDataset, DatasetInfo, normalization_stats
from attrsearch.data.cache import cached_arrays, load_arrays
from attrsearch.data.registry import register_dataset
from attrsearch.data.shapes_render import (  # noqa: F401  (the class layout, read by tests and users)
    COLOURS,
    CUES,
    SHAPES,
    Painter,
    class_names,
    class_table,
    cue_of_class,
    hard_negatives,
)

# Bump when the drawing changes: it is part of the cache key.
GENERATOR_VERSION = 2

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def generate_split(cfg: ShapesConfig, image_size: int, split: str) -> dict[str, np.ndarray]:
    """Draw a whole split. Arrays: images (N,H,W,3) uint8, instances (N,H,W) uint8 (0 = none,
    j+1 = box j), boxes (N,K,5) int32 (x0,y0,x1,y1 exclusive, class; class -1 = padding),
    labels (N,C) uint8, context (N,H,W) uint8; K = ``max_objects``."""
    n = {"train": cfg.num_train, "val": cfg.num_val, "test": cfg.num_test}[split]
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, SPLIT_IDS[split]]))
    painter = Painter(cfg, image_size, split)
    out = empty_split_arrays(n, image_size, cfg.max_objects, cfg.num_classes)
    for i in range(n):
        store_sample(out, i, painter.render(rng))
    return out


def empty_split_arrays(n: int, H: int, K: int, C: int) -> dict[str, np.ndarray]:
    """The arrays of ``n`` samples (see ``generate_split``), filled by ``store_sample``."""
    return {
        "images": np.empty((n, H, H, 3), np.uint8),
        "instances": np.empty((n, H, H), np.uint8),
        "boxes": np.full((n, K, 5), -1, np.int32),
        "labels": np.zeros((n, C), np.uint8),
        "context": np.empty((n, H, H), np.uint8),
    }


def store_sample(arrays: dict[str, np.ndarray], i: int, s: dict[str, Any]) -> None:
    """Write one rendered sample ``s`` (``Painter.render`` / ``compose``) at index ``i``."""
    arrays["images"][i] = s["image"]
    arrays["instances"][i] = s["instances"]
    arrays["context"][i] = s["context"]
    for j, box in enumerate(s["boxes"]):
        arrays["boxes"][i, j] = box
        arrays["labels"][i, box[4]] = 1


def fingerprint(cfg: DataConfig) -> int:
    """What decides the built-in data besides its config: the generator version (an int)."""
    return GENERATOR_VERSION


def cache_key(cfg: ShapesConfig, image_size: int) -> str:
    """The arrays' key: a hash of the generator settings, the image size and the generator version."""
    return stable_hash({"shapes": cfg.model_dump(mode="json"), "image_size": image_size, "version": GENERATOR_VERSION})


def load_split(
    cfg: ShapesConfig, image_size: int, split: str, cache_dir: Path
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The split's arrays (memory-mapped) from ``cache_dir/shapes/<key>/<split>/``, generated on first use."""

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = generate_split(cfg, image_size, split)
        meta = {
            "generator_version": GENERATOR_VERSION,
            "split": split,
            "size": int(arrays["images"].shape[0]),
            "image_size": image_size,
            "class_names": list(class_names(cfg.num_classes)),
            "cues": {str(k): v for k, v in cue_of_class(cfg).items()},
            "shapes": cfg.model_dump(mode="json"),
        }
        return arrays, meta

    return cached_arrays(Path(cache_dir) / "shapes" / cache_key(cfg, image_size), split, build)


class ShapesDataset(AttributionDataset):
    """One split of the built-in benchmark over cached arrays; ``__getitem__`` only converts.

    Pickling (spawned DataLoader workers, Ray) sends the cache folder, not the arrays: the
    receiver memory-maps the same files.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        info: DatasetInfo,
        split: str,
        limit: int | None = None,
        folder: str | None = None,
    ):
        self.arrays = arrays
        self.folder = folder
        self.info = info
        self.split = split
        n = arrays["images"].shape[0]
        self.length = n if limit is None else min(n, limit)
        self._mean = torch.tensor(info.mean, dtype=torch.float32).view(3, 1, 1)
        self._scale = 1.0 / (255.0 * torch.tensor(info.std, dtype=torch.float32).view(3, 1, 1))
        self._ids = np.arange(1, info.num_classes + 1, dtype=np.uint8)[:, None, None]

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.folder is not None:
            state["arrays"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.arrays is None:
            self.arrays = load_arrays(Path(self.folder))[0]

    def instance_masks(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Visible pixels of each labelled instance: ((N, H, W) uint8 in {0,1}, (N,) int64 classes)."""
        boxes = np.asarray(self.arrays["boxes"][index])
        boxes = boxes[boxes[:, 4] >= 0]
        inst = np.asarray(self.arrays["instances"][index])
        masks = (inst[None] == np.arange(1, len(boxes) + 1, dtype=np.uint8)[:, None, None]).astype(np.uint8)
        return masks, boxes[:, 4].astype(np.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        a = self.arrays
        image = torch.from_numpy(np.array(a["images"][index])).permute(2, 0, 1).float()
        image = image * self._scale - self._mean * (255.0 * self._scale)
        boxes = np.asarray(a["boxes"][index])
        boxes = boxes[boxes[:, 4] >= 0]
        lut = np.zeros(a["boxes"].shape[1] + 1, np.uint8)
        lut[1 : len(boxes) + 1] = boxes[:, 4] + 1
        seg = lut[np.asarray(a["instances"][index])]
        return {
            "image": image,
            "labels": torch.from_numpy(np.asarray(a["labels"][index], dtype=np.float32)),
            "masks": torch.from_numpy((seg[None] == self._ids).astype(np.uint8)),
            "has_masks": True,
            "boxes": torch.from_numpy(boxes[:, :4].astype(np.float32)),
            "box_labels": torch.from_numpy(boxes[:, 4].astype(np.int64)),
            "context": torch.from_numpy(np.array(a["context"][index])),
            "index": index,
        }


@register_dataset(
    "shapes",
    fingerprint=fingerprint,
    needs_root=False,
    num_classes=lambda cfg: cfg.shapes.num_classes,
    doc="built-in procedural shapes with exact masks and a planted context bias",
)
def build_shapes(cfg: DataConfig, split: str, cache_dir: Path) -> ShapesDataset:
    """Split ``split`` of the built-in benchmark (generated and cached on first use)."""
    arrays, meta = load_split(cfg.shapes, cfg.image_size, split, cache_dir)
    mean, std = normalization_stats(cfg.normalization)
    info = DatasetInfo(
        name="shapes",
        num_classes=cfg.shapes.num_classes,
        class_names=tuple(meta["class_names"]),
        image_size=cfg.image_size,
        mean=mean,
        std=std,
        has_context=True,
        context_classes=tuple(cfg.shapes.context.biased_classes),
    )
    limit = {"train": cfg.max_train, "val": cfg.max_val, "test": cfg.max_test}[split]
    return ShapesDataset(arrays, info, split, limit, folder=meta["cache_dir"])
