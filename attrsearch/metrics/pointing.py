"""The pointing game (Zhang et al. 2016, as implemented in the TorchRay benchmark).

For each (image, present class) the maximum of that class's map is the "point"; it is a hit if a
ground-truth pixel of the class lies within ``tolerance`` pixels (Euclidean, inclusive; TorchRay:
15 px at 224 px input) of it. Ground truth = the class's pixel mask where the image is
annotated, else the union of the class's boxes. Score = mean over classes of
hits / (hits + misses) (classes without cases are left out). TorchRay's "difficult" subset is not
computed.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pointing_hits(maps: Tensor, gt: Tensor, tolerance: float) -> Tensor:
    """maps: (N, H, W) saliency; gt: (N, H, W) bool. Returns (N,) bool hits.

    The point is the first maximum in row-major order (as ``argmax``); only the distance from that
    one point to the ground truth is needed, so no dilation of the masks is computed.
    """
    n, h, w = maps.shape
    flat_idx = maps.flatten(1).argmax(dim=1)
    py, px = (flat_idx // w).float(), (flat_idx % w).float()
    ys = torch.arange(h, device=maps.device, dtype=torch.float32)
    xs = torch.arange(w, device=maps.device, dtype=torch.float32)
    d2 = (ys[None, :, None] - py[:, None, None]) ** 2 + (xs[None, None, :] - px[:, None, None]) ** 2
    return (gt & (d2 <= tolerance**2)).flatten(1).any(dim=1)


def pointing_accuracy(hits: Tensor, classes: Tensor, num_classes: int) -> tuple[float, Tensor]:
    """Mean over classes of hits / cases. hits: (N,) bool; classes: (N,) int64 class of each case.

    Returns (score, per-class accuracy (num_classes,) with NaN for classes without cases).
    """
    cases = torch.bincount(classes, minlength=num_classes).double()
    got = torch.bincount(classes, weights=hits.double(), minlength=num_classes)
    per_class = torch.where(cases > 0, got / cases.clamp_min(1.0), torch.full_like(cases, float("nan")))
    seen = cases > 0
    return (per_class[seen].mean().item() if seen.any() else float("nan")), per_class
