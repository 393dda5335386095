"""Extremal perturbations (Fong, Patrick & Vedaldi 2019), preservation game, written from the paper.

For each (image, class, area a) one mask m is optimised (Sec. 3, eqs. 5-8):

    m_a = argmax_m  Phi(m ⊗ x)_c  -  lambda * || vecsort(m) - r_a ||^2

- Phi(m ⊗ x): the blur perturbation (Sec. 3.3): pixel u is blurred with a Gaussian of
  sigma = sigma_max * (1 - m(u)); approximated with a pyramid of ``levels`` blurred copies
  (sigma_l = sigma_max * l / (levels - 1)) and linear interpolation between neighbouring levels.
  Phi(.)_c is the class-c logit (multi-label Explananda: no softmax couples the classes).
- area constraint (eq. 8): r_a is the sorted reference vector with (1 - a) Z zeros then a Z ones;
  the penalty is the mean squared difference to the sorted mask values (weight ``area_weight``).
- smooth masks (Sec. 3.4, eq. 10): parameters m_bar on a grid of stride ``step``;
  m(u) = smax_v k(u - v) m_bar(v) with a Gaussian k of width ``sigma`` and the smooth max
  smax_T(f) = sum f e^{f/T} / sum e^{f/T} at temperature ``smoothing`` (0.09), computed on the
  parameter grid and upsampled bilinearly to the image.
- ``step``, ``sigma`` and ``max_blur`` are in pixels of a 224 px image (the paper's 7, 21 and
  our 10) and scale with the image size.

Our choices where the paper leaves room: Adam (lr 0.05) with m_bar clamped to [0, 1] after each
step, m_bar initialised to 0.5, a constant lambda. Every (image, class, area) is one row of one
batched optimisation (chunks of ``batch`` rows); the areas are combined by averaging the masks
of one (image, class), as the evaluation of Stalder et al. 2022 does with several areas.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

from attrsearch.attribution.methods._common import (
    attribution_method,
    check_targets,
    gaussian_blur,
    num_classes_of,
    scatter_rows,
    upsample,
    validate_options,
)
from attrsearch.attribution.methods.base import register_method
from attrsearch.config.base import StrictModel


class ExtremalOptions(StrictModel):
    """areas: target fractions in (0, 1); iterations; step/sigma/max_blur: px at 224 (scaled);
    smoothing: smax temperature; levels: blur pyramid size; area_weight: lambda; lr: Adam step;
    batch: (image, class, area) rows optimised together."""

    areas: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2, 0.3], min_length=1)
    iterations: int = Field(800, ge=1)
    step: float = Field(7.0, gt=0)
    sigma: float = Field(21.0, gt=0)
    smoothing: float = Field(0.09, gt=0)
    levels: int = Field(8, ge=2)
    max_blur: float = Field(10.0, ge=0)
    area_weight: float = Field(300.0, ge=0)
    lr: float = Field(0.05, gt=0)
    batch: int = Field(64, ge=1)

    @field_validator("areas")
    @classmethod
    def _areas_in_range(cls, v: list[float]) -> list[float]:
        if any(not 0.0 < a < 1.0 for a in v):
            raise ValueError("every area must be in (0, 1)")
        return v


def blur_pyramid(images: Tensor, levels: int, max_sigma: float) -> Tensor:
    """(B, 3, H, W) -> (B, L, 3, H, W): level l blurred with sigma = max_sigma * l / (L - 1) (level 0 = the image)."""
    return torch.stack([gaussian_blur(images, max_sigma * lvl / (levels - 1)) for lvl in range(levels)], 1)


def blur_perturb(pyramid: Tensor, mask: Tensor) -> Tensor:
    """Phi(m ⊗ x): pyramid (R, L, 3, H, W), mask (R, H, W) in [0, 1] -> (R, 3, H, W).

    Blur level t = (1 - m) (L - 1), linearly interpolated between the two nearest pyramid levels
    (hat weights max(0, 1 - |t - l|)): m = 1 keeps the pixel, m = 0 blurs it with sigma_max.
    """
    levels = pyramid.shape[1]
    t = (1.0 - mask)[:, None] * (levels - 1)  # (R, 1, H, W)
    lv = torch.arange(levels, device=mask.device, dtype=mask.dtype).view(1, -1, 1, 1)
    weights = (1.0 - (t - lv).abs()).clamp_min(0.0)  # (R, L, H, W)
    return (weights[:, :, None] * pyramid).sum(1)


def smooth_mask(params: Tensor, sigma: float, temperature: float, size: tuple[int, int]) -> Tensor:
    """Smooth-max pooled mask (Fong et al. 2019, eq. 10). params (R, gh, gw) in [0, 1], sigma in grid
    cells -> mask (R, H, W) in [0, 1]."""
    r_cnt, gh, gw = params.shape
    rad = max(1, math.ceil(3 * sigma))
    t = torch.arange(-rad, rad + 1, device=params.device, dtype=params.dtype)
    kernel = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2)).flatten()  # (K,), peak 1
    windows = F.unfold(params[:, None], kernel_size=2 * rad + 1, padding=rad)  # (R, K, gh * gw)
    vals = kernel[None, :, None] * windows
    pooled = (vals * torch.softmax(vals / temperature, dim=1)).sum(1).view(r_cnt, 1, gh, gw)
    return upsample(pooled, size)[:, 0]


def area_penalty(mask: Tensor, areas: Tensor) -> Tensor:
    """|| vecsort(m) - r_a ||^2 / Z per row (eq. 8): mask (R, H, W), areas (R,) -> (R,)."""
    flat = mask.flatten(1)
    z = flat.shape[1]
    ranks = torch.arange(z, device=mask.device, dtype=mask.dtype)
    ref = (ranks[None] >= (1.0 - areas[:, None]) * z).to(mask.dtype)  # (1 - a) Z zeros then a Z ones
    return (flat.sort(dim=1).values - ref).pow(2).mean(1)


def optimize_rows(
    model: nn.Module,
    pyramid: Tensor,
    classes: Tensor,
    areas: Tensor,
    opts: ExtremalOptions,
    history: list[Tensor] | None = None,
) -> Tensor:
    """The batched preservation game for R rows: pyramid (R, L, 3, H, W), classes (R,), areas (R,).

    Returns masks (R, H, W) in [0, 1]; ``history`` (if given) receives the energy (R,) per iteration.
    """
    r_cnt, _, _, h, w = pyramid.shape
    scale = min(h, w) / 224.0
    step = max(1.0, opts.step * scale)
    grid = (max(2, math.ceil(h / step)), max(2, math.ceil(w / step)))
    sigma_cells = opts.sigma * scale / step
    params = torch.full((r_cnt, *grid), 0.5, device=pyramid.device, requires_grad=True)
    optim = torch.optim.Adam([params], lr=opts.lr)
    rows = torch.arange(r_cnt, device=pyramid.device)
    for _ in range(opts.iterations):
        mask = smooth_mask(params, sigma_cells, opts.smoothing, (h, w))
        reward = model(blur_perturb(pyramid, mask))[rows, classes]
        energy = -reward + opts.area_weight * area_penalty(mask, areas)
        optim.zero_grad(set_to_none=True)
        energy.sum().backward()
        optim.step()
        with torch.no_grad():
            params.clamp_(0.0, 1.0)
        if history is not None:
            history.append(energy.detach())
    with torch.no_grad():
        return smooth_mask(params, sigma_cells, opts.smoothing, (h, w))


@register_method(
    "extremal",
    ExtremalOptions,
    doc="Extremal perturbations (Fong et al. 2019), preservation, blur, mean over areas",
    output="mask",
)
@attribution_method
def extremal(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """Extremal-perturbation masks, the mean over ``areas``, for every selected (image, class).

    images (B, 3, H, W) normalised; targets None or (B, C) bool (only selected pairs are optimised).
    Returns maps (B, C, H, W) in [0, 1].
    Cost: iterations x forward+backward of B * C' * len(areas) perturbed images.
    """
    opts = validate_options(ExtremalOptions, options, "extremal")
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images)
    pairs = check_targets(targets, b, num_classes, images.device).nonzero()  # (P, 2)
    n_areas = len(opts.areas)
    area_t = torch.tensor(opts.areas, device=images.device)
    pyramid = blur_pyramid(images, opts.levels, opts.max_blur * min(h, w) / 224.0)  # (B, L, 3, H, W)
    rows = pairs.repeat_interleave(n_areas, 0)  # (P * A, 2): every (image, class, area)
    row_areas = area_t.repeat(len(pairs))
    out = []
    for start in range(0, len(rows), opts.batch):
        sl = slice(start, start + opts.batch)
        out.append(optimize_rows(model, pyramid[rows[sl, 0]], rows[sl, 1], row_areas[sl], opts))
    if not out:
        return images.new_zeros(b, num_classes, h, w)
    masks = torch.cat(out).view(len(pairs), n_areas, h, w).mean(1)
    return scatter_rows(masks, pairs, b, num_classes)
