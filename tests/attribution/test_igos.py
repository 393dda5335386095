"""iGOS++: the objective falls (monotone line search), maps in [0, 1], bilateral TV weights image edges."""

from __future__ import annotations

import torch

from attrsearch.attribution.methods._common import gaussian_blur
from attrsearch.attribution.methods.igos import IGOSOptions, bilateral_tv, igos, igos_rows


def test_objective_decreases(small_cnn, images):
    opts = IGOSOptions(iterations=6, ig_steps=4, mask_size=8, l1=0.1)
    history: list[torch.Tensor] = []
    d, i = igos_rows(small_cnn, images, gaussian_blur(images, 2.0), torch.tensor([0, 1]), opts, history)
    obj = torch.stack(history)  # (iterations + 1, rows)
    assert (obj[1:] <= obj[:-1] + 1e-7).all()
    assert (obj[-1] < obj[0] - 1e-3).all()
    for m in (d, i):
        assert m.shape == (2, 8, 8) and m.min() >= 0 and m.max() <= 1 and m.max() > 0


def test_bilateral_tv_discounts_image_edges():
    mask = torch.zeros(1, 4, 4)
    mask[0, :, 2:] = 1.0
    flat = torch.zeros(1, 3, 4, 4)
    edge = flat.clone()
    edge[0, :, :, 2:] = 3.0  # an image edge where the mask changes
    assert bilateral_tv(mask, edge, 0.5, 2.0) < 0.01 * bilateral_tv(mask, flat, 0.5, 2.0)


def test_igos_maps(small_cnn, images):
    maps = igos(small_cnn, images, iterations=2, ig_steps=2, mask_size=8)
    assert maps.shape == (2, 3, 32, 32)
    assert maps.min() >= 0 and maps.max() <= 1
