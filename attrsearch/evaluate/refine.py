"""Test-time refinement of any attribution's maps (Schinagl et al. 2025), and a wall-clock timer.

``refined_attribution`` follows an attribution with T Adam steps of the ranking objective on each
image's maps against the frozen Explanandum (``attrsearch.objectives.rank.refine_maps``);
``attrsearch evaluate --refine T`` and ``attrsearch explain --refine T`` use it. ``timed`` records
the seconds per image of any attribution, as ``attribution/seconds_per_image`` reports them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from attrsearch.config.objectives import RankObjective
from attrsearch.errors import UserError
from attrsearch.objectives.rank import REFINE_LR, refine_maps


def check_refine(steps: int, lr: float | None) -> float:
    """Validate ``--refine T`` / ``--refine-lr LR`` (one-line ``UserError``); returns the learning rate."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise UserError(f"--refine: expected a number of steps >= 0, got {steps!r}")
    lr = REFINE_LR if lr is None else lr
    if not (math.isfinite(lr) and lr > 0):
        raise UserError(f"--refine-lr: expected a finite learning rate > 0, got {lr!r}")
    return float(lr)


def refine_config(cfg) -> RankObjective:
    """The ranking objective the refinement optimises: the experiment's own when it trained with
    ``rank``, else ``RankObjective()`` defaults."""
    return cfg.objective if isinstance(cfg.objective, RankObjective) else RankObjective()


def refined_attribution(
    attribution: Callable[[Tensor], Tensor], classifier: nn.Module, cfg, steps: int, lr: float | None = None
) -> Callable[[Tensor], Tensor]:
    """``attribution`` followed by ``steps`` Adam steps of the ranking objective (Schinagl et al. 2025)
    on its maps, against ``classifier`` (the frozen Explanandum) with ``refine_config(cfg)``:
    images (B, 3, H, W) normalised -> maps (B, C, H, W) in [0, 1]. ``steps`` 0: ``attribution`` itself.
    The wrapper carries ``refine_steps``, ``refine_lr`` and ``rank`` (the objective used)."""
    lr = check_refine(steps, lr)
    if steps == 0:
        return attribution
    rank = refine_config(cfg)

    def attribute(images: Tensor) -> Tensor:
        return refine_maps(classifier, images, attribution(images), rank, steps, lr=lr)

    attribute.refine_steps, attribute.refine_lr, attribute.rank = steps, lr, rank  # type: ignore[attr-defined]
    attribute.output_kind = "mask"  # type: ignore[attr-defined]  (refine_maps returns masks in [0, 1])
    return attribute


def timed(attribution: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Wrap an attribution ``images (B, 3, H, W) -> maps (B, C, H, W)`` so it records ``seconds``,
    ``images`` and ``seconds_per_image`` (wall time, synchronised on CUDA) like ``method_attribution``."""

    def attribute(images: Tensor) -> Tensor:
        sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)
        sync()
        start = time.perf_counter()
        maps = attribution(images)
        sync()
        attribute.seconds += time.perf_counter() - start  # type: ignore[attr-defined]
        attribute.images += images.shape[0]  # type: ignore[attr-defined]
        attribute.seconds_per_image = attribute.seconds / attribute.images  # type: ignore[attr-defined]
        return maps

    attribute.seconds, attribute.images, attribute.seconds_per_image = 0.0, 0, float("nan")  # type: ignore[attr-defined]
    attribute.output_kind = getattr(attribution, "output_kind", None)  # type: ignore[attr-defined]
    return attribute
