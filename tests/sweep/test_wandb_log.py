"""W&B media helpers: label maps, class strips, flattened configs."""

from __future__ import annotations

import numpy as np

from attrsearch.sweep.wandb_log import class_strip, flatten, gt_label_map, label_map


def test_label_map_by_hand():
    masks = np.zeros((3, 2, 2), dtype=np.float32)
    masks[0, 0, 0] = 0.9  # class 0 clearly on
    masks[1, 0, 1] = 0.6
    masks[2, 0, 1] = 0.7  # class 2 beats class 1
    masks[1, 1, 0] = 0.4  # below threshold
    assert label_map(masks).tolist() == [[1, 3], [0, 0]]


def test_gt_label_map_skips_void():
    gt = np.zeros((2, 2, 2), dtype=np.uint8)
    gt[1, 0, 0] = 1
    gt[0, 1, 1] = 1
    gt[1, 1, 1] = 1  # both classes: the first wins
    gt[:, 0, 1] = 255  # void
    assert gt_label_map(gt).tolist() == [[2, 0], [0, 1]]


def test_class_strip_shape_and_values():
    image = np.full((2, 3, 3), 7, dtype=np.uint8)
    masks = np.stack([np.ones((2, 3)), np.zeros((2, 3))]).astype(np.float32)
    strip = class_strip(image, masks)
    assert strip.shape == (2, 9, 3) and strip.dtype == np.uint8
    assert (strip[:, :3] == 7).all() and (strip[:, 3:6] == 255).all() and (strip[:, 6:] == 0).all()


def test_flatten_nested_config():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}, "f": None}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
        "f": None,
    }
