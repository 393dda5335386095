"""Multi-label classification scores of a classifier: per-class average precision, mAP, F1.

Used to report the Explanandum's quality (test mAP, F1) and by metrics that classify masked
images. Plain batched tensor functions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, register_family


def average_precision(scores: Tensor, labels: Tensor) -> Tensor:
    """Per-class average precision (area under the precision-recall curve, sklearn's step definition).

    scores: (N, C) any real scores; labels: (N, C) multi-hot. Returns (C,); NaN for classes
    without positives. AP = sum_k P(k) * [label_k] / n_pos over the ranking by descending score
    (ties broken by order, as sklearn's ``average_precision_score`` does for distinct scores).
    """
    scores = scores.float()
    labels = labels.float()
    order = scores.argsort(dim=0, descending=True, stable=True)
    ranked = labels.gather(0, order)  # (N, C)
    tp = ranked.cumsum(dim=0)
    precision = tp / torch.arange(1, scores.shape[0] + 1, device=scores.device, dtype=torch.float32)[:, None]
    n_pos = ranked.sum(dim=0)
    ap = (precision * ranked).sum(dim=0) / n_pos
    return torch.where(n_pos > 0, ap, torch.full_like(ap, float("nan")))


def mean_average_precision(scores: Tensor, labels: Tensor) -> float:
    """mAP over classes that have at least one positive. scores, labels: (N, C)."""
    ap = average_precision(scores, labels)
    return float(ap[~ap.isnan()].mean()) if (~ap.isnan()).any() else float("nan")


def f1_per_image(probs: Tensor, labels: Tensor, threshold: float = 0.5) -> Tensor:
    """F1 of each image: 2|P and Y| / (|P| + |Y|), P = {c: probs_c >= threshold}; 1 when both are empty.

    probs: (N, C) in [0, 1]; labels: (N, C) multi-hot. Returns (N,) in [0, 1]; its mean is the
    sample-averaged F1, and per-image values can be accumulated over batches.
    """
    pred = probs >= threshold
    truth = labels.bool()
    tp = (pred & truth).sum(dim=1).float()
    denom = pred.sum(dim=1).float() + truth.sum(dim=1).float()
    return torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.ones_like(tp))


def multilabel_f1(probs: Tensor, labels: Tensor, threshold: float = 0.5, average: str = "samples") -> float:
    """Multi-label F1 of thresholded probabilities.

    probs: (N, C) in [0, 1] (sigmoid outputs); labels: (N, C) multi-hot.
    ``average="samples"``: mean over images of 2|P and Y| / (|P| + |Y|) (1 when both are empty);
    ``"micro"``: pooled counts over all images and classes.
    """
    if average == "samples":
        return float(f1_per_image(probs, labels, threshold).mean())
    pred = probs >= threshold
    truth = labels.bool()
    tp = (pred & truth).sum(dim=1).float()
    denom = pred.sum(dim=1).float() + truth.sum(dim=1).float()
    if average == "micro":
        total = float(denom.sum())
        return 2 * float(tp.sum()) / total if total > 0 else 1.0
    raise ValueError(f"unknown average {average!r}")


@register_family("classification")
class ClassificationScorer(Scorer):
    """The Explanandum's sample-averaged F1 on masked images m*x (``masked_f1``), on the clean images
    (``clean_f1``, reference) and on inverted masks (1-m)*x (``inverted_f1``).
    ``masked_only``: the fast suite's ``masked_f1`` alone."""

    family = "classification"

    def __init__(self, setup: EvaluationSetup, masked_only: bool = False) -> None:
        super().__init__(setup)
        self.masked_only = masked_only
        self.needs = frozenset({"masked_logits"} if masked_only else {"masked_logits", "clean_logits"})

    def update(self, ctx: BatchContext) -> None:
        self.values.add("classification/masked_f1", f1_per_image(torch.sigmoid(ctx.masked_logits), ctx.labels))
        if self.masked_only:
            return
        inverted = ctx.classifier(ctx.images * (1.0 - ctx.m[:, None]))
        self.values.add("classification/clean_f1", f1_per_image(torch.sigmoid(ctx.clean_logits), ctx.labels))
        self.values.add("classification/inverted_f1", f1_per_image(torch.sigmoid(inverted), ctx.labels))
