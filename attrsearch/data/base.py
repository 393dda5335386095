"""The one sample interface every dataset (built-in, VOC, COCO) returns, and batching.

A sample is a dict:

- ``image``:      (3, H, W) float32, normalised with the dataset's ``mean``/``std``
                  (zero = the mean colour, which is what masking fills in).
- ``labels``:     (C,) float32 multi-hot.
- ``masks``:      (C, H, W) uint8 per-class pixel masks: 1 inside, 0 outside, 255 void
                  (VOC's object borders, unannotated pixels). All 255 when ``has_masks`` is false.
- ``has_masks``:  bool, whether this image has pixel ground truth (VOC: the segmented subset; COCO-format
                  data without segmentation: its box masks, see ``DatasetInfo.ground_truth``).
- ``boxes``:      (N, 4) float32 instance boxes ``x0, y0, x1, y1`` in pixels of the resized image
                  (x1/y1 exclusive).
- ``box_labels``: (N,) int64 class index of each box.
- ``context``:    (H, W) uint8, 1 on a planted context cue (built-in data only; zeros elsewhere).
- ``index``:      int, position in the split.

``collate_samples`` stacks the fixed-size fields and keeps boxes as lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

VOID = 255

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalization_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std for ``DataConfig.normalization`` (the paper: ImageNet statistics)."""
    if name == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD
    if name == "none":
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    raise ValueError(f"unknown normalization {name!r}")


@dataclass(frozen=True)
class DatasetInfo:
    """What models and metrics need to know about a dataset."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    has_context: bool = False
    context_classes: tuple[int, ...] = ()  # classes with a planted context cue (built-in data)
    # What the pixel ground truth (``masks`` where ``has_masks``) is: ``masks`` segmentation masks,
    # ``boxes`` the annotation boxes drawn as masks (no segmentation in the data), ``masks+boxes``
    # segmentation where the data has it and boxes elsewhere, ``none`` no image has any (pixel
    # metrics are omitted). Metrics record it as ``segmentation/ground_truth``.
    ground_truth: str = "masks"


class AttributionDataset(torch.utils.data.Dataset):
    """Base class: subclasses set ``info`` and ``split`` and implement ``__len__``/``__getitem__``."""

    info: DatasetInfo
    split: str

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of samples into a batch; ``boxes``/``box_labels`` stay lists of tensors."""
    batch: dict[str, Any] = {}
    for key in ("image", "labels", "masks", "context"):
        batch[key] = torch.stack([s[key] for s in samples])
    batch["has_masks"] = torch.tensor([bool(s["has_masks"]) for s in samples])
    batch["index"] = torch.tensor([int(s["index"]) for s in samples])
    batch["boxes"] = [s["boxes"] for s in samples]
    batch["box_labels"] = [s["box_labels"] for s in samples]
    return batch


def file_stamp(path: Path | str) -> list[int] | None:
    """``[size in bytes, mtime in ns]`` of a file for a fingerprint; None when it is missing."""
    try:
        st = Path(path).expanduser().stat()
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns)]


def _stats(images: torch.Tensor, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean``/``std`` as (1, 3, 1, 1) tensors on the images' device and dtype."""
    return tuple(torch.as_tensor(v, dtype=images.dtype, device=images.device).view(1, 3, 1, 1) for v in (mean, std))


def denormalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """(B, 3, H, W) normalised with per-channel ``mean``/``std`` (e.g. ``DatasetInfo``'s) -> RGB in [0, 1]."""
    m, s = _stats(images, mean, std)
    return (images * s + m).clamp(0.0, 1.0)


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> normalised with per-channel ``mean``/``std``."""
    m, s = _stats(images, mean, std)
    return (images - m) / s
