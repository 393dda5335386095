"""RISE: randomized input sampling (Petsiuk, Das & Saenko 2018, eqs. 6-7 and Sec. 3.2), all classes in one pass.

Hand-written because the work is N masked forward passes per image: here one set of N masks
serves every image of the batch and every class at once (the class scores of a masked image are
one row of logits), in memory-bounded chunks. A test checks it against a literal per-image loop.

Masks (Sec. 3.2): N binary grids of s x s cells, each cell 1 with probability p, upsampled
bilinearly to (s + 1) * ceil(H / s) pixels and cropped to H x W at a uniformly random shift in
[0, ceil(H / s)) per axis. Masking multiplies the normalised image, so a masked pixel is the
dataset's mean colour. Scores are sigmoid probabilities (multi-label Explananda).
Saliency: S_c = sum_i p_c(x * M_i) M_i / (N p).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from attrsearch.attribution.methods._common import attribution_method, check_targets, validate_options
from attrsearch.attribution.methods.base import register_method
from attrsearch.config.base import StrictModel


class RISEOptions(StrictModel):
    """masks: N; cells: s (grid side); p: keep probability; seed: the mask generator's seed;
    batch: masked images per forward pass (memory bound)."""

    masks: int = Field(8000, ge=1)
    cells: int = Field(7, ge=1)
    p: float = Field(0.5, gt=0.0, le=1.0)
    seed: int = 0
    batch: int = Field(256, ge=1)


def mask_grids(n: int, cells: int, p: float, size: tuple[int, int], seed: int) -> tuple[Tensor, Tensor]:
    """The random part of N RISE masks, drawn on the CPU (same masks on every device for a seed).

    Returns (grids (N, 1, s, s) in {0, 1}, shifts (N, 2) long: the crop offset (dy, dx)).
    """
    gen = torch.Generator().manual_seed(seed)
    grids = (torch.rand(n, 1, cells, cells, generator=gen) < p).float()
    cell_h, cell_w = math.ceil(size[0] / cells), math.ceil(size[1] / cells)
    dy = torch.randint(0, cell_h, (n,), generator=gen)
    dx = torch.randint(0, cell_w, (n,), generator=gen)
    return grids, torch.stack([dy, dx], 1)


def render_masks(grids: Tensor, shifts: Tensor, size: tuple[int, int]) -> Tensor:
    """grids (n, 1, s, s), shifts (n, 2) -> masks (n, H, W) in [0, 1] (bilinear upsampling, shifted crop)."""
    n, _, s, _ = grids.shape
    h, w = size
    cell_h, cell_w = math.ceil(h / s), math.ceil(w / s)
    up = F.interpolate(grids, size=((s + 1) * cell_h, (s + 1) * cell_w), mode="bilinear", align_corners=False)[:, 0]
    rows = shifts[:, :1] + torch.arange(h, device=grids.device)  # (n, H)
    cols = shifts[:, 1:] + torch.arange(w, device=grids.device)  # (n, W)
    return up[torch.arange(n, device=grids.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def rise_masks(
    n: int, cells: int, p: float, size: tuple[int, int], seed: int, device: torch.device | str = "cpu"
) -> Tensor:
    """All N masks (N, H, W) in [0, 1] for a seed (what ``rise`` uses, rendered at once)."""
    grids, shifts = mask_grids(n, cells, p, size, seed)
    return render_masks(grids.to(device), shifts.to(device), size)


@register_method("rise", RISEOptions, doc="RISE (Petsiuk et al. 2018): 8000 random 7x7 masks, p=0.5, sigmoid scores")
@attribution_method
def rise(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """RISE saliency for every class.

    images (B, 3, H, W) normalised; targets None or (B, C) bool (unselected maps are zeroed; the
    masked forward passes serve every class anyway).
    Returns maps (B, C, H, W) in [0, 1 / p]: the expected sigmoid probability of class c when the
    pixel is kept, over the mask distribution (~[0, 1] for N large).
    Cost: N * B forward passes, in chunks of ``batch`` masked images.
    """
    opts = validate_options(RISEOptions, options, "rise")
    b, _, h, w = images.shape
    grids, shifts = mask_grids(opts.masks, opts.cells, opts.p, (h, w), opts.seed)
    grids, shifts = grids.to(images.device), shifts.to(images.device)
    per_chunk = max(1, opts.batch // b)
    sal: Tensor | None = None
    with torch.no_grad():
        for start in range(0, opts.masks, per_chunk):
            m = render_masks(grids[start : start + per_chunk], shifts[start : start + per_chunk], (h, w))  # (n, H, W)
            masked = (images[None] * m[:, None, None]).reshape(-1, *images.shape[1:])  # (n * B, 3, H, W)
            probs = torch.sigmoid(model(masked).float()).reshape(len(m), b, -1)  # (n, B, C)
            part = torch.einsum("nbc,nhw->bchw", probs, m)
            sal = part if sal is None else sal + part
    assert sal is not None
    sal = sal / (opts.masks * opts.p)
    return sal * check_targets(targets, b, sal.shape[1], sal.device)[:, :, None, None]
