"""The attribution interface: anything that maps images to one map per class can be scored.

An attribution is a callable ``images (B, 3, H, W) normalised -> maps (B, C, H, W)``. The
Explainer's maps are sigmoid masks in [0, 1]; other methods (Grad-CAM, RISE, LRP) give maps on
their own scale. Metrics need [0, 1] maps, so maps outside that range are min-max normalised per
image and class, as Stalder et al. 2022 ("What You See is What You Classify", section 4) do for
the baselines they compare with; the evaluation then reports ``attribution/minmax_normalized`` = 1
and prints a note.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from attrsearch.errors import UserError


@runtime_checkable
class Attribution(Protocol):
    """images: (B, 3, H, W) normalised -> maps: (B, C, H, W), one map per class, any real scale
    (the metrics bring them to [0, 1] with ``normalize_maps``)."""

    def __call__(self, images: Tensor) -> Tensor: ...


def normalize_maps(maps: Tensor, mode: Literal["auto", "always"] = "auto") -> tuple[Tensor, Tensor]:
    """Bring attribution maps to [0, 1].

    maps: (B, C, H, W) any real values. ``auto``: a map (one image, one class) that leaves [0, 1] is
    min-max normalised, maps inside [0, 1] are kept (so an Explainer's masks are untouched and the
    result of an image never depends on the rest of its batch); ``always``: every map is min-max
    normalised. A constant map normalises to zeros.
    Returns (maps in [0, 1] float32, normalised: (B, C) bool).
    """
    maps = maps.float()
    if not torch.isfinite(maps).all():
        raise UserError("attribution: the maps contain NaN or infinite values")
    lo = maps.amin(dim=(2, 3), keepdim=True)
    hi = maps.amax(dim=(2, 3), keepdim=True)
    if mode == "always":
        flag = torch.ones_like(lo, dtype=torch.bool)
    else:
        flag = (lo < 0.0) | (hi > 1.0)
    scaled = (maps - lo) / (hi - lo).clamp_min(1e-12)
    return torch.where(flag, scaled, maps), flag[:, :, 0, 0]


def check_maps(maps: Tensor, images: Tensor, num_classes: int) -> None:
    """A one-line ``UserError`` unless maps is (B, num_classes, H, W) for images (B, 3, H, W)."""
    b, _, h, w = images.shape
    if maps.dim() != 4 or tuple(maps.shape) != (b, num_classes, h, w):
        raise UserError(
            f"attribution: expected maps of shape {(b, num_classes, h, w)} (batch, classes, height, width), "
            f"got {tuple(maps.shape)}"
        )
