"""Descriptive statistics of the target mask m (pixel-wise max over the present classes).

- area: mean(m), the share of the image the explanation keeps (A(m) of Stalder et al. 2022).
- nontarget_area: mean(n), n = pixel-wise max over the absent classes (should be ~0).
- entropy: mean binary entropy of the mask values, in bits: 0 for a binary mask, 1 for m = 0.5
  everywhere (CASM reports the same statistic to show how close to binary masks are).
"""

from __future__ import annotations

import torch
from torch import Tensor

from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, register_family


def mask_area(m: Tensor) -> Tensor:
    """m: (B, H, W) in [0, 1] -> (B,) mean value."""
    return m.float().mean(dim=(1, 2))


def mask_entropy(m: Tensor) -> Tensor:
    """m: (B, H, W) in [0, 1] -> (B,) mean of -m log2 m - (1-m) log2 (1-m) (0 log 0 = 0), in [0, 1]."""
    p = m.float()
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)).mean(dim=(1, 2)) / torch.log(
        torch.tensor(2.0)
    )


@register_family("mask_stats")
class MaskStatsScorer(Scorer):
    """``mask/area``, ``mask/nontarget_area`` and ``mask/entropy`` per image; ``area_only``: area alone (fast suite)."""

    family = "mask"

    def __init__(self, setup: EvaluationSetup, area_only: bool = False) -> None:
        super().__init__(setup)
        self.area_only = area_only

    def update(self, ctx: BatchContext) -> None:
        self.values.add("mask/area", mask_area(ctx.m))
        if not self.area_only:
            self.values.add("mask/nontarget_area", mask_area(ctx.n))
            self.values.add("mask/entropy", mask_entropy(ctx.m))
