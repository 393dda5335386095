"""Real Time Image Saliency for black box classifiers (Dabkowski & Gal 2017, section 4, eq. 5): ``rtis``.

    L(m) = lambda_tv * TV(m) + lambda_area * AV(m)^area_power
           - lambda_preserver * log p_c(Phi(x, m)) + lambda_destroyer * p_c(Phi(x, 1 - m))^destroyer_power

adapted as Stalder et al. 2022 did for their baseline: the Explainer's per-class output maps stand
for the paper's class selector (m = sigmoid(E(x))_c for the class c scored in each image) and p_c is
the multi-label Explanandum's sigmoid probability. Phi(x, m) = m * x + (1 - m) * A keeps the masked
region and replaces the rest by an alternative image A: a Gaussian blur of x (probability
``blur_probability``) or a random colour plus Gaussian noise (section 3). Each image is scored on
one present class drawn at random, or, for a ``fake_fraction`` of the images, on an absent class,
whose map is trained towards empty (only the area and TV terms; the paper's fake-label training).
Random draws use torch's global generator, which the training loop seeds per epoch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.config.objectives import RtisObjective
from attrsearch.objectives.base import LossOutput, register_objective

AREA_EPS = 5e-4  # keeps the gradient of AV^0.3 finite at an empty mask


def smoothness(mask: Tensor, power: float = 2.0) -> Tensor:
    """TV with powered neighbour differences: (1/Z) sum_ij |m[i+1,j]-m[i,j]|^p + |m[i,j+1]-m[i,j]|^p,
    per image. mask: (B, H, W) -> (B,)."""
    h, w = mask.shape[-2:]
    dv = (mask[..., 1:, :] - mask[..., :-1, :]).abs().pow(power).sum(dim=(-2, -1))
    dh = (mask[..., :, 1:] - mask[..., :, :-1]).abs().pow(power).sum(dim=(-2, -1))
    return (dv + dh) / (h * w)


def area_power(mask: Tensor, power: float) -> Tensor:
    """(mean(m) + eps)^power per image. mask: (B, H, W) -> (B,)."""
    return (mask.mean(dim=(-2, -1)) + AREA_EPS).pow(power)


def gaussian_blur(images: Tensor, sigma_px: float) -> Tensor:
    """Separable Gaussian blur (kernel side 2*ceil(2 sigma)+1, reflect padding). (B, 3, H, W) -> same."""
    radius = max(1, math.ceil(2.0 * sigma_px))
    radius = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    out = F.conv2d(
        F.pad(images, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c
    )
    return F.conv2d(
        F.pad(out, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c
    )


def alternative_images(images: Tensor, blur_probability: float, blur_sigma: float, noise_std: float) -> Tensor:
    """Per image, a blurred copy (probability ``blur_probability``; sigma = blur_sigma * side) or a random
    colour (uniform in [-1, 1] per channel, normalised units) plus N(0, noise_std) noise. (B, 3, H, W)."""
    b = images.shape[0]
    blurred = gaussian_blur(images, blur_sigma * min(images.shape[-2:]))
    colour = torch.rand(b, images.shape[1], 1, 1, device=images.device, dtype=images.dtype) * 2.0 - 1.0
    noisy = colour + noise_std * torch.randn_like(images)
    use_blur = (torch.rand(b, 1, 1, 1, device=images.device) < blur_probability).to(images.dtype)
    return use_blur * blurred + (1.0 - use_blur) * noisy


def draw_classes(labels: Tensor, fake_fraction: float) -> tuple[Tensor, Tensor]:
    """One class per image: a present one uniformly, or (with probability ``fake_fraction``, or when the
    image has no label) an absent one. labels (B, C) -> classes (B,) long, real (B,) bool."""
    present = labels.bool()
    fake = (torch.rand(labels.shape[0], device=labels.device) < fake_fraction) | ~present.any(dim=1)
    fake &= (~present).any(dim=1)  # an image with every class present is always real
    pool = torch.where(fake[:, None], ~present, present).float()
    classes = torch.multinomial(pool, 1).squeeze(1)
    return classes, ~fake


def rtis_terms(
    classifier: nn.Module, images: Tensor, masks: Tensor, classes: Tensor, real: Tensor, alternative: Tensor, cfg
) -> dict[str, Tensor]:
    """The four terms of eq. 5, means over the batch (classification terms over the real images only).

    masks: (B, C, H, W) in [0, 1]; classes: (B,) the scored class; real: (B,) bool; alternative: (B, 3, H, W).
    """
    b = images.shape[0]
    m = masks[torch.arange(b, device=masks.device), classes]  # (B, H, W)
    m4 = m.unsqueeze(1).to(images.dtype)
    preserved = m4 * images + (1.0 - m4) * alternative
    destroyed = (1.0 - m4) * images + m4 * alternative
    logits_p, logits_d = classifier(torch.cat([preserved, destroyed], dim=0)).float().chunk(2, dim=0)
    idx = classes[:, None]
    log_p_preserved = F.logsigmoid(logits_p.gather(1, idx).squeeze(1))
    p_destroyed = torch.sigmoid(logits_d.gather(1, idx).squeeze(1))
    realf = real.float()
    n_real = realf.sum().clamp_min(1.0)
    return {
        "tv": smoothness(m.float(), cfg.tv_power).mean(),
        "area": area_power(m.float(), cfg.area_power).mean(),
        "preserver": -(log_p_preserved * realf).sum() / n_real,
        "destroyer": ((p_destroyed + 1e-8).pow(cfg.destroyer_power) * realf).sum() / n_real,
        "_logits": logits_p,
    }


@register_objective(RtisObjective)
def rtis_loss(classifier: nn.Module, images: Tensor, labels: Tensor, mask_logits: Tensor, cfg) -> LossOutput:
    """Dabkowski & Gal 2017, eq. 5, for a batch (one scored class per image, see the module docstring).

    images: (B, 3, H, W) normalised; labels: (B, C) multi-hot; mask_logits: (B, C, H, W).
    """
    masks = torch.sigmoid(mask_logits.float())
    classes, real = draw_classes(labels, cfg.fake_fraction)
    alternative = alternative_images(images, cfg.blur_probability, cfg.blur_sigma, cfg.noise_std)
    terms = rtis_terms(classifier, images, masks, classes, real, alternative, cfg)
    logits = terms.pop("_logits")
    loss = (
        cfg.lambda_tv * terms["tv"]
        + cfg.lambda_area * terms["area"]
        + cfg.lambda_preserver * terms["preserver"]
        + cfg.lambda_destroyer * terms["destroyer"]
    )
    terms["fake_share"] = (~real).float().mean()
    return LossOutput(loss, {k: v.detach() for k, v in terms.items()}, masks, logits)
