"""A model-free reference: the Sobel edge magnitude of the image (Sobel & Feldman 1968).

Clark, Oliveira, Wilming & Haufe (2026) find that attribution methods behave like salience or
edge filters: their maps rise on any high-contrast region, informative or not. This method *is*
such a filter, with no classifier at all, so a metric it scores well on says nothing about the
classifier: read every method's score next to it (``attrsearch.metrics.references``).

The map is the gradient magnitude ``sqrt(sum_channels(Gx^2 + Gy^2))`` of the normalised image
(``scipy.ndimage.sobel``, reflect padding), optionally smoothed by a Gaussian of ``smooth``
pixels, divided by its maximum per image; the same map for every class.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from scipy import ndimage
from torch import Tensor, nn

from attrsearch.attribution.methods._common import attribution_method, check_targets, num_classes_of, validate_options
from attrsearch.attribution.methods.base import register_method
from attrsearch.config.base import StrictModel


class SobelOptions(StrictModel):
    """smooth: standard deviation (pixels) of a Gaussian applied to the edge magnitude; 0 = none."""

    smooth: float = Field(0.0, ge=0)


def sobel_magnitude(images: Tensor, smooth: float = 0.0) -> Tensor:
    """images (B, K, H, W) -> (B, H, W) edge magnitude, each map divided by its maximum: values in
    [0, 1] (an image without edges gives zeros)."""
    x = images.detach().double().cpu().numpy()
    gx, gy = np.empty_like(x), np.empty_like(x)
    # One (H, W) plane at a time: on an N-d array ndimage.sobel also smooths across batch and channels.
    for i in np.ndindex(*x.shape[:2]):
        gy[i] = ndimage.sobel(x[i], axis=0, mode="reflect")
        gx[i] = ndimage.sobel(x[i], axis=1, mode="reflect")
    mag = np.sqrt((gx**2 + gy**2).sum(axis=1))
    if smooth > 0:
        mag = ndimage.gaussian_filter(mag, sigma=(0, smooth, smooth), mode="reflect")
    peak = mag.reshape(mag.shape[0], -1).max(axis=1).reshape(-1, 1, 1)
    mag = np.divide(mag, peak, out=np.zeros_like(mag), where=peak > 0)
    return torch.from_numpy(mag).to(device=images.device, dtype=torch.float32)


@register_method("sobel", SobelOptions, doc="model-free reference: Sobel edge magnitude, the same map for every class")
@attribution_method
def sobel(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """images (B, 3, H, W) normalised -> maps (B, C, H, W) in [0, 1], the image's edge magnitude for
    every class (unselected targets zeroed). The model is used only for its class count C."""
    opts = validate_options(SobelOptions, options, "sobel")
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images[:1])
    maps = sobel_magnitude(images, opts.smooth)[:, None].expand(b, num_classes, h, w).clone()
    return maps * check_targets(targets, b, num_classes, images.device)[:, :, None, None]
