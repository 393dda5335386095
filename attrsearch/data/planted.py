"""A planted cue for any dataset: a translucent watermark or patch with a chosen class correlation.

The built-in generator plants context cues with exact masks; this wrapper does the same for VOC,
COCO or a user's images, so the context metrics (``context/reliance``) and the dependence study run
on real data. It follows Clark, Oliveira, Wilming & Haufe (2026), who paste translucent watermarks
that are absent, a class-dependent confound, or class-independent noise, and Adebayo, Muelly,
Abelson & Kim (ICLR 2022), who plant spurious artefacts in real images.

``data.planted: {kind, class, p, p_test, p_other, alpha, size, position, seed}``: an image whose
labels contain ``class`` carries the cue with probability ``p`` (train; ``p_test`` in val and test,
default ``p``), any other image with probability ``p_other`` (``p == p_other``: the noise
control, a cue as frequent but independent of the class). The draw and the position depend only
on ``(seed, split, index)``: the same image always gets the same cue.

- ``watermark``: a ring with a cross through it, strokes of about 1/8 of its side, in white;
- ``patch``: a square checkered in magenta and green (4 x 4 cells).

The cue is blended in RGB, ``x' = (1 - alpha) x + alpha colour`` on its pixels, after the dataset's
resize, and its pixels (drawn without anti-aliasing, so exact) become the sample's ``context``
mask, joined with any cue the dataset already has; ``info.context_classes`` gains the class. Class
masks and labels are unchanged: a cue over an object stays part of that object's mask.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
import torch

from attrsearch.config.data import PlantedCueConfig
from attrsearch.data.base import AttributionDataset, DatasetInfo, denormalize, normalize
from attrsearch.errors import UserError

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
WATERMARK_COLOUR = (1.0, 1.0, 1.0)
PATCH_COLOURS = ((1.0, 0.0, 1.0), (0.0, 1.0, 0.0))


def cue_pattern(kind: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask (side, side) bool, colour (side, side, 3) float in [0, 1]) of a cue ``side`` pixels wide."""
    colour = np.zeros((side, side, 3), np.float32)
    if kind == "patch":
        cells = (np.arange(side) * 4 // side)[:, None] + (np.arange(side) * 4 // side)[None, :]
        colour[:] = np.where((cells % 2 == 0)[..., None], PATCH_COLOURS[0], PATCH_COLOURS[1])
        return np.ones((side, side), bool), colour
    if kind != "watermark":
        raise ValueError(f"unknown cue kind {kind!r}")
    canvas = np.zeros((side, side), np.uint8)
    t = max(1, round(side / 8))
    c = (side - 1) / 2
    cv2.circle(canvas, (round(c), round(c)), max(1, round(c - t / 2)), 1, t, lineType=cv2.LINE_8)
    inset = round(side * 0.25)
    cv2.line(canvas, (inset, inset), (side - 1 - inset, side - 1 - inset), 1, t, lineType=cv2.LINE_8)
    cv2.line(canvas, (inset, side - 1 - inset), (side - 1 - inset, inset), 1, t, lineType=cv2.LINE_8)
    colour[:] = WATERMARK_COLOUR
    return canvas.astype(bool), colour


def class_index(cfg: PlantedCueConfig, info: DatasetInfo) -> int:
    """The index of ``cfg.class_name`` (a class name or index) in ``info``; a one-line UserError if unknown."""
    name = cfg.class_name
    if isinstance(name, int):
        if 0 <= name < info.num_classes:
            return name
    elif name in info.class_names:
        return info.class_names.index(name)
    shown = ", ".join(info.class_names[:12]) + (", ..." if info.num_classes > 12 else "")
    raise UserError(f"data.planted.class: {name!r} is not a class of {info.name} ({shown})")


class PlantedDataset(AttributionDataset):
    """``base`` with the cue of ``cfg`` planted (samples as in ``attrsearch.data.base``)."""

    def __init__(self, base: AttributionDataset, cfg: PlantedCueConfig, split: str):
        self.base, self.cfg, self.split = base, cfg, split
        info = base.info
        self.target = class_index(cfg, info)
        classes = tuple(sorted(set(info.context_classes) | {self.target})) if info.has_context else (self.target,)
        self.info = dataclasses.replace(info, has_context=True, context_classes=classes)
        self.p_class = cfg.p if split == "train" or cfg.p_test is None else cfg.p_test
        side = max(1, round(cfg.size * info.image_size))
        self.side = min(side, info.image_size)
        mask, colour = cue_pattern(cfg.kind, self.side)
        self.mask = torch.from_numpy(mask)
        self.colour = torch.from_numpy(colour).permute(2, 0, 1)

    def __len__(self) -> int:
        return len(self.base)

    def placement(self, index: int, has_class: bool) -> tuple[int, int] | None:
        """(top, left) of the cue in image ``index``, or None when it carries none."""
        rng = np.random.default_rng([self.cfg.seed, SPLIT_IDS.get(self.split, 3), index])
        draw, y, x = rng.random(), rng.random(), rng.random()
        if draw >= (self.p_class if has_class else self.cfg.p_other):
            return None
        room = self.info.image_size - self.side
        if self.cfg.position == "corner":
            return room, room
        return int(y * (room + 1)), int(x * (room + 1))

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.base[index])
        where = self.placement(index, bool(sample["labels"][self.target] > 0))
        if where is None:
            return sample
        top, left = where
        s, info = self.side, self.info
        rgb = denormalize(sample["image"][None], info.mean, info.std)[0]
        region = rgb[:, top : top + s, left : left + s]
        m = self.mask.to(rgb.dtype) * self.cfg.alpha
        rgb[:, top : top + s, left : left + s] = region * (1 - m) + self.colour.to(rgb.dtype) * m
        sample["image"] = normalize(rgb[None], info.mean, info.std)[0].to(sample["image"].dtype)
        context = sample["context"].clone()
        context[top : top + s, left : left + s] |= self.mask.to(context.dtype)
        sample["context"] = context
        return sample


def planted_dataset(ds: AttributionDataset, cfg: PlantedCueConfig | None, split: str) -> AttributionDataset:
    """``ds`` with the cue of ``cfg`` planted, or ``ds`` itself when ``cfg`` is None."""
    return ds if cfg is None else PlantedDataset(ds, cfg, split)
