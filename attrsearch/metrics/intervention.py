"""The classifier's true reliance on the planted cue and on the object, measured by intervention.

Ground truth by intervention (FunnyBirds: Hesse, Schaub-Meyer & Roth, ICCV 2023; BackX: Yang et
al. 2024): the reliance of class c's probability on a region is its change when that region is
removed from an otherwise identical image. On the built-in data the removed image is rendered
exactly (``attrsearch.data.shapes_twins``). For every case (image, biased class c labelled in it
with its own cue visible) and p_c = sigmoid(logit_c) (the Explanandum is multi-label):

- ``cue_effect`` = p_c(x) - p_c(x without the cue of c);
- ``object_effect`` = p_c(x) - p_c(x without the objects of c, cue kept);
- ``cue_alone_effect`` = p_c(the cue of c alone) - p_c(the empty scene): the response to the cue
  with no object (Clark, Oliveira, Wilming & Haufe 2026, arXiv 2602.09238, plant such cues as
  class-dependent confounds).

Averages come with percentile bootstrap intervals over cases (``scipy.stats.bootstrap``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import Tensor, nn

from attrsearch.config import DataConfig
from attrsearch.data.base import AttributionDataset
from attrsearch.data.shapes_twins import TWIN_KINDS, twin_datasets

EFFECTS = {
    "cue_effect": ("original", "no_cue"),
    "object_effect": ("original", "no_object"),
    "cue_alone_effect": ("cue_alone", "empty"),
}


def bootstrap_interval(
    values: np.ndarray | Tensor,
    statistic: Callable[..., float] | None = None,
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    paired: tuple[np.ndarray | Tensor, ...] = (),
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (default: the mean) over cases.

    values: (N,) floats; ``paired``: further (N,) arrays resampled together with ``values``
    (``statistic(values, *paired)`` then, e.g. a correlation). Returns (low, high); (nan, nan)
    when fewer than 2 cases or the statistic is undefined on the data (e.g. constant inputs).
    """
    data = tuple(np.asarray(a, dtype=np.float64) for a in (values, *paired))
    if data[0].size < 2:
        return float("nan"), float("nan")
    if statistic is None:

        def statistic(x: np.ndarray, axis: int = -1) -> np.ndarray:
            return np.mean(x, axis=axis)

        vectorized = True
    else:
        vectorized = False
    with np.errstate(all="ignore"):
        res = stats.bootstrap(
            data,
            statistic,
            paired=len(data) > 1,
            vectorized=vectorized,
            n_resamples=n_resamples,
            confidence_level=level,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@torch.no_grad()
def class_probabilities(
    model: nn.Module, ds: AttributionDataset, device: torch.device | str = "cpu", batch_size: int = 128
) -> Tensor:
    """sigmoid(logits) of a multi-label classifier over a whole dataset: (N, C) in [0, 1], on the CPU."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(ds), batch_size):
        images = torch.stack([ds[i]["image"] for i in range(start, min(len(ds), start + batch_size))])
        out.append(torch.sigmoid(model(images.to(device)).float()).cpu())
    model.train(was_training)
    return torch.cat(out)


def case_effects(probabilities: dict[str, Tensor], classes: Tensor) -> dict[str, Tensor]:
    """Per-case probabilities of the case's class and the three effects.

    probabilities: kind -> (M, C) in [0, 1], row m = case m's twin of that kind (``TWIN_KINDS``);
    classes: (M,) int64. Returns ``p_<kind>`` (M,) in [0, 1] and each effect of ``EFFECTS`` (M,)
    in [-1, 1]."""
    rows = torch.arange(classes.numel())
    p = {f"p_{kind}": probabilities[kind][rows, classes] for kind in TWIN_KINDS if kind in probabilities}
    for name, (a, b) in EFFECTS.items():
        if f"p_{a}" in p and f"p_{b}" in p:
            p[name] = p[f"p_{a}"] - p[f"p_{b}"]
    return p


@dataclass
class InterventionReliance:
    """One Explanandum's measured reliance: ``cases`` (one row per case: image, class, ``p_<kind>``,
    the effects) and ``summary`` (the mean of each effect and of ``p_original``, ``<effect>_low`` /
    ``_high`` bootstrap bounds, ``cases``)."""

    cases: pd.DataFrame
    summary: dict[str, float]


def summarise(cases: pd.DataFrame, level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Means and percentile bootstrap intervals of the effects in ``cases``."""
    out: dict[str, float] = {"cases": float(len(cases))}
    if "p_original" in cases:
        out["p_original"] = float(cases["p_original"].mean())
    for name in EFFECTS:
        if name in cases:
            v = cases[name].to_numpy()
            out[name] = float(v.mean())
            low, high = bootstrap_interval(v, level=level, n_resamples=n_resamples, seed=seed)
            out[f"{name}_low"], out[f"{name}_high"] = low, high
    return out


def intervention_reliance(
    model: nn.Module,
    data: DataConfig,
    split: str,
    cache_dir: Path | str,
    *,
    limit: int | None = None,
    device: torch.device | str = "cpu",
    level: float = 0.95,
    n_resamples: int = 2000,
) -> InterventionReliance:
    """Measure ``model``'s cue and object effects on the cue cases of the first ``limit`` images of
    ``split`` of the built-in data ``data`` (twins generated and cached under ``cache_dir``).
    Set ``data.shapes.context.p_test = 1`` to put the cue next to every biased object."""
    datasets, index, classes = twin_datasets(data, split, Path(cache_dir), limit)
    probs = {kind: class_probabilities(model, ds, device) for kind, ds in datasets.items()}
    effects = case_effects(probs, torch.from_numpy(np.array(classes)))
    frame = pd.DataFrame({"image": index, "class": classes} | {k: v.numpy() for k, v in effects.items()})
    return InterventionReliance(frame, summarise(frame, level, n_resamples))
