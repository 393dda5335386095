"""Target / non-target aggregation of per-class masks and the ground-truth union.

Stalder et al. 2022 ("What You See is What You Classify", section 3): with class masks
s = sigmoid(E(x)) (B, C, H, W), the target mask m is the pixel-wise max over the classes present in
the image and the non-target mask n the pixel-wise max over the absent ones. The objectives train on
m and n and the metrics score m against the union of the present classes' ground truth.
A floor module: it imports only torch.
"""

from __future__ import annotations

from torch import Tensor

VOID = 255  # ground-truth mask value of unlabelled pixels (VOC's object borders, COCO's crowd regions)


def aggregate_masks(masks: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Target and non-target masks (Stalder et al. 2022, section 3).

    masks: (B, C, H, W) in [0, 1]; labels: (B, C) multi-hot.
    Returns m, n: (B, H, W) in [0, 1], the pixel-wise max over present / absent classes (0 where a set is empty).
    """
    present = labels.bool()[:, :, None, None]
    # Masks are >= 0, so filling the excluded classes with 0 leaves the max unchanged.
    m = masks.masked_fill(~present, 0.0).amax(dim=1)
    n = masks.masked_fill(present, 0.0).amax(dim=1)
    return m, n


def ground_truth(masks: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Union ground truth of the present classes and its valid (non-void) pixels.

    masks: (B, C, H, W) uint8, 1 inside / 0 outside / 255 (``VOID``) void; labels: (B, C) multi-hot.
    Returns g: (B, H, W) float in {0, 1} and valid: (B, H, W) bool, False where any present
    class marks the pixel void (VOC's object borders, COCO's crowd regions).
    """
    present = labels.bool()[:, :, None, None]
    g = ((masks == 1) & present).any(dim=1).float()
    valid = ~((masks == VOID) & present).any(dim=1)
    return g, valid
