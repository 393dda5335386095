"""Deletion and insertion (Petsiuk et al. 2018 (RISE); an objective may also optimise them directly).

Pixels are ordered by saliency (highest first). Deletion replaces ``pixels_per_step`` more of them
per step by a substrate (default: zero in normalised space = the mean colour) and records the
scored class's probability after each step; insertion starts from the substrate (default: the
image blurred with a Gaussian kernel 11, sigma 5) and puts the original pixels back in the same
order. With n = ceil(Z / pixels_per_step) steps the curve has n + 1 points a_0..a_n and
AUC = (sum a - a_0 / 2 - a_n / 2) / n (trapezoid on [0, 1]). Lower deletion and higher insertion
AUC are better.

The probability is sigmoid(logit) of the scored class: the Explanandum is multi-label (RISE's
single-label softmax would let other present classes take the probability mass). The scored class
is a parameter: ``label`` = the present class the Explanandum scores highest on the clean image,
``predicted`` = the top-1 predicted class; its map s_c orders the pixels. The evaluation writes
substrate, pixels per step and scored class next to the AUCs.

All step images of a batch are built as one index computation (a rank map compared with each
step's pixel budget) and classified in chunks; ``causal_curves_naive`` is the per-image,
per-step loop the tests and the benchmark compare against. No step image is classified that the
evaluation has already classified (the clean image starts deletion and ends insertion, the zero
image is the mean substrate) or that repeats the curve's end image; the curves stay exact.
``analysis/benchmarks/bench_quantus.py`` runs them beside Quantus's PixelFlipping (Hedström et al.
2023) on identical maps and protocol and prints the time ratio and the AUC agreement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, Tables, register_family

Classify = Callable[[Tensor], Tensor]
Mode = Literal["deletion", "insertion"]

BLUR_KERNEL = 11
BLUR_SIGMA = 5.0


def substrate(images: Tensor, kind: Literal["mean", "blur"]) -> Tensor:
    """The replacement image. images: (B, 3, H, W) normalised. ``mean``: zeros (the mean colour);
    ``blur``: Gaussian blur, kernel 11, sigma 5 (RISE's insertion start)."""
    if kind == "mean":
        return torch.zeros_like(images)
    if kind == "blur":
        return gaussian_blur(images, kernel_size=[BLUR_KERNEL, BLUR_KERNEL], sigma=[BLUR_SIGMA, BLUR_SIGMA])
    raise ValueError(f"unknown substrate {kind!r}")


def num_steps(num_pixels: int, pixels_per_step: int) -> int:
    """n = ceil(Z / pixels_per_step): the curve has n + 1 points."""
    return max(1, math.ceil(num_pixels / pixels_per_step))


def pixel_ranks(saliency: Tensor) -> Tensor:
    """Rank of every pixel by decreasing saliency (0 = most salient; ties by position).

    saliency: (B, H, W) -> (B, H*W) int64.
    """
    b = saliency.shape[0]
    flat = saliency.flatten(1)
    order = flat.argsort(dim=1, descending=True, stable=True)
    return torch.empty_like(order).scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand(b, -1))


def end_steps(ranks: Tensor, top: Tensor, rest: Tensor, pixels_per_step: int, n: int) -> Tensor:
    """The first step whose image is already the curve's end image, per image.

    ranks: (B, 1, H, W) pixel ranks; top / rest: (B, 3, H, W) the changed / unchanged pixel values.
    Once every pixel where ``top`` and ``rest`` differ has been changed, the later step images are
    identical: step k = ceil((largest rank of a differing pixel + 1) / pixels_per_step) (0 when no
    pixel differs), at most n. Returns (B,) int64.
    """
    differs = (top != rest).any(dim=1, keepdim=True)
    last_rank = torch.where(differs, ranks, torch.full_like(ranks, -1)).flatten(1).amax(dim=1)
    return ((last_rank + pixels_per_step) // pixels_per_step).clamp(0, n)


def causal_curves(
    classify: Classify,
    images: Tensor,
    saliency: Tensor,
    classes: Tensor,
    mode: Mode,
    fill: Tensor,
    pixels_per_step: int,
    chunk_size: int = 256,
    first: Tensor | None = None,
    last: Tensor | None = None,
) -> Tensor:
    """Probability curves of deletion or insertion for a batch.

    images: (B, 3, H, W) normalised; saliency: (B, H, W), the scored class's map; classes: (B,)
    scored class per image; fill: (B, 3, H, W) substrate. Step i of image b shows the substrate
    (deletion) or the image (insertion) on the i * pixels_per_step most salient pixels.
    first / last: (B,) the probabilities of step 0 / step n where the caller already has them (the
    clean image's: deletion's first, insertion's last; the mean substrate's: the zero image's).
    No step is classified twice: steps after ``end_steps`` show the end image and take its value,
    and ``first`` / ``last`` are not classified again, so the result is the full computation's.
    Returns (B, n + 1) sigmoid probabilities in [0, 1].
    """
    b, _, h, w = images.shape
    n = num_steps(h * w, pixels_per_step)
    ranks = pixel_ranks(saliency).view(b, 1, h, w)
    # "changed" pixels take `top`, the rest `rest`.
    top, rest = (fill, images) if mode == "deletion" else (images, fill)
    end = end_steps(ranks, top, rest, pixels_per_step, n)
    steps = torch.arange(n + 1, device=images.device).expand(b, -1)
    need = steps <= end[:, None]
    if first is not None:
        need[:, 0] = False
    if last is not None:
        need &= steps < end[:, None]
    pairs_b, pairs_i = need.nonzero(as_tuple=True)
    probs = torch.full((b, n + 1), float("nan"), device=images.device)
    for start in range(0, pairs_b.numel(), chunk_size):
        pb, pi = pairs_b[start : start + chunk_size], pairs_i[start : start + chunk_size]
        changed = ranks[pb] < (pi * pixels_per_step).view(-1, 1, 1, 1)
        batch = torch.where(changed, top[pb], rest[pb])
        logits = classify(batch)
        probs[pb, pi] = torch.sigmoid(logits.gather(1, classes[pb].view(-1, 1))[:, 0])
    if first is not None:
        probs[:, 0] = first.to(probs)
    if last is not None:
        probs = torch.where(steps >= end[:, None], last.to(probs)[:, None], probs)
    # Steps after the end image (when ``last`` was not given) repeat its value.
    return torch.where(steps > end[:, None], probs.gather(1, end[:, None]), probs)


def causal_curves_naive(
    classify: Classify,
    images: Tensor,
    saliency: Tensor,
    classes: Tensor,
    mode: Mode,
    fill: Tensor,
    pixels_per_step: int,
) -> Tensor:
    """Reference of ``causal_curves`` in RISE's style: per image, change the pixels step by step
    and classify each step image alone. Same inputs and result; for tests and the benchmark."""
    b, _, h, w = images.shape
    n = num_steps(h * w, pixels_per_step)
    curves = torch.empty(b, n + 1)
    for j in range(b):
        order = saliency[j].flatten().argsort(descending=True, stable=True)
        current = (images[j] if mode == "deletion" else fill[j]).clone().view(3, -1)
        source = (fill[j] if mode == "deletion" else images[j]).reshape(3, -1)
        for i in range(n + 1):
            if i > 0:
                idx = order[(i - 1) * pixels_per_step : i * pixels_per_step]
                current[:, idx] = source[:, idx]
            logit = classify(current.view(1, 3, h, w))[0, classes[j]]
            curves[j, i] = torch.sigmoid(logit)
    return curves


def curve_auc(curves: Tensor) -> Tensor:
    """Normalised trapezoid area: (sum a - a_0 / 2 - a_n / 2) / n. curves: (B, n + 1) -> (B,) in [0, 1]."""
    n = curves.shape[1] - 1
    return (curves.sum(dim=1) - curves[:, 0] / 2 - curves[:, -1] / 2) / n


def scored_classes(clean_logits: Tensor, labels: Tensor, rule: Literal["label", "predicted"]) -> tuple[Tensor, Tensor]:
    """The class each image is scored on, and which images take part.

    clean_logits, labels: (B, C). ``label``: the present class with the highest clean logit (images
    without a label are skipped); ``predicted``: the top-1 class (every image).
    Returns classes (B,) int64 and use (B,) bool.
    """
    if rule == "predicted":
        return clean_logits.argmax(dim=1), torch.ones(labels.shape[0], dtype=torch.bool, device=labels.device)
    present = labels.bool()
    return clean_logits.masked_fill(~present, float("-inf")).argmax(dim=1), present.any(dim=1)


@register_family("faithfulness")
class FaithfulnessScorer(Scorer):
    """Deletion and insertion AUC of each image's scored class (images at dataset positions below
    ``cfg.faithfulness.max_images``, None: all), with the substrates, pixels per step, steps and
    scored-class rule written next to them."""

    family = "faithfulness"
    needs = frozenset({"clean_logits"})

    def __init__(self, setup: EvaluationSetup) -> None:
        super().__init__(setup)
        fcfg = setup.cfg.faithfulness
        self.fcfg = fcfg
        self.limit = fcfg.max_images
        self.pixels_per_step = fcfg.pixels_per_step or setup.info.image_size
        self.params = {
            "faithfulness/deletion_substrate": fcfg.deletion_substrate,
            "faithfulness/insertion_substrate": fcfg.insertion_substrate,
            "faithfulness/scored_class": fcfg.scored_class,
            "faithfulness/probability": "sigmoid",
        }

    def update(self, ctx: BatchContext) -> None:
        if self.limit is not None and ctx.batch_start >= self.limit:
            return
        classes, use = scored_classes(ctx.clean_logits, ctx.labels, self.fcfg.scored_class)
        if self.limit is not None:
            use = use & (ctx.positions < self.limit)
        if not use.any():
            return
        x, c, maps = ctx.images[use], classes[use], ctx.maps[use]
        sal = maps.gather(1, c.view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[-2:]))[:, 0]
        # Step images the evaluation has classified already: the clean image, the zero image.
        clean = torch.sigmoid(ctx.clean_logits[use].gather(1, c.view(-1, 1))[:, 0])
        zero = torch.sigmoid(ctx.zero_logits[0, c]) if ctx.zero_logits is not None else None
        for mode, kind in (("deletion", self.fcfg.deletion_substrate), ("insertion", self.fcfg.insertion_substrate)):
            on_substrate = zero if kind == "mean" else None
            first, last = (clean, on_substrate) if mode == "deletion" else (on_substrate, clean)
            curves = causal_curves(
                ctx.classifier, x, sal, c, mode, substrate(x, kind), self.pixels_per_step, self.setup.chunk, first, last
            )
            self.values.add(f"faithfulness/{mode}_auc", curve_auc(curves))

    def compute(self) -> tuple[dict[str, float], Tables]:
        metrics = self.values.means()
        images = self.values.all("faithfulness/deletion_auc").numel()
        if images:
            metrics["faithfulness/images"] = float(images)
        metrics["faithfulness/pixels_per_step"] = float(self.pixels_per_step)
        metrics["faithfulness/steps"] = float(num_steps(self.setup.info.image_size**2, self.pixels_per_step))
        return metrics, {}
