"""Occlusion augmentation of the Explanandum recipe: visible share, fill value, reproducibility."""

import pytest
import torch

from attrsearch.config.experiment import OcclusionConfig
from attrsearch.train.augment import blotch_keep_masks, cutout_keep_masks, occlude, random_hflip


@pytest.mark.parametrize("make", [blotch_keep_masks, cutout_keep_masks])
def test_keep_masks_keep_the_requested_share(make):
    keep = torch.tensor([0.1, 0.5, 0.9])
    masks = make(3, 32, 48, keep, torch.Generator().manual_seed(0))
    assert masks.shape == (3, 1, 32, 48)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    share = masks.flatten(1).mean(1)
    assert torch.allclose(share, keep, atol=0.06)


def test_occlude_fills_with_mean_colour_and_spares_the_rest():
    images = torch.randn(64, 3, 16, 16) + 5.0  # no pixel is 0 before occlusion
    cfg = OcclusionConfig(prob=0.5, kind="mixed", min_keep=0.2, max_keep=0.6)
    out = occlude(images, cfg, torch.Generator().manual_seed(1))
    changed = (out != images).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48  # about half the batch
    assert torch.equal(out[~changed], images[~changed])
    zeros = (out[changed] == 0).all(1)  # occluded pixels are 0 in every channel (the mean colour)
    share = zeros.flatten(1).float().mean(1)
    assert bool(((share > 0.3) & (share < 0.85)).all())


def test_occlude_is_reproducible_and_off_at_prob_zero():
    images = torch.randn(8, 3, 16, 16)
    cfg = OcclusionConfig(prob=1.0)
    a = occlude(images, cfg, torch.Generator().manual_seed(3))
    b = occlude(images, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(occlude(images, OcclusionConfig(prob=0.0), torch.Generator().manual_seed(3)), images)


def test_hflip_flips_some_images_exactly():
    """Each image is either kept or mirrored exactly; over a seeded batch both happen, about half each,
    and the choice follows the generator (an identity "flip" fails here)."""
    n = 64
    images = torch.arange(n * 3 * 2 * 5, dtype=torch.float32).view(n, 3, 2, 5)
    out = random_hflip(images, torch.Generator().manual_seed(0))
    kept = [torch.equal(out[i], images[i]) for i in range(n)]
    mirrored = [torch.equal(out[i], images[i].flip(-1)) for i in range(n)]
    assert all(k != f for k, f in zip(kept, mirrored))  # exactly one of the two (no column is symmetric)
    assert 16 <= sum(mirrored) <= 48
    expected = (torch.rand(n, generator=torch.Generator().manual_seed(0)) < 0.5).tolist()
    assert mirrored == expected
