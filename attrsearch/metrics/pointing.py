"""The pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop") as the
TorchRay benchmark of Fong, Patrick & Vedaldi (2019) defines it.

For each (image, present class) the maximum of that class's map is the "point"; it is a hit if a
ground-truth pixel of the class lies *strictly* closer than ``tolerance`` pixels (Euclidean,
``d^2 < tolerance^2``, as TorchRay's ``PointingGame.evaluate``). The tolerance is 15 px at 224 px
and, unless ``evaluation.pointing_tolerance`` fixes it, scales with the shorter image side
(15 * side / 224: 4.3 px at 64 px, where a fixed 15 px would make the game nearly free).

Ground truth (``evaluation.pointing_ground_truth``): ``boxes``: the union of the class's boxes
(TorchRay on VOC); ``masks``: the class's pixel mask (annotated images only); ``auto``: boxes on
VOC, elsewhere the pixel mask where the image is annotated and the boxes otherwise. The text record
``pointing_game/ground_truth`` says which: ``boxes``, or the dataset's pixel ground truth
(``DatasetInfo.ground_truth``: ``masks``, or ``boxes`` drawn as masks where the data has no segmentation).

Scores: ``pointing_game/accuracy`` = mean over classes of hits / (hits + misses) (classes without
cases left out); ``pointing_game/difficult`` = the same on the "difficult" subset of Zhang et al.
2018 (Sec. 5.1): cases whose ground truth covers less than a quarter of the image while the image
holds at least one other (distracting) class. TorchRay reads that subset from a list published with
the paper; here it is computed from the definition, so it also exists on the built-in data.
PASCAL's per-object "difficult" flag is a different thing (``data.voc.use_difficult``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from attrsearch.metrics.common import box_masks
from attrsearch.metrics.scorer import BatchContext, Scorer, Tables, per_class_frame, register_family

REFERENCE_TOLERANCE = 15  # px, at REFERENCE_SIDE (TorchRay)
REFERENCE_SIDE = 224
DIFFICULT_AREA = 0.25  # Zhang et al. 2018: ground truth smaller than 1/4 of the image


def pointing_tolerance(configured: float | None, height: int, width: int) -> float:
    """The hit radius in pixels: ``configured`` as it is, or 15 * min(H, W) / 224 when None."""
    if configured is not None:
        return float(configured)
    return REFERENCE_TOLERANCE * min(height, width) / REFERENCE_SIDE


def pointing_hits(maps: Tensor, gt: Tensor, tolerance: float) -> Tensor:
    """maps: (N, H, W) saliency; gt: (N, H, W) bool. Returns (N,) bool hits.

    The point is the first maximum in row-major order (as ``argmax``); a hit needs a ground-truth
    pixel at squared distance strictly below ``tolerance ** 2`` (so tolerance 0 never hits).
    Only the distance from that one point is needed, so no dilation of the masks is computed.
    """
    _, h, w = maps.shape
    flat_idx = maps.flatten(1).argmax(dim=1)
    py, px = (flat_idx // w).float(), (flat_idx % w).float()
    ys = torch.arange(h, device=maps.device, dtype=torch.float32)
    xs = torch.arange(w, device=maps.device, dtype=torch.float32)
    d2 = (ys[None, :, None] - py[:, None, None]) ** 2 + (xs[None, None, :] - px[:, None, None]) ** 2
    return (gt & (d2 < float(tolerance) ** 2)).flatten(1).any(dim=1)


def difficult_cases(gt: Tensor, labels_per_case: Tensor) -> Tensor:
    """Zhang et al. 2018's difficult subset: gt (N, H, W) bool covers < 1/4 of the image and the
    image has another class. labels_per_case: (N, C) the image's multi-hot labels. Returns (N,) bool."""
    small = gt.flatten(1).float().mean(dim=1) < DIFFICULT_AREA
    return small & (labels_per_case.bool().sum(dim=1) >= 2)


def pointing_accuracy(hits: Tensor, classes: Tensor, num_classes: int) -> tuple[float, Tensor]:
    """Mean over classes of hits / cases. hits: (N,) bool; classes: (N,) int64 class of each case.

    Returns (score, per-class accuracy (num_classes,) with NaN for classes without cases).
    """
    cases = torch.bincount(classes, minlength=num_classes).double()
    got = torch.bincount(classes, weights=hits.double(), minlength=num_classes)
    per_class = torch.where(cases > 0, got / cases.clamp_min(1.0), torch.full_like(cases, float("nan")))
    seen = cases > 0
    return (per_class[seen].mean().item() if seen.any() else float("nan")), per_class


@register_family("pointing")
class PointingScorer(Scorer):
    """``pointing_game/accuracy`` (and ``/difficult``) over the (image, present class) cases with ground truth."""

    family = "pointing_game"

    def __init__(self, setup) -> None:
        super().__init__(setup)
        side = setup.info.image_size
        self.tolerance = pointing_tolerance(setup.cfg.pointing_tolerance, side, side)
        mode = setup.cfg.pointing_ground_truth
        self.boxes_only = mode == "boxes" or (mode == "auto" and str(setup.info.name).startswith("voc"))
        self.masks_only = mode == "masks"
        truth = str(getattr(setup.info, "ground_truth", "masks"))
        self.params["pointing_game/ground_truth"] = "boxes" if self.boxes_only else truth

    def update(self, ctx: BatchContext) -> None:
        pi, pc = ctx.pairs
        gt_boxes, box_case = ctx.case_boxes
        device = ctx.maps.device
        h, w = ctx.images.shape[-2:]
        annotated = ctx.annotated[pi][:, None, None]
        gt_pix = (ctx.masks[pi, pc] == 1) & annotated
        if not self.masks_only:
            from_boxes = torch.zeros(pi.numel(), h, w, device=device)
            if gt_boxes.numel():
                from_boxes.index_add_(0, box_case.to(device), box_masks(gt_boxes.to(device), h, w).float())
            gt_pix = (from_boxes > 0) if self.boxes_only else torch.where(annotated, gt_pix, from_boxes > 0)
        nonempty = gt_pix.flatten(1).any(dim=1)
        tolerance = pointing_tolerance(ctx.cfg.pointing_tolerance, h, w)
        hits = pointing_hits(ctx.maps[pi, pc][nonempty], gt_pix[nonempty], tolerance)
        hard = difficult_cases(gt_pix[nonempty], ctx.labels[pi][nonempty])
        self.values.add("_pointing/hit", hits.float())
        self.values.add("_pointing/class", pc[nonempty])
        self.values.add("_pointing/difficult", hard.float())

    def compute(self) -> tuple[dict[str, float], Tables]:
        num_classes = self.setup.info.num_classes
        metrics = {"pointing_game/tolerance": self.tolerance}
        hits, classes = self.values.all("_pointing/hit").bool(), self.values.all("_pointing/class").long()
        hard = self.values.all("_pointing/difficult").bool()
        per_class_pg = torch.full((num_classes,), math.nan, dtype=torch.float64)
        if hits.numel():
            score, per_class_pg = pointing_accuracy(hits, classes, num_classes)
            metrics["pointing_game/accuracy"] = score
            metrics["pointing_game/cases"] = float(hits.numel())
            metrics["pointing_game/difficult_cases"] = float(hard.sum())
            if hard.any():
                metrics["pointing_game/difficult"] = pointing_accuracy(hits[hard], classes[hard], num_classes)[0]
        else:
            self.notes.append(
                "pointing_game: no case has ground truth (boxes or masks); pointing_game/accuracy omitted"
            )
        per_class = per_class_frame(self.setup.info.class_names)
        per_class["pointing_game"] = per_class_pg.numpy()
        return metrics, {"per_class": per_class}
