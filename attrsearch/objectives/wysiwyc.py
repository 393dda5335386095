"""The objective of Stalder et al. 2022, "What You See is What You Classify" (eqs. 1-8): ``wysiwyc``.

    L = L_c(F(m*x), y) + lambda_e * L_e(F((1-m)*x))
        + lambda_area * A(m) + lambda_nontarget_area * A(n) + lambda_bound * mean_{c in Y} B(s_c)
        + lambda_tv * (TV(m) + TV(n))

with s_c = sigmoid(E(x))_c, target mask m = max over present classes, non-target mask n = max
over absent classes. The paper's single lambda_a is split into the three area weights as in its
public code. All functions are batched tensor code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.attribution import masks_from_logits
from attrsearch.config.objectives import WysiwycObjective
from attrsearch.masks import aggregate_masks
from attrsearch.objectives.base import LossOutput, register_objective


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Eq. 2: multi-label BCE of F(m*x), mean over classes and batch. logits, labels: (B, C)."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def negative_entropy(logits: Tensor) -> Tensor:
    """Eq. 3: (1/C) sum_c p_c log p_c of softmax(F((1-m)*x)), p clamped at 1e-16, mean over batch.

    Minimising it pushes the classifier towards uniform predictions on the inverted mask.
    """
    p = torch.softmax(logits.float(), dim=1).clamp_min(1e-16)
    return (p * p.log()).mean()


def area(mask: Tensor) -> Tensor:
    """A(m) = (1/Z) sum_ij m_ij, mean over the batch. mask: (B, H, W) or (B, C, H, W)."""
    return mask.float().mean()


def area_bound(masks: Tensor, labels: Tensor, min_area: float, max_area: float) -> Tensor:
    """Eqs. 4-6: mean over present classes (then images) of B(s_c).

    B(s) = (1/Z) sum_i relu(q_min[i] - r(s)[i]) + (1/Z) sum_i relu(r(s)[i] - q_max[i]), r = sort
    descending, q_min / q_max = ones for the first floor(Z*a) / floor(Z*b) entries. Z is the mask's
    own pixel count (the public code hard-codes 224*224).

    Because q's are 0/1 steps and r(s) is in [0, 1], B(s) = (sum of (1 - r) over the top floor(Z*a)
    + sum of r outside the top floor(Z*b)) / Z. A partial sort (topk of floor(Z*b) values) gives both
    sums; it is hand-written because a full sort of every class mask dominates the step time at
    224 px. ``tests/objectives`` checks it against the literal sorted-vector formula.

    masks: (B, C, H, W) in [0, 1]; labels: (B, C) multi-hot. Images without present classes add 0.
    """
    b, c, h, w = masks.shape
    z = h * w
    k_min, k_max = int(z * min_area), int(z * max_area)
    present = labels.bool()
    if not present.any():
        return masks.sum() * 0.0
    flat = masks.flatten(2)[present].float()  # (P, Z): one row per present (image, class) pair
    top = flat.topk(max(k_max, k_min), dim=1, sorted=True).values
    below_min = (1.0 - top[:, :k_min]).sum(dim=1)
    above_max = flat.sum(dim=1) - top[:, :k_max].sum(dim=1)
    per_pair = (below_min + above_max) / z
    # Average over the present classes of each image, then over images that have any.
    image_of_pair = present.nonzero()[:, 0]
    per_image = torch.zeros(b, device=masks.device, dtype=per_pair.dtype).index_add_(0, image_of_pair, per_pair)
    counts = present.sum(dim=1)
    has_any = counts > 0
    return (per_image[has_any] / counts[has_any]).mean()


def total_variation(mask: Tensor) -> Tensor:
    """Eq. 7, anisotropic TV: (1/Z) sum_ij |x[i,j]-x[i+1,j]| + |x[i,j]-x[i,j+1]|, mean over batch.

    mask: (B, H, W) or (B, C, H, W); Z = H * W.
    """
    mask = mask.float()
    h, w = mask.shape[-2:]
    dv = (mask[..., 1:, :] - mask[..., :-1, :]).abs().sum(dim=(-2, -1))
    dh = (mask[..., :, 1:] - mask[..., :, :-1]).abs().sum(dim=(-2, -1))
    return ((dv + dh) / (h * w)).mean()


@register_objective(WysiwycObjective)
def wysiwyc_loss(explanandum: nn.Module, images: Tensor, labels: Tensor, mask_logits: Tensor, cfg) -> LossOutput:
    """Stalder et al. 2022, eq. 1, for a batch.

    explanandum: frozen classifier, (B, 3, H, W) -> (B, C) logits. images: (B, 3, H, W) normalised
    (zero = mean colour, so masking multiplies). labels: (B, C) multi-hot. mask_logits: (B, C, H, W)
    Explainer output. cfg: ``WysiwycObjective``. One Explanandum forward pass serves the masked and the
    inverted images (they are concatenated; the Explanandum is in eval mode, so this is exact).
    """
    masks = masks_from_logits(mask_logits)
    m, n = aggregate_masks(masks, labels)
    m4 = m.unsqueeze(1).to(images.dtype)
    both = torch.cat([images * m4, images * (1.0 - m4)], dim=0)
    logits_in, logits_out = explanandum(both).float().chunk(2, dim=0)

    terms = {
        "classification": classification_loss(logits_in, labels),
        "entropy": negative_entropy(logits_out),
        "area": area(m),
        "nontarget_area": area(n),
        "bound": area_bound(masks, labels, cfg.min_area, cfg.max_area),
        "tv": total_variation(m) + total_variation(n),
    }
    loss = (
        terms["classification"]
        + cfg.lambda_entropy * terms["entropy"]
        + cfg.lambda_area * terms["area"]
        + cfg.lambda_nontarget_area * terms["nontarget_area"]
        + cfg.lambda_bound * terms["bound"]
        + cfg.lambda_tv * terms["tv"]
    )
    return LossOutput(loss, {k: v.detach() for k, v in terms.items()}, masks, logits_in)
