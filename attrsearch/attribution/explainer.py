"""A trained Explainer as an attribution: masks s = sigmoid(E(x)) (Stalder et al. 2022, section 3).

This is the only place in the code base that turns Explainer logits into masks: training losses call
``masks_from_logits`` (with autograd), evaluation, galleries and ``attrsearch explain`` call
``explainer_attribution`` (without).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attrsearch.attribution.base import Attribution


def masks_from_logits(mask_logits: Tensor) -> Tensor:
    """Class masks s = sigmoid(E(x)): mask logits (B, C, H, W) any dtype -> (B, C, H, W) float32 in [0, 1]."""
    return torch.sigmoid(mask_logits.float())


def explainer_attribution(explainer: nn.Module) -> Attribution:
    """Wrap a trained Explainer (images (B, 3, H, W) normalised -> mask logits (B, C, H, W)) as an
    attribution: masks = sigmoid(logits), (B, C, H, W) float32 in [0, 1], computed without autograd.
    The wrapped module is available as ``.explainer``; ``output_kind`` is ``"mask"``."""

    @torch.inference_mode()
    def attribute(images: Tensor) -> Tensor:
        return masks_from_logits(explainer(images))

    attribute.explainer = explainer  # type: ignore[attr-defined]
    attribute.output_kind = "mask"  # type: ignore[attr-defined]  (kept as they are by the metrics)
    return attribute
