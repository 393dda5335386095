"""Extremal perturbations: the energy falls, the area constraint holds, the blur perturbation is right."""

from __future__ import annotations

import pytest
import torch

from attrsearch.attribution.methods.extremal import (
    ExtremalOptions,
    area_penalty,
    blur_perturb,
    blur_pyramid,
    extremal,
    optimize_rows,
)
from attrsearch.errors import UserError


def test_energy_decreases_and_area_is_respected(small_cnn, images):
    opts = ExtremalOptions(iterations=40, areas=[0.1, 0.3])
    pyramid = blur_pyramid(images, opts.levels, 10 * 32 / 224)
    areas = torch.tensor([0.1, 0.3, 0.1, 0.3])
    history: list[torch.Tensor] = []
    masks = optimize_rows(small_cnn, pyramid[[0, 0, 1, 1]], torch.tensor([0, 1, 2, 0]), areas, opts, history)
    energy = torch.stack(history)  # (iterations, rows)
    assert (energy[-5:].mean(0) < energy[:5].mean(0)).all()
    assert masks.shape == (4, 32, 32) and masks.min() >= 0 and masks.max() <= 1
    torch.testing.assert_close(masks.flatten(1).mean(1), areas, atol=0.03, rtol=0)


def test_area_penalty_is_zero_for_the_reference_mask():
    mask = torch.zeros(1, 10, 10)
    mask[0, :2] = 1.0  # 20% of the pixels
    assert area_penalty(mask, torch.tensor([0.2])).item() == 0.0
    assert area_penalty(mask, torch.tensor([0.5])).item() == pytest.approx(0.3)


def test_blur_perturbation_endpoints(images):
    pyramid = blur_pyramid(images, 4, 2.0)
    keep = blur_perturb(pyramid, torch.ones(2, 32, 32))
    drop = blur_perturb(pyramid, torch.zeros(2, 32, 32))
    torch.testing.assert_close(keep, images)
    torch.testing.assert_close(drop, pyramid[:, -1])
    assert (drop - images).abs().mean() > 0.1


def test_extremal_maps_and_targets(small_cnn, images):
    targets = torch.tensor([[True, False, False], [False, False, True]])
    maps = extremal(small_cnn, images, targets, iterations=3, areas=[0.1, 0.2])
    assert maps.shape == (2, 3, 32, 32)
    assert (maps[~targets] == 0).all() and maps[targets].max() > 0
    assert maps.min() >= 0 and maps.max() <= 1


def test_bad_area_is_user_error(small_cnn, images):
    with pytest.raises(UserError, match="--option areas: every area must be in"):
        extremal(small_cnn, images, areas=[0.0])
