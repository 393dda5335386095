"""Class-specific masking (Stalder et al. 2022, section 4.2, Tab. 1).

For every image containing target class t and every mask class k, the class mask s_k is
thresholded at each tau in {0.1, ..., 0.9}; the image masked with it, (s_k > tau) * x, is
classified and softmax(F(.))[t] is recorded (softmax, not sigmoid, as the paper does, to measure
one class's confidence against the others). Cell (t, k) = mean over tau and over the images
containing t, x100; the "none" column is the unmasked image. Summary: ``diagonal`` = mean of the
(t, t) cells, ``off_diagonal`` = mean of the (t, k != t) cells, ``selectivity`` = diagonal -
off_diagonal (high = masks keep their own class and only it). All C target rows are used (the
paper picked 5 VOC classes); rows without images are NaN and left out of the summary.

(s_k > tau) * x does not depend on t, so each (image, k, tau) is classified once and serves every
target present in the image. Identical masked images are classified once too: an empty mask
(any absent class of a good Explainer) is the all-mean image, shared by the whole batch, and a
threshold that gives the same binary mask as the previous one reuses its result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, Tables, per_class_frame, register_family

Classify = Callable[[Tensor], Tensor]  # images (N, 3, H, W) -> logits (N, C)


def _unique_masks(binary: Tensor) -> tuple[Tensor, Tensor]:
    """Which thresholded masks must be classified.

    binary: (B, K, T, Z) bool, thresholds in ascending order along T. Returns
    new: (B, K, T) bool, the masks to classify (non-empty, different from the previous threshold's), and
    source: (B, K, T) int64, for each mask the position (in the flattened B*K*T order) of the
    classified mask it equals, or -1 for an empty mask.
    """
    b, k, t, _ = binary.shape
    empty = ~binary.any(dim=3)
    same = torch.zeros_like(empty)
    if t > 1:
        same[:, :, 1:] = (binary[:, :, 1:] == binary[:, :, :-1]).all(dim=3)
    new = ~empty & ~same
    flat_pos = torch.arange(b * k * t, device=binary.device).view(b, k, t)
    # A repeated mask points at the last new mask at or before it along T (its run's first element).
    source = torch.where(new, flat_pos, torch.full_like(flat_pos, -1)).cummax(dim=2).values
    return new, source.masked_fill(empty, -1)


def class_specific_probs(
    classify: Classify,
    images: Tensor,
    maps: Tensor,
    thresholds: Sequence[float],
    max_elements: int = 2**27,
    build_chunk: int = 1024,
) -> Tensor:
    """Mean over thresholds of softmax(F((s_k > tau) * x)): the per-image cells of Table 1.

    images: (B, 3, H, W) normalised (zero = mean colour); maps: (B, K, H, W) in [0, 1];
    thresholds: T values. Returns (B, K, C) probabilities in [0, 1]. Images are processed in groups
    so that the (b, K, T, H, W) binary masks stay under ``max_elements`` booleans, and the masked
    images are built ``build_chunk`` at a time (``classify`` chunks its own forward passes).
    """
    thr = torch.tensor(sorted(float(x) for x in thresholds), device=maps.device, dtype=maps.dtype)
    b, k, h, w = maps.shape
    t = thr.numel()
    group = max(1, max_elements // max(1, k * t * h * w))
    zero_probs = torch.softmax(classify(torch.zeros_like(images[:1])), dim=1)[0]  # the empty-mask image
    out = []
    for start in range(0, b, group):
        x, s = images[start : start + group], maps[start : start + group]
        g = x.shape[0]
        binary = (s[:, :, None] > thr[None, None, :, None, None]).flatten(3)  # (g, K, T, Z)
        new, source = _unique_masks(binary)
        pos = new.flatten().nonzero()[:, 0]  # flattened (g, K, T) positions to classify
        probs = zero_probs.expand(g * k * t, -1).clone()
        for part in pos.split(build_chunk) if pos.numel() else ():  # masked images are built a chunk at a time
            bi, ki, ti = part // (k * t), (part // t) % k, part % t
            masked = x[bi] * (s[bi, ki] > thr[ti][:, None, None])[:, None].to(x.dtype)
            probs[part] = torch.softmax(classify(masked), dim=1)
        src = source.flatten()
        has_src = src >= 0
        probs[has_src] = probs[src[has_src]]
        out.append(probs.view(g, k, t, -1).mean(dim=2))
    return torch.cat(out)


def class_specific_naive(classify: Classify, images: Tensor, maps: Tensor, thresholds: Sequence[float]) -> Tensor:
    """Reference loop of ``class_specific_probs``: one forward pass per (image, class, threshold).

    Used by the tests and the benchmark to check the batched version; same shapes and result.
    """
    rows = []
    for i in range(maps.shape[0]):
        per_k = []
        for j in range(maps.shape[1]):
            per_t = [
                torch.softmax(classify(images[i : i + 1] * (maps[i, j] > tau).to(images.dtype)), dim=1)[0]
                for tau in thresholds
            ]
            per_k.append(torch.stack(per_t).mean(dim=0))
        rows.append(torch.stack(per_k))
    return torch.stack(rows)


def class_specific_sums(mean_probs: Tensor, clean_logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-batch sums of the table cells, to be added over batches.

    mean_probs: (B, K, C) from ``class_specific_probs``; clean_logits: (B, C) of the unmasked
    images; labels: (B, C) multi-hot. Returns sums (C, K + 1): row t, column k = sum over images
    containing t of mean_probs[b, k, t], last column the unmasked softmax[t]; counts (C,): images
    containing t.
    """
    y = labels.float()
    masked = torch.einsum("bt,bkt->tk", y, mean_probs.float())
    clean = (y * torch.softmax(clean_logits.float(), dim=1)).sum(dim=0)
    return torch.cat([masked, clean[:, None]], dim=1), y.sum(dim=0)


def class_specific_table(sums: Tensor, counts: Tensor, class_names: Sequence[str]) -> pd.DataFrame:
    """Tab. 1 of Stalder et al. 2022: rows = target classes, columns = mask classes + "none", values x100.

    sums: (C, C + 1), counts: (C,) from ``class_specific_sums`` (added over batches). Rows of
    classes without images are NaN. An extra column ``images`` holds the counts.
    """
    cells = (100.0 * sums.double() / counts.double().clamp_min(1.0)[:, None]).cpu().numpy()
    cells[(counts == 0).cpu().numpy()] = math.nan
    table = pd.DataFrame(cells, index=list(class_names), columns=[*class_names, "none"])
    table.index.name = "target"
    table["images"] = counts.long().cpu().numpy()
    return table


def class_specific_summary(table: pd.DataFrame) -> dict[str, float]:
    """diagonal, off_diagonal and selectivity (= diagonal - off_diagonal) of a Table 1, x100 units."""
    names = list(table.index)
    cells = torch.tensor(table[names].to_numpy(), dtype=torch.float64)
    rows = ~torch.isnan(cells).any(dim=1)
    if not rows.any():
        return {}
    eye = torch.eye(len(names), dtype=torch.bool)
    diag = cells[rows][eye[rows]].mean().item()
    off = cells[rows][~eye[rows]].mean().item() if len(names) > 1 else math.nan
    return {
        "class_specific/diagonal": diag,
        "class_specific/off_diagonal": off,
        "class_specific/selectivity": diag - off,
    }


@register_family("class_specific")
class ClassSpecificScorer(Scorer):
    """The class-specific table and its summary. Images at dataset positions >= the limit are not
    scored: ``cfg.class_specific_max_images`` (None: all), or ``cfg.fast_subsample`` with ``subsample``."""

    family = "class_specific"

    def __init__(self, setup: EvaluationSetup, subsample: bool = False) -> None:
        super().__init__(setup)
        cfg = setup.cfg
        self.limit = cfg.fast_subsample if subsample else cfg.class_specific_max_images
        c = setup.info.num_classes
        self.sums = torch.zeros(c, c + 1, dtype=torch.float64)
        self.counts = torch.zeros(c, dtype=torch.float64)
        self.images = 0

    def update(self, ctx: BatchContext) -> None:
        if self.limit is not None:
            sel = ctx.positions < self.limit
        else:
            sel = torch.ones(ctx.labels.shape[0], dtype=torch.bool, device=ctx.labels.device)
        if not sel.any():
            return
        probs = class_specific_probs(ctx.classifier, ctx.images[sel], ctx.maps[sel], ctx.cfg.class_specific_thresholds)
        clean = ctx.clean_logits[sel] if ctx.clean_logits is not None else ctx.classifier(ctx.images[sel])
        sums, counts = class_specific_sums(probs, clean, ctx.labels[sel])
        self.sums += sums.double().cpu()
        self.counts += counts.double().cpu()
        self.images += int(sel.sum())

    def compute(self) -> tuple[dict[str, float], Tables]:
        if not self.images:
            return {}, {}
        names = list(self.setup.info.class_names)
        table = class_specific_table(self.sums, self.counts, names)
        metrics = {**class_specific_summary(table), "class_specific/images": float(self.images)}
        per_class = per_class_frame(names)
        per_class["class_specific_diagonal"] = [table.loc[c, c] for c in names]
        per_class["class_specific_images"] = table["images"].to_numpy()
        return metrics, {"class_specific": table, "per_class": per_class}
