"""iGOS++ (Khorram, Lawson & Fuxin 2021): integrated-gradient optimised saliency with bilateral perturbations.

Two masks per (image, class), on a coarse grid (default 28 x 28) upsampled bilinearly, 1 = salient:
a *deletion* mask D (removing the pixels it marks should destroy the score) and an *insertion*
mask I (keeping only the pixels it marks should restore it). With the perturbation
Phi(x, M) = x * M + x_b * (1 - M), x_b the blurred image:

    L(D, I) = p_c(Phi(x, 1 - D)) - p_c(Phi(x, I)) + l1 * (mean D + mean I) + tv * (BTV(D) + BTV(I))

- p_c: the class's sigmoid probability (multi-label Explananda);
- the descent direction of the two score terms is their integrated gradient (iGOS, Qi et al.
  2019; iGOS++ Sec. 3): the gradient averaged over ``ig_steps`` points on the straight path from
  the all-baseline image to the current perturbation (Phi(x, s/S * K), s = 1..S, with K = 1 - D
  for deletion and K = I for insertion); the l1 and BTV terms contribute their plain gradients;
- bilateral TV (iGOS++ Sec. 3.2): sum over neighbouring cells u, v of
  exp(-||x(u) - x(v)||^2 / (2 bilateral_sigma^2)) |M(u) - M(v)|^tv_beta, with x at mask resolution, so
  the mask may change where the image has edges; taken as a mean over neighbour pairs;
- each iteration is a backtracking line search along the normalised direction (steps
  1, 1/2, ..., 1/2^7 of the mask range) that only accepts a step that lowers L, masks clamped
  to [0, 1]; so L never increases.
- the map is I * D (high where both masks agree), in [0, 1].

Our choices where the paper leaves room: both masks start at 0, the terms are per-cell means
(l1 and tv weights are on that scale), the direction is scaled to unit max-norm per row.
Every (image, class) pair is one row of one batched optimisation (chunks of ``batch`` rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
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

_LINE_SEARCH_STEPS = 8


class IGOSOptions(StrictModel):
    """iterations; ig_steps: S; mask_size: the mask grid side; l1, tv: weights; tv_beta: BTV exponent;
    bilateral_sigma: colour scale of the BTV weights (normalised units); blur: baseline sigma as a
    fraction of the image side; batch: (image, class) rows optimised together."""

    iterations: int = Field(15, ge=1)
    ig_steps: int = Field(20, ge=1)
    mask_size: int = Field(28, ge=2)
    l1: float = Field(1.0, ge=0)
    tv: float = Field(1.0, ge=0)
    tv_beta: float = Field(2.0, ge=1)
    bilateral_sigma: float = Field(0.5, gt=0)
    blur: float = Field(0.05, ge=0)
    batch: int = Field(32, ge=1)


def bilateral_tv(mask: Tensor, guide: Tensor, sigma: float, beta: float) -> Tensor:
    """Bilateral TV per row: mask (R, h, w), guide (R, 3, h, w) image at mask resolution -> (R,)."""
    wy = torch.exp(-(guide[:, :, 1:] - guide[:, :, :-1]).pow(2).sum(1) / (2 * sigma**2))
    wx = torch.exp(-(guide[:, :, :, 1:] - guide[:, :, :, :-1]).pow(2).sum(1) / (2 * sigma**2))
    dy = (mask[:, 1:] - mask[:, :-1]).abs().pow(beta)
    dx = (mask[:, :, 1:] - mask[:, :, :-1]).abs().pow(beta)
    return ((wy * dy).flatten(1).sum(1) + (wx * dx).flatten(1).sum(1)) / (dy[0].numel() + dx[0].numel())


class _Problem:
    """The objective of R rows: images (R, 3, H, W), baselines (R, 3, H, W), classes (R,)."""

    def __init__(self, model: nn.Module, images: Tensor, baselines: Tensor, classes: Tensor, opts: IGOSOptions):
        self.model, self.x, self.xb, self.cls, self.opts = model, images, baselines, classes, opts
        self.size = tuple(images.shape[-2:])
        self.rows = torch.arange(len(classes), device=images.device)
        guide = F.interpolate(images, size=(opts.mask_size, opts.mask_size), mode="area")
        self.guide = guide

    def score(self, keep: Tensor) -> Tensor:
        """p_c(Phi(x, up(keep))): keep (R, m, m) -> (R,)."""
        up = upsample(keep[:, None], self.size)
        return torch.sigmoid(self.model(self.x * up + self.xb * (1 - up))[self.rows, self.cls].float())

    def regulariser(self, d: Tensor, i: Tensor) -> Tensor:
        o = self.opts
        l1 = d.flatten(1).mean(1) + i.flatten(1).mean(1)
        btv = bilateral_tv(d, self.guide, o.bilateral_sigma, o.tv_beta) + bilateral_tv(
            i, self.guide, o.bilateral_sigma, o.tv_beta
        )
        return o.l1 * l1 + o.tv * btv

    @torch.no_grad()
    def objective(self, d: Tensor, i: Tensor) -> Tensor:
        return self.score(1 - d) - self.score(i) + self.regulariser(d, i)

    def integrated_gradient(self, keep: Tensor) -> Tensor:
        """(1/S) sum_s d p_c(Phi(x, s/S keep)) / d keep, evaluated at the path points: keep (R, m, m) -> (R, m, m)."""
        total = torch.zeros_like(keep)
        steps = self.opts.ig_steps
        for s in range(1, steps + 1):
            point = (keep * (s / steps)).detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.score(point).sum(), point)
            total += g
        return total / steps

    def direction(self, d: Tensor, i: Tensor) -> tuple[Tensor, Tensor]:
        """Descent directions (R, m, m) for D and I (minus the integrated / plain gradients)."""
        g_d = -self.integrated_gradient(1 - d)  # d/dD of p_c(Phi(x, 1 - D)): the path runs over K = 1 - D
        g_i = -self.integrated_gradient(i)  # d/dI of -p_c(Phi(x, I))
        d_ = d.detach().requires_grad_(True)
        i_ = i.detach().requires_grad_(True)
        r_d, r_i = torch.autograd.grad(self.regulariser(d_, i_).sum(), (d_, i_))
        return -(g_d + r_d), -(g_i + r_i)


def igos_rows(
    model: nn.Module,
    images: Tensor,
    baselines: Tensor,
    classes: Tensor,
    opts: IGOSOptions,
    history: list[Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Optimise R rows; returns (deletion masks, insertion masks), each (R, m, m) in [0, 1].

    ``history`` (if given) receives the objective (R,) before the first and after every iteration.
    """
    r_cnt, m = len(classes), opts.mask_size
    prob = _Problem(model, images, baselines, classes, opts)
    d = images.new_zeros(r_cnt, m, m)
    i = images.new_zeros(r_cnt, m, m)
    current = prob.objective(d, i)
    if history is not None:
        history.append(current)
    for _ in range(opts.iterations):
        dir_d, dir_i = prob.direction(d, i)
        norm = torch.maximum(dir_d.flatten(1).abs().amax(1), dir_i.flatten(1).abs().amax(1)).clamp_min(1e-12)
        dir_d, dir_i = dir_d / norm[:, None, None], dir_i / norm[:, None, None]
        accepted = torch.zeros(r_cnt, dtype=torch.bool, device=images.device)
        new_d, new_i, new_obj = d.clone(), i.clone(), current.clone()
        for k in range(_LINE_SEARCH_STEPS):
            eta = 0.5**k
            cand_d = (d + eta * dir_d).clamp(0, 1)
            cand_i = (i + eta * dir_i).clamp(0, 1)
            obj = prob.objective(cand_d, cand_i)
            take = (obj < current) & ~accepted
            new_d[take], new_i[take], new_obj[take] = cand_d[take], cand_i[take], obj[take]
            accepted |= take
            if bool(accepted.all()):
                break
        d, i, current = new_d, new_i, new_obj
        if history is not None:
            history.append(current)
    return d, i


@register_method(
    "igos",
    IGOSOptions,
    doc="iGOS++ (Khorram et al. 2021): deletion+insertion masks, integrated gradients, bilateral TV",
    output="mask",
)
@attribution_method
def igos(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: object) -> Tensor:
    """iGOS++ saliency I * D for every selected (image, class).

    images (B, 3, H, W) normalised; targets None or (B, C) bool (only selected pairs are optimised).
    Returns maps (B, C, H, W) in [0, 1].
    Cost per iteration: 2 * ig_steps forward+backward passes plus up to 16 line-search forwards.
    """
    opts = validate_options(IGOSOptions, options, "igos")
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images)
    pairs = check_targets(targets, b, num_classes, images.device).nonzero()
    baselines = gaussian_blur(images, opts.blur * min(h, w))
    out = []
    for start in range(0, len(pairs), opts.batch):
        rows = pairs[start : start + opts.batch]
        d, i = igos_rows(model, images[rows[:, 0]], baselines[rows[:, 0]], rows[:, 1], opts)
        out.append(upsample((d * i)[:, None], (h, w))[:, 0])
    if not out:
        return images.new_zeros(b, num_classes, h, w)
    return scatter_rows(torch.cat(out).clamp(0, 1), pairs, b, num_classes)
