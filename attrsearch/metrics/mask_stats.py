"""Descriptive statistics of the target mask m (pixel-wise max over the present classes).

- area: mean(m), the share of the image the explanation keeps (seed 002's A(m)).
- nontarget_area: mean(n), n = pixel-wise max over the absent classes (should be ~0).
- entropy: mean binary entropy of the mask values, in bits: 0 for a binary mask, 1 for m = 0.5
  everywhere (CASM reports the same statistic to show how close to binary masks are).
"""

from __future__ import annotations

import torch
from torch import Tensor


def mask_area(m: Tensor) -> Tensor:
    """m: (B, H, W) in [0, 1] -> (B,) mean value."""
    return m.float().mean(dim=(1, 2))


def mask_entropy(m: Tensor) -> Tensor:
    """m: (B, H, W) in [0, 1] -> (B,) mean of -m log2 m - (1-m) log2 (1-m) (0 log 0 = 0), in [0, 1]."""
    p = m.float()
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)).mean(dim=(1, 2)) / torch.log(torch.tensor(2.0))
