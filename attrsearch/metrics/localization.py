"""Weakly supervised localisation (Zolna et al. 2020 (CASM), section 4 "Localization").

CASM binarises a mask keeping as many pixels as its mean intensity says (fraction mean(m), so the
binary mask has the same mean as the continuous one), keeps the largest connected component
(scipy.ndimage.label, 4-connectivity) and takes its tightest box. Against the ground-truth boxes:

- LE (localisation error) = 1 - [IoU(box, some GT box) > 0.5]; lower is better.
- OM (the ImageNet challenge's official metric, as an error) = 1 - [IoU > 0.5 and the class is
  predicted]; lower is better. The prediction is the Explanandum's on the unmasked image.
- F1 (continuous, on the unbinarised mask) = max over GT boxes of 2PR / (P + R) with
  P = sum(m * box) / sum(m), R = sum(m * box) / |box|; higher is better.

CASM's data is single-label. Here every present class of a multi-label image is one case: that
class's own mask s_c is scored against that class's boxes only, and "predicted" means
sigmoid(F(x))_c > 0.5 (the Explanandum is multi-label). Cases without a box of their class are skipped.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor
from torchvision.ops import box_iou

from attrsearch.metrics.common import box_masks
from attrsearch.metrics.scorer import BatchContext, Scorer, Tables, per_class_frame, register_family


def mean_fraction_binarize(maps: Tensor) -> Tensor:
    """Keep the round(mean(m) * Z) highest pixels of each map (ties broken by position).

    maps: (N, H, W) in [0, 1] -> (N, H, W) bool with (about) the same mean as the map.
    """
    n, h, w = maps.shape
    flat = maps.flatten(1).float()
    keep = (flat.mean(dim=1) * h * w).round().long()
    order = flat.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(h * w, device=maps.device).expand(n, -1))
    return (rank < keep[:, None]).view(n, h, w)


def largest_component_boxes(binary: Tensor) -> Tensor:
    """Tightest box of the largest connected component of each mask.

    binary: (N, H, W) bool. Returns (N, 4) float ``x0, y0, x1, y1`` (x1/y1 exclusive); an empty mask
    gives the zero box (IoU 0 with anything). One scipy call labels the whole stack: the structure
    connects pixels within a map only (4-connectivity), never across maps.
    """
    n = binary.shape[0]
    boxes = np.zeros((n, 4), dtype=np.float32)
    arr = binary.detach().cpu().numpy()
    if n == 0 or not arr.any():
        return torch.from_numpy(boxes).to(binary.device)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    labels, count = ndimage.label(arr, structure=structure)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    slices = ndimage.find_objects(labels)
    owner = np.array([s[0].start for s in slices])  # the map each component lies in
    # Per map, the biggest component (the first one found, in scan order, on ties).
    order = np.lexsort((np.arange(count), -sizes, owner))
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    for comp in first:
        _, ys, xs = slices[comp]
        boxes[owner[comp]] = (xs.start, ys.start, xs.stop, ys.stop)
    return torch.from_numpy(boxes).to(binary.device)


def localization_scores(maps: Tensor, gt_boxes: Tensor, box_case: Tensor, predicted: Tensor) -> dict[str, Tensor]:
    """LE, OM and continuous F1 of each case.

    maps: (N, H, W) in [0, 1], one per case (image, present class); gt_boxes: (M, 4) GT boxes,
    box_case: (M,) the case index of each box (every case has at least one); predicted: (N,) bool,
    the class is predicted on the unmasked image. Returns {"le", "om", "f1"}: (N,) float each.
    """
    n, h, w = maps.shape
    pred_boxes = largest_component_boxes(mean_fraction_binarize(maps))
    iou = box_iou(pred_boxes, gt_boxes.float())[box_case, torch.arange(box_case.numel(), device=maps.device)]
    best_iou = torch.zeros(n, device=maps.device).scatter_reduce(0, box_case, iou, reduce="amax")
    hit = best_iou > 0.5

    region = box_masks(gt_boxes, h, w).float()  # (M, H, W)
    m = maps[box_case].float()
    inter = (m * region).sum(dim=(1, 2))
    precision = inter / m.sum(dim=(1, 2)).clamp_min(1e-12)
    recall = inter / region.sum(dim=(1, 2)).clamp_min(1.0)
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12), torch.zeros_like(inter)
    )
    best_f1 = torch.zeros(n, device=maps.device).scatter_reduce(0, box_case, f1, reduce="amax")
    return {
        "le": 1.0 - hit.float(),
        "om": 1.0 - (hit & predicted.bool()).float(),
        "f1": best_f1,
    }


@register_family("localization")
class LocalizationScorer(Scorer):
    """``localization/le``, ``om``, ``f1`` of every (image, present class) case with a box of its class."""

    family = "localization"
    needs = frozenset({"clean_logits"})

    def update(self, ctx: BatchContext) -> None:
        pi, pc = ctx.pairs
        gt_boxes, box_case = ctx.case_boxes
        with_box = torch.zeros(pi.numel(), dtype=torch.bool)
        with_box[box_case] = True
        if not with_box.any():
            return
        device = ctx.maps.device
        sel = with_box.to(device)
        remap = torch.cumsum(with_box.long(), 0) - 1  # case index among the cases with boxes
        predicted = torch.sigmoid(ctx.clean_logits[pi, pc]) >= 0.5
        scores = localization_scores(
            ctx.maps[pi, pc][sel], gt_boxes.to(device), remap[box_case].to(device), predicted[sel]
        )
        for k, v in scores.items():
            self.values.add(f"localization/{k}", v)
        self.values.add("_loc/class", pc[sel])

    def compute(self) -> tuple[dict[str, float], Tables]:
        metrics = self.values.means()
        cases = self.values.all("localization/le").numel()
        if cases:
            metrics["localization/cases"] = float(cases)
        else:
            self.notes.append("localization: no case has a ground-truth box of its class; localization/* omitted")
        per_class = per_class_frame(self.setup.info.class_names)
        for k in ("le", "om", "f1"):
            per_class[f"localization_{k}"] = self.values.per_class(
                f"localization/{k}", "_loc/class", self.setup.info.num_classes
            ).numpy()
        return metrics, {"per_class": per_class}
