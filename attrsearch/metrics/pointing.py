"""The pointing game (Zhang et al. 2018, as benchmarked in TorchRay by Fong et al. 2019).

For each (image, present class) the maximum of that class's map is the "point"; it is a hit if a
ground-truth pixel of the class lies within ``tolerance`` pixels (Euclidean, inclusive; TorchRay:
15 px at 224 px input) of it. Ground truth = the class's pixel mask where the image is
annotated, else the union of the class's boxes. Score = mean over classes of
hits / (hits + misses) (classes without cases are left out). TorchRay's "difficult" subset is not
computed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attrsearch.metrics.common import box_masks
from attrsearch.metrics.scorer import BatchContext, Scorer, Tables, per_class_frame


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


class PointingScorer(Scorer):
    """``pointing_game/accuracy`` over the (image, present class) cases with some ground truth."""

    family = "pointing_game"

    def update(self, ctx: BatchContext) -> None:
        pi, pc = ctx.pairs
        gt_boxes, box_case = ctx.case_boxes
        device = ctx.maps.device
        h, w = ctx.images.shape[-2:]
        annotated = ctx.annotated[pi][:, None, None]
        gt_pix = ctx.masks[pi, pc] == 1
        if gt_boxes.numel():
            from_boxes = torch.zeros(pi.numel(), h, w, device=device)
            from_boxes.index_add_(0, box_case.to(device), box_masks(gt_boxes.to(device), h, w).float())
            gt_pix = torch.where(annotated, gt_pix, from_boxes > 0)
        else:
            gt_pix = gt_pix & annotated
        nonempty = gt_pix.flatten(1).any(dim=1)
        hits = pointing_hits(ctx.maps[pi, pc][nonempty], gt_pix[nonempty], ctx.cfg.pointing_tolerance)
        self.values.add("_pointing/hit", hits.float())
        self.values.add("_pointing/class", pc[nonempty])

    def compute(self) -> tuple[dict[str, float], Tables]:
        num_classes = self.setup.info.num_classes
        metrics = {"pointing_game/tolerance": float(self.setup.cfg.pointing_tolerance)}
        hits, classes = self.values.all("_pointing/hit"), self.values.all("_pointing/class").long()
        if hits.numel():
            score, per_class_pg = pointing_accuracy(hits.bool(), classes, num_classes)
            metrics["pointing_game/accuracy"] = score
            metrics["pointing_game/cases"] = float(hits.numel())
        else:
            per_class_pg = torch.full((num_classes,), math.nan, dtype=torch.float64)
        per_class = per_class_frame(self.setup.info.class_names)
        per_class["pointing_game"] = per_class_pg.numpy()
        return metrics, {"per_class": per_class}


SCORER = PointingScorer
