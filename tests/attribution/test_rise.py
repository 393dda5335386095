"""RISE against a literal per-image, per-mask loop (Petsiuk et al. 2018, eq. 6)."""

from __future__ import annotations

import pytest
import torch

from attrsearch.attribution.methods.rise import rise, rise_masks


def literal_rise(model, images, n, cells, p, seed):
    masks = rise_masks(n, cells, p, tuple(images.shape[-2:]), seed)
    out = []
    for x in images:
        sal = None
        for m in masks:
            with torch.no_grad():
                probs = torch.sigmoid(model((x * m)[None]))[0]  # (C,)
            term = probs[:, None, None] * m[None]
            sal = term if sal is None else sal + term
        out.append(sal / (n * p))
    return torch.stack(out)


def test_rise_matches_literal_loop(small_cnn, images):
    ours = rise(small_cnn, images, masks=40, cells=4, p=0.5, seed=3, batch=14)
    ref = literal_rise(small_cnn, images, 40, 4, 0.5, 3)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_rise_independent_of_chunking_and_seeded(small_cnn, images):
    a = rise(small_cnn, images, masks=30, batch=4, seed=1)
    b = rise(small_cnn, images, masks=30, batch=64, seed=1)
    c = rise(small_cnn, images, masks=30, batch=64, seed=2)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("p", [0.25, 0.5])
def test_masks_follow_the_paper(p):
    masks = rise_masks(2000, 7, p, (48, 40), seed=0)
    assert masks.shape == (2000, 48, 40)
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean().item() - p) < 0.02
    # random shifts: the masks are not all aligned to one cell grid
    assert masks[:, 0, 0].std() > 0
    assert not torch.equal(masks[0], masks[1])
