"""The centre baseline of the pointing game (Zhang et al. 2016/2018, as reported by TorchRay's benchmark).

One centred Gaussian, the same for every image and class: it scores the pointing game by
always pointing at the image centre, the bar every real attribution should clear.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from attrsearch.attribution.methods._common import attribution_method, check_targets, num_classes_of, validate_options
from attrsearch.attribution.methods.base import register_method
from attrsearch.config.base import StrictModel


class CenterOptions(StrictModel):
    """sigma: the Gaussian's standard deviation as a fraction of the shorter image side."""

    sigma: float = Field(0.25, gt=0)


def center_map(size: tuple[int, int], sigma: float, device: torch.device | str = "cpu") -> Tensor:
    """(H, W) centred Gaussian, peak 1 at the centre, values in (0, 1]."""
    h, w = size
    ys = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
    xs = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
    s = sigma * min(h, w)
    return torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * s * s))


@register_method("center", CenterOptions, doc="centre baseline: one centred Gaussian for every class")
@attribution_method
def center(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """images (B, 3, H, W) -> maps (B, C, H, W) in (0, 1], identical for every image and class
    (unselected targets zeroed). The model is used only for its class count C."""
    opts = validate_options(CenterOptions, options, "center")
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images[:1])
    maps = center_map((h, w), opts.sigma, images.device).expand(b, num_classes, h, w).clone()
    return maps * check_targets(targets, b, num_classes, images.device)[:, :, None, None]
