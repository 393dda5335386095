"""The model-randomisation test for an amortized Explainer: retrain, compare maps, against a floor.

A post-hoc method is tested by randomising the classifier and recomputing its maps (Adebayo et
al. 2018, Sec. 3). An amortized Explainer reads only the image at inference, so it must instead be
*retrained* against a randomised Explanandum: a randomly initialised one, or one trained on
shuffled labels (Adebayo et al.'s data randomisation). If its maps then look like the real-model
Explainer's, they were not shaped by the classifier.

Similarity has a floor that is not 1: two Explainers trained against the same real classifier with
different seeds already differ (the *reseed floor*). And Binder et al. (CVPR 2023) show that maps
without information can pass a randomisation test, so an *uninformative control* (a centred
Gaussian, the same for every image) is scored beside it.

Similarity of two sets of maps, per selected (image, class) pair:

- ``spearman``: Spearman rank correlation of the pixel values (Adebayo et al. 2018);
- ``ssim``: SSIM of the min-max normalised maps (scikit-image; Adebayo et al. 2018);
- ``top10``: overlap of the top 10% pixels, |top(a) & top(b)| / k, chance-corrected as
  (overlap - 0.1) / (1 - 0.1), so identical maps give 1 and independent maps about 0.

The **dependence index** of a randomised variant, per measure::

    index = 1 - mean sim(real, randomised) / mean sim(real, reseed)

0: the Explainer trained on the randomised classifier is as close to the real one as a retrain with
another seed (its maps do not depend on the classifier); 1: no similarity left (they depend on it
entirely); the interval is a paired percentile bootstrap over the (image, class) pairs. The same
index of the control says where an uninformative map lands on this scale (usually near 1): a
variant at the control's level keeps no more of the real maps than a fixed blob does. The test
can only tell something when the real maps are reproducible, i.e. ``sim(real, reseed)`` is well
above ``sim(real, control)``; where it is not, every index is dominated by seed noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from attrsearch.attribution.methods.center import center_map
from attrsearch.attribution.sanity import spearman, ssim
from attrsearch.metrics.intervention import bootstrap_interval

MEASURES = ("spearman", "ssim", "top10")
TOP_FRACTION = 0.1


def selected_maps(maps: Tensor, targets: Tensor | None) -> Tensor:
    """maps (B, C, H, W), targets (B, C) bool or None (every pair) -> (N, H, W) the selected pairs' maps."""
    if targets is None:
        return maps.flatten(0, 1)
    return maps[targets.to(maps.device).bool()]


def top_overlap(a: Tensor, b: Tensor, fraction: float = TOP_FRACTION) -> Tensor:
    """Chance-corrected overlap of the top ``fraction`` pixels of each pair of maps.

    a, b: (N, H, W) -> (N,) in [-f / (1 - f), 1]: (|top(a) & top(b)| / k - f) / (1 - f) with
    k = ceil(f * H * W) pixels (ties broken by ``torch.topk``); 1 for identical rankings, about 0 for
    independent maps."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    fa, fb = a.flatten(1).float(), b.flatten(1).float()
    k = max(1, math.ceil(fraction * fa.shape[1]))
    sel_a = torch.zeros_like(fa, dtype=torch.bool).scatter_(1, fa.topk(k, dim=1).indices, True)
    sel_b = torch.zeros_like(fb, dtype=torch.bool).scatter_(1, fb.topk(k, dim=1).indices, True)
    overlap = (sel_a & sel_b).sum(1).double() / k
    chance = k / fa.shape[1]
    return ((overlap - chance) / (1 - chance)).cpu()


def map_similarity(a: Tensor, b: Tensor, targets: Tensor | None = None) -> dict[str, Tensor]:
    """Per-pair similarity of two sets of maps a, b (B, C, H, W) over the pairs ``targets`` (B, C) selects
    (None: all): ``{"spearman", "ssim", "top10"}`` -> (N,) float64 (Spearman is NaN for a constant map)."""
    if a.shape != b.shape:
        raise ValueError(f"maps to compare differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    sa, sb = selected_maps(a.detach().float().cpu(), targets), selected_maps(b.detach().float().cpu(), targets)
    return {
        "spearman": spearman(sa, sb).double(),
        "ssim": ssim(sa, sb).double(),
        "top10": top_overlap(sa, sb).double(),
    }


def control_maps(shape: tuple[int, int, int, int], sigma: float = 0.25) -> Tensor:
    """The uninformative control (Binder et al. 2023): one centred Gaussian (the ``center`` method's,
    ``sigma`` a fraction of the shorter side) for every image and class. (B, C, H, W) in (0, 1]."""
    b, c, h, w = shape
    return center_map((h, w), sigma).expand(b, c, h, w).clone()


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval (``level``, percentile); NaN where undefined."""

    value: float
    low: float
    high: float
    level: float = 0.95


def _ratio_index(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - np.mean(x, axis=axis) / np.mean(y, axis=axis)


def dependence_index(
    sim_randomised: Tensor | np.ndarray,
    sim_reseed: Tensor | np.ndarray,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """1 - mean(sim_randomised) / mean(sim_reseed), with a paired percentile bootstrap interval.

    sim_randomised, sim_reseed: (N,) similarities of the same N (image, class) pairs (real vs the
    randomised Explainer's maps; real vs the other seed's). Pairs where either is NaN are dropped.
    NaN (and NaN bounds) when no pair is left or the reseed floor's mean is 0."""
    x = np.asarray(sim_randomised, dtype=np.float64).ravel()
    y = np.asarray(sim_reseed, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired similarities differ in length: {x.shape} vs {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if not x.size or np.mean(y) == 0:
        return Estimate(math.nan, math.nan, math.nan, level)
    value = float(_ratio_index(x, y))
    if x.size < 2:
        return Estimate(value, math.nan, math.nan, level)
    low, high = bootstrap_interval(x, _ratio_index, paired=(y,), level=level, n_resamples=n_resamples, seed=seed)
    return Estimate(value, low, high, level)


def _nanmean(x: Tensor) -> float:
    x = x[~torch.isnan(x)]
    return float(x.mean()) if x.numel() else math.nan


def randomisation_scores(
    real: Tensor,
    reseed: Tensor,
    randomised: dict[str, Tensor],
    targets: Tensor | None = None,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Flat scores of the retraining test for one method.

    real, reseed: (B, C, H, W) maps of the real-model Explainer and of its retrain with another seed;
    randomised: variant name (``random_init``, ``shuffled_labels``) -> (B, C, H, W) maps of the
    Explainer retrained against that Explanandum; targets (B, C) bool: the pairs compared (usually
    the labels). Returns ``randomisation/<who>/<measure>`` (mean similarity to ``real``) for
    ``reseed``, ``control`` and each variant, and ``randomisation/<who>/<measure>/index`` with
    ``.../index_low`` and ``.../index_high`` for ``control`` and each variant.
    """
    sims = {"reseed": map_similarity(real, reseed, targets)}
    sims["control"] = map_similarity(real, control_maps(tuple(real.shape)), targets)
    for name, maps in randomised.items():
        sims[name] = map_similarity(real, maps, targets)
    out: dict[str, float] = {}
    for who, per_measure in sims.items():
        for measure, values in per_measure.items():
            out[f"randomisation/{who}/{measure}"] = _nanmean(values)
            if who == "reseed":
                continue
            est = dependence_index(values, sims["reseed"][measure], n_resamples=n_resamples, seed=seed)
            key = f"randomisation/{who}/{measure}/index"
            out[key], out[f"{key}_low"], out[f"{key}_high"] = est.value, est.low, est.high
    return out
