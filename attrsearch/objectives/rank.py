"""Visual attribution by learning importance ranking (Schinagl et al. 2025, "Learn to Rank"): ``rank``.

The deletion and insertion scores (Petsiuk et al. 2018, RISE) are optimised directly:

    L = AUC_del(c) - AUC_ins(c) + lambda_area * mean(sigmoid(E(x)))

for the scored class c of each image (a present label drawn at random, or the top prediction), on
the multi-label Explanandum's sigmoid probability p_c. The importances are the class map s_c
average-pooled to a G x G grid (one G drawn per step from ``grid``); their descending sort is relaxed
into a doubly stochastic matrix P (rows = ranks, columns = cells) by Gumbel-Sinkhorn (Mena et al.
2018, eq. 3) started from the NeuralSort scores (Grover et al. 2019, eq. 4):

    log_alpha[i, j] = (N + 1 - 2 i) a_j - sum_k |a_j - a_k|,   P = Sinkhorn((log_alpha + sigma g) / tau)

with g standard Gumbel noise (training only). The soft top-k mask of cell j is T_k[j] = sum_{i <= k}
P[i, j]; step s in 0..S removes (deletion) or reveals (insertion) k = round(s N / S) cells:
deletion x_s = (1 - T) x + T r, insertion x_s = T x + (1 - T) r with the reference image r (black,
the mean colour or a blur). AUC = normalised trapezoid (sum a_s - a_0/2 - a_S/2) / S, as the metric.
As tau -> 0 (no noise) P tends to the hard sort and the soft AUCs to the hard ones. The endpoints
(x and r) do not depend on the map and are classified once without gradients.

``lambda_area`` (our addition) keeps the maps of the classes that are not scored empty, since the
ranking loss alone gives them no gradient.

``refine_maps`` is test-time refinement with the same objective: T Adam steps on the logits of
given maps (every class map against its own class, no noise), with the classifier frozen
(``attrsearch explain / evaluate --refine T``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.attribution import masks_from_logits
from attrsearch.config.objectives import RankObjective
from attrsearch.objectives.base import LossOutput, register_objective
from attrsearch.objectives.rtis import gaussian_blur

BLUR_SIGMA = 5 / 224  # the insertion substrate of the deletion/insertion metric (sigma 5 at 224 px), per image side


def neuralsort_scores(a: Tensor) -> Tensor:
    """NeuralSort's unnormalised log-permutation (Grover et al. 2019, eq. 4) for a descending sort.

    a: (B, N) -> (B, N, N); row i (0-based) peaks at the (i+1)-th largest entry.
    """
    n = a.shape[-1]
    pairwise = (a.unsqueeze(-1) - a.unsqueeze(-2)).abs().sum(dim=-1)  # (B, N): sum_k |a_j - a_k|
    coef = n - 1 - 2 * torch.arange(n, device=a.device, dtype=a.dtype)  # N + 1 - 2 i for 1-based i
    return coef[None, :, None] * a[:, None, :] - pairwise[:, None, :]


def sinkhorn(log_alpha: Tensor, iterations: int, tolerance: float = 1e-5, max_iterations: int = 2000) -> Tensor:
    """Sinkhorn normalisation in log space: (B, N, N) -> doubly stochastic P.

    Near-permutation matrices (small temperatures, near ties) converge slowly, so the scalings are
    first iterated without a graph until every row and column sums to 1 within ``tolerance`` (or
    ``max_iterations``), then ``iterations`` differentiable row/column steps start from them: the
    result is doubly stochastic and gradients flow through the last ``iterations`` steps.
    """
    with torch.no_grad():
        la = log_alpha.detach()
        for it in range(max_iterations):
            la = la - torch.logsumexp(la, dim=-1, keepdim=True)
            la = la - torch.logsumexp(la, dim=-2, keepdim=True)
            if it % 10 == 9 and (la.exp().sum(dim=-1) - 1.0).abs().max() < tolerance:
                break
        shift = la - log_alpha.detach()  # the converged row + column scalings
    log_alpha = log_alpha + shift
    for _ in range(iterations):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


def soft_permutation(
    a: Tensor,
    temperature: float,
    noise_scale: float = 0.0,
    iterations: int = 5,
    generator: torch.Generator | None = None,
    tolerance: float = 1e-5,
    max_iterations: int = 2000,
) -> Tensor:
    """Gumbel-Sinkhorn relaxation of the descending sort of ``a`` (B, N): (B, N, N) doubly stochastic,
    P[b, i, j] ~ "cell j has rank i"."""
    log_alpha = neuralsort_scores(a.float())
    if noise_scale > 0:
        u = torch.rand(log_alpha.shape, device=a.device, generator=generator).clamp(1e-10, 1 - 1e-10)
        log_alpha = log_alpha + noise_scale * -torch.log(-torch.log(u))
    return sinkhorn(log_alpha / temperature, iterations, tolerance, max_iterations)


def hard_permutation(a: Tensor) -> Tensor:
    """The exact descending sort of ``a`` (B, N) as a permutation matrix (B, N, N)."""
    order = a.argsort(dim=-1, descending=True)
    return F.one_hot(order, a.shape[-1]).to(a.dtype)


def step_counts(n: int, steps: int) -> list[int]:
    """Cells removed after each of the S + 1 steps: round(s N / S)."""
    return [round(s * n / steps) for s in range(steps + 1)]


def topk_masks(perm: Tensor, steps: int) -> Tensor:
    """Soft top-k cell masks of a (soft or hard) permutation: (B, N, N) -> (B, S + 1, N) in [0, 1]."""
    cum = torch.cat([perm.new_zeros(perm.shape[0], 1, perm.shape[-1]), perm.cumsum(dim=1)], dim=1)  # (B, N+1, N)
    ks = torch.tensor(step_counts(perm.shape[-1], steps), device=perm.device)
    return cum[:, ks].clamp(0.0, 1.0)


def cell_scores(maps: Tensor, grid: int) -> Tensor:
    """Class maps (B, H, W) -> importances on a G x G grid (B, G*G) (average pooling)."""
    return F.adaptive_avg_pool2d(maps.unsqueeze(1), grid).flatten(1)


def reference_image(images: Tensor, kind: str) -> Tensor:
    """The image that replaces removed cells: ``mean`` = zero in normalised space (the mean colour),
    ``blur`` = Gaussian blur (sigma 5 px at 224), ``black`` = the batch's per-channel minimum (black
    for data with black pixels; the loss does not know the normalisation). (B, 3, H, W)."""
    if kind == "mean":
        return torch.zeros_like(images)
    if kind == "blur":
        return gaussian_blur(images, max(1.0, BLUR_SIGMA * min(images.shape[-2:])))
    return images.amin(dim=(0, 2, 3), keepdim=True).expand_as(images)


def auc(curve: Tensor) -> Tensor:
    """Normalised trapezoid of curves (B, S + 1): (sum a - a_0/2 - a_S/2) / S -> (B,)."""
    s = curve.shape[1] - 1
    return (curve.sum(dim=1) - 0.5 * (curve[:, 0] + curve[:, -1])) / s


def perturbation_curves(
    classifier: nn.Module, images: Tensor, reference: Tensor, cells: Tensor, classes: Tensor, grid: int
) -> tuple[Tensor, Tensor]:
    """Deletion and insertion curves p_c(x_s) of cell masks ``cells`` (B, S + 1, G*G).

    Step 0 of deletion and step S of insertion are x itself and the other ends the reference: those
    are classified once without gradients (the masks there are 0 / 1 up to Sinkhorn's tolerance).
    Returns (deletion, insertion): (B, S + 1) sigmoid probabilities of ``classes`` (B,).
    """
    b, s1, _ = cells.shape
    h, w = images.shape[-2:]
    idx = classes[:, None]
    with torch.no_grad():
        ends = torch.sigmoid(classifier(torch.cat([images, reference])).float()).chunk(2)
        p_clean, p_ref = (e.gather(1, idx) for e in ends)  # (B, 1)
    inner = cells[:, 1:-1].reshape(b, s1 - 2, grid, grid)
    t = F.interpolate(inner, size=(h, w), mode="nearest").unsqueeze(2).to(images.dtype)  # (B, S-1, 1, H, W)
    x, r = images.unsqueeze(1), reference.unsqueeze(1)
    deleted = (1.0 - t) * x + t * r
    inserted = t * x + (1.0 - t) * r
    both = torch.cat([deleted, inserted], dim=1).flatten(0, 1)  # (B * 2(S-1), 3, H, W)
    probs = torch.sigmoid(classifier(both).float()).view(b, 2 * (s1 - 2), -1)
    picked = probs.gather(2, idx[:, None, :].expand(-1, probs.shape[1], 1)).squeeze(2)
    del_inner, ins_inner = picked[:, : s1 - 2], picked[:, s1 - 2 :]
    deletion = torch.cat([p_clean, del_inner, p_ref], dim=1)
    insertion = torch.cat([p_ref, ins_inner, p_clean], dim=1)
    return deletion, insertion


def scored_classes(classifier: nn.Module, images: Tensor, labels: Tensor, target: str) -> Tensor:
    """(B,) the class scored per image: a present label drawn uniformly (``label``; the top prediction
    for an image without labels) or the top-1 prediction (``predicted``)."""
    present = labels.bool()
    has = present.any(dim=1)
    if target == "label" and has.all():
        return torch.multinomial(present.float(), 1).squeeze(1)
    with torch.no_grad():
        top = classifier(images).float().argmax(dim=1)
    if target == "predicted":
        return top
    drawn = torch.multinomial(present.float() + (~has)[:, None].float(), 1).squeeze(1)
    return torch.where(has, drawn, top)


@register_objective(RankObjective)
def rank_loss(classifier: nn.Module, images: Tensor, labels: Tensor, mask_logits: Tensor, cfg) -> LossOutput:
    """Soft deletion AUC - soft insertion AUC (Schinagl et al. 2025) + lambda_area * mean(s), for a batch.

    images: (B, 3, H, W) normalised; labels: (B, C); mask_logits: (B, C, H, W). Training (grad enabled)
    adds the Gumbel noise and draws G; without gradients (validation) the first G, no noise.
    """
    masks = masks_from_logits(mask_logits)
    b = images.shape[0]
    training = torch.is_grad_enabled()
    grid = cfg.grid[int(torch.randint(len(cfg.grid), ()).item())] if training and len(cfg.grid) > 1 else cfg.grid[0]
    classes = scored_classes(classifier, images, labels, cfg.target)
    maps = masks[torch.arange(b, device=masks.device), classes]  # (B, H, W)
    deletion, insertion = soft_curves(classifier, images, maps, classes, cfg, grid, noise=training)
    terms = {
        "deletion_auc": auc(deletion).mean(),
        "insertion_auc": auc(insertion).mean(),
        "area": masks.mean(),
    }
    loss = terms["deletion_auc"] - terms["insertion_auc"] + cfg.lambda_area * terms["area"]
    logits = torch.logit(insertion[:, -2:-1].detach().clamp(1e-6, 1 - 1e-6)).expand(-1, masks.shape[1])
    return LossOutput(loss, {k: v.detach() for k, v in terms.items()}, masks, logits)


def hard_auc(
    classifier: nn.Module, images: Tensor, maps: Tensor, classes: Tensor, grid: int, steps: int, reference: str
) -> tuple[Tensor, Tensor]:
    """The exact (hard-sorted) deletion and insertion AUCs of the same G x G, S-step protocol. (B,), (B,)."""
    cells = topk_masks(hard_permutation(cell_scores(maps, grid)), steps)
    with torch.no_grad():
        d, i = perturbation_curves(classifier, images, reference_image(images, reference), cells, classes, grid)
    return auc(d), auc(i)


def soft_auc(
    classifier: nn.Module,
    images: Tensor,
    maps: Tensor,
    classes: Tensor,
    cfg,
    grid: int | None = None,
    noise: bool = False,
) -> tuple[Tensor, Tensor]:
    """The relaxed deletion and insertion AUCs the loss uses (no noise unless ``noise``). (B,), (B,)."""
    grid = cfg.grid[0] if grid is None else grid
    d, i = soft_curves(classifier, images, maps, classes, cfg, grid, noise=noise)
    return auc(d), auc(i)


def soft_curves(
    classifier: nn.Module,
    images: Tensor,
    maps: Tensor,
    classes: Tensor,
    cfg,
    grid: int,
    noise: bool,
    reference: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Soft deletion and insertion curves (B, S + 1) of ``classes`` on the G x G cells of ``maps`` (B, H, W),
    ranked by the Gumbel-Sinkhorn relaxation (with the Gumbel noise if ``noise``): what the loss,
    ``soft_auc`` and ``refine_maps`` share. ``reference``: the substrate images (B, 3, H, W), default
    ``reference_image(images, cfg.reference)``."""
    perm = soft_permutation(
        cell_scores(maps, grid),
        cfg.temperature,
        cfg.noise_scale if noise else 0.0,
        cfg.sinkhorn_iterations,
        tolerance=cfg.sinkhorn_tolerance,
        max_iterations=cfg.sinkhorn_max_iterations,
    )
    reference = reference_image(images, cfg.reference) if reference is None else reference
    return perturbation_curves(classifier, images, reference, topk_masks(perm, cfg.steps), classes, grid)


REFINE_LR = 0.1  # Adam's step on the map logits
REFINE_CHUNK = 8  # (image, class) rows per pass: each row classifies 2 (S - 1) perturbed images with a graph
REFINE_EPS = 1e-4  # the maps are clamped to [eps, 1 - eps] before the logit


def _map_rows(maps: Tensor, chunk: int):
    """(image, class) rows in chunks: yields (image index, class index) pairs of (R,) index tensors."""
    b, c = maps.shape[:2]
    rows = torch.arange(b * c, device=maps.device)
    for part in rows.split(max(1, chunk)):
        yield part // c, part % c


def _row_objective(
    classifier: nn.Module, images: Tensor, maps: Tensor, classes: Tensor, cfg, reference: Tensor
) -> Tensor:
    """Per row (R,): soft deletion AUC - soft insertion AUC of ``classes`` on ``maps`` (R, H, W), no Gumbel
    noise, grid ``cfg.grid[0]``, + ``cfg.lambda_area`` * mean of the row's map."""
    deletion, insertion = soft_curves(
        classifier, images, maps, classes, cfg, cfg.grid[0], noise=False, reference=reference
    )
    return auc(deletion) - auc(insertion) + cfg.lambda_area * maps.flatten(1).mean(dim=1)


def _usable(t: Tensor) -> Tensor:
    """A tensor autograd may save (a copy when it was made under ``torch.inference_mode``)."""
    return t.clone() if t.is_inference() else t


@torch.no_grad()
def refine_objective(classifier: nn.Module, images: Tensor, maps: Tensor, cfg, chunk: int = REFINE_CHUNK) -> Tensor:
    """The soft objective ``refine_maps`` lowers, per image and class: (B, C), without gradients.

    images: (B, 3, H, W) normalised; maps: (B, C, H, W) in [0, 1]; map c scored on class c.
    """
    reference = reference_image(images, cfg.reference)
    out = maps.new_zeros(maps.shape[:2], dtype=torch.float32)
    for b, c in _map_rows(maps, chunk):
        out[b, c] = _row_objective(classifier, images[b], maps[b, c].float(), c, cfg, reference[b])
    return out


def refine_maps(
    classifier: nn.Module,
    images: Tensor,
    maps: Tensor,
    cfg,
    steps: int,
    lr: float = REFINE_LR,
    chunk: int = REFINE_CHUNK,
) -> Tensor:
    """Test-time refinement: ``steps`` Adam steps of the ranking objective (Schinagl et al. 2025) on each map.

    images: (B, 3, H, W) normalised; maps: (B, C, H, W) in [0, 1] (an Explainer's masks); cfg: a
    ``RankObjective``. Every class map c of every image is refined against class c's own sigmoid
    probability: the rows (image, class) are optimised independently, ``chunk`` rows per pass, each on
    its own logits z = logit(clamp(map, eps, 1 - eps)) with the loss

        soft AUC_del(c) - soft AUC_ins(c) + lambda_area * mean(sigmoid(z))

    (no Gumbel noise, grid G = ``cfg.grid[0]``, the reference image of the whole batch). Gradients are
    taken with ``torch.autograd.grad`` w.r.t. the logits only: the classifier's weights get no ``.grad``,
    are not changed and its mode is left as it is (eval for a frozen Explanandum). Works under an outer
    ``torch.no_grad`` / ``torch.inference_mode``. Returns (B, C, H, W) float32 in [0, 1]; ``steps`` 0
    returns ``maps`` itself.
    """
    if steps < 0:
        raise ValueError(f"refine steps must be >= 0, got {steps}")
    if steps == 0:
        return maps
    with torch.inference_mode(False), torch.enable_grad():
        images = _usable(images.detach())
        reference = reference_image(images, cfg.reference)
        out = maps.detach().float().clone()
        for b, c in _map_rows(maps, chunk):
            x, ref = images[b], reference[b]
            logits = torch.logit(out[b, c].clamp(REFINE_EPS, 1.0 - REFINE_EPS)).requires_grad_(True)
            optimiser = torch.optim.Adam([logits], lr=lr)
            for _ in range(steps):
                loss = _row_objective(classifier, x, torch.sigmoid(logits), c, cfg, ref).sum()
                (logits.grad,) = torch.autograd.grad(loss, [logits])
                optimiser.step()
            out[b, c] = torch.sigmoid(logits.detach())
    return out
