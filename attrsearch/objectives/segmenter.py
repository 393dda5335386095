"""A model-free reference objective: the Explainer trained as a segmenter, with no classifier (``segmenter``).

Much of a mask can come from a data prior rather than from the classifier (a masking model trained
with ten examples per class loses little localisation; Stalder et al. 2022's reviewers asked how
much of a mask belongs to the masking model itself). This objective trains the same Explainer
architecture on the per-class ground-truth masks directly::

    L = sum_{b,c,p} v_bcp w_bcp BCE(E(x)_bcp, g_bcp) / sum_{b,c,p} v_bcp

g the class's ground-truth mask (absent classes: empty), v = 0 on void pixels (VOC borders, COCO
crowds) and on images without pixel annotation, w = ``positive_weight`` on object pixels and 1
elsewhere. The Explanandum is not evaluated (``logits_masked`` is NaN); note that an Explainer that
reuses the Explanandum's encoder (``explanandum_encoder``) still sees the classifier's features:
use a stand-alone architecture (``unet``, ...) for a segmenter with no trace of the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.attribution import masks_from_logits
from attrsearch.config.objectives import SegmenterObjective
from attrsearch.masks import VOID
from attrsearch.objectives.base import LossOutput, register_objective


def segmentation_bce(mask_logits: Tensor, gt_masks: Tensor, positive_weight: float = 1.0) -> Tensor:
    """Mean weighted BCE over the annotated pixels. mask_logits: (B, C, H, W) real; gt_masks: (B, C, H, W)
    uint8 with 1 inside, 0 outside, 255 void. Returns a scalar >= 0 (0 when no pixel is annotated)."""
    if mask_logits.shape != gt_masks.shape:
        raise ValueError(f"mask logits {tuple(mask_logits.shape)} and masks {tuple(gt_masks.shape)} differ in shape")
    valid = (gt_masks != VOID).to(mask_logits.dtype)
    target = (gt_masks == 1).to(mask_logits.dtype)
    weight = valid * (1.0 + (positive_weight - 1.0) * target)
    bce = F.binary_cross_entropy_with_logits(mask_logits, target, weight=weight, reduction="sum")
    return bce / valid.sum().clamp_min(1.0)


@register_objective(SegmenterObjective, inputs=("masks",))
def segmenter_loss(
    explanandum: nn.Module,
    images: Tensor,
    labels: Tensor,
    mask_logits: Tensor,
    cfg: SegmenterObjective,
    *,
    masks: Tensor,
) -> LossOutput:
    """BCE of each class map to its ground-truth mask; the Explanandum is not used."""
    loss = segmentation_bce(mask_logits.float(), masks, cfg.positive_weight)
    maps = masks_from_logits(mask_logits)
    return LossOutput(loss, {"bce": loss.detach()}, maps, torch.full_like(labels, float("nan")))
