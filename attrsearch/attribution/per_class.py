"""Per-target attribution methods as attributions over all classes.

TorchRay-style methods (Fong et al. 2019) explain one target at a time:
``method(model, images, target) -> saliency (B, H', W')`` (or ``(B, 1, H', W')``), where
``target`` is a class index. ``per_class_attribution`` calls such a method once per class and
stacks the results into the ``(B, C, H, W)`` maps the metrics score. Such saliencies are score maps
(``output_kind = "score"``): the metrics min-max normalise each (image, class) map to [0, 1] before
scoring it (the rule: ``attrsearch.attribution.base``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.attribution.base import Attribution

PerTargetMethod = Callable[[nn.Module, Tensor, int], Tensor]


def per_class_attribution(method: PerTargetMethod, model: nn.Module, num_classes: int) -> Attribution:
    """An attribution that runs ``method(model, images, c)`` for every class c in 0..C-1.

    method: images (B, 3, H, W) normalised, target c -> (B, H', W') or (B, 1, H', W') saliency on any
    scale. Maps at a lower resolution (Grad-CAM's feature map) are upsampled bilinearly to H x W.
    Returns images -> maps (B, C, H, W) float32, not normalised here; the attribution declares
    ``output_kind = "score"``, so the metrics (``evaluation.attribution_normalization: auto``, the
    default) min-max normalise every map per (image, class), whatever its range: a saliency whose
    peak stays below 1 is scored at its full scale. A method returning masks in [0, 1] by
    construction can set ``attribute.output_kind = "mask"`` on the result to keep them as they are.
    """

    def attribute(images: Tensor) -> Tensor:
        h, w = images.shape[-2:]
        maps = []
        for c in range(num_classes):
            s = method(model, images, c).detach().float()
            if s.dim() == 3:
                s = s[:, None]
            if s.dim() != 4 or s.shape[1] != 1 or s.shape[0] != images.shape[0]:
                raise ValueError(f"per-class method: expected (B, H, W) or (B, 1, H, W) saliency, got {tuple(s.shape)}")
            if s.shape[-2:] != (h, w):
                s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            maps.append(s[:, 0])
        return torch.stack(maps, dim=1)

    attribute.output_kind = "score"  # type: ignore[attr-defined]
    return attribute
