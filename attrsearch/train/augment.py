"""Batch augmentations for training the Explanandum.

Random occlusion ("mask augmentation") teaches the classifier that mean-colour regions are
neutral, so that masked images (zero = mean colour in normalised space) stay in distribution
when the Explainer is trained against it. It uses no ground-truth masks, so the same recipe
works on VOC/COCO labels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def blotch_keep_masks(n: int, h: int, w: int, keep: Tensor, generator: torch.Generator) -> Tensor:
    """Smooth random blobs: upsampled low-resolution noise thresholded at a per-image quantile.

    keep: (n,) share of pixels to keep visible. Returns (n, 1, h, w) float {0, 1}.
    """
    cells = int(torch.randint(3, 8, (1,), generator=generator))
    noise = torch.rand(n, 1, cells, cells, generator=generator)
    smooth = F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False).flatten(1)
    # The value at rank (1 - keep) * Z of each image is its threshold: the top `keep` share stays.
    rank = ((1.0 - keep) * h * w).long().clamp(0, h * w - 1)
    threshold = smooth.sort(dim=1).values.gather(1, rank[:, None])
    return (smooth >= threshold).float().view(n, 1, h, w)


def cutout_keep_masks(n: int, h: int, w: int, keep: Tensor, generator: torch.Generator) -> Tensor:
    """One random rectangle removed per image, of area (1 - keep) and random aspect ratio.

    Returns (n, 1, h, w) float {0, 1}.
    """
    drop = (1.0 - keep).clamp(0.0, 1.0)
    log_ratio = (torch.rand(n, generator=generator) - 0.5) * math.log(4.0)
    ratio = log_ratio.exp()
    area = drop * h * w
    # When one side hits the image border, the other grows so the removed area stays as asked.
    rh = (area / ratio).sqrt().clamp(min=1.0, max=h)
    rw = (area / rh).clamp(max=w)
    rh = (area / rw.clamp(min=1.0)).clamp(max=h).round()
    rw = rw.round()
    y0 = (torch.rand(n, generator=generator) * (h - rh + 1)).floor()
    x0 = (torch.rand(n, generator=generator) * (w - rw + 1)).floor()
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    inside = (
        (ys >= y0.view(n, 1, 1))
        & (ys < (y0 + rh).view(n, 1, 1))
        & (xs >= x0.view(n, 1, 1))
        & (xs < (x0 + rw).view(n, 1, 1))
    )
    return (~inside).float().unsqueeze(1)


def occlude(images: Tensor, cfg, generator: torch.Generator) -> Tensor:
    """Occlude a random ``cfg.prob`` share of a batch with blotches and/or cutouts (``OcclusionConfig``).

    images: (B, 3, H, W) normalised; occluded pixels become 0 (the mean colour).
    """
    b, _, h, w = images.shape
    chosen = torch.rand(b, generator=generator) < cfg.prob
    if not chosen.any() or cfg.prob == 0:
        return images
    n = int(chosen.sum())
    keep = cfg.min_keep + (cfg.max_keep - cfg.min_keep) * torch.rand(n, generator=generator)
    if cfg.kind == "blotch":
        masks = blotch_keep_masks(n, h, w, keep, generator)
    elif cfg.kind == "cutout":
        masks = cutout_keep_masks(n, h, w, keep, generator)
    else:
        use_blotch = torch.rand(n, generator=generator) < 0.5
        masks = torch.where(
            use_blotch.view(n, 1, 1, 1),
            blotch_keep_masks(n, h, w, keep, generator),
            cutout_keep_masks(n, h, w, keep, generator),
        )
    out = images.clone()
    out[chosen] = images[chosen] * masks.to(images.device, images.dtype)
    return out


def random_hflip(images: Tensor, generator: torch.Generator) -> Tensor:
    """Flip a random half of the batch horizontally. images: (B, 3, H, W)."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    if not flip.any():
        return images
    out = images.clone()
    out[flip] = images[flip].flip(-1)
    return out
