"""Does an attribution follow the classifier? Dependence scores of one method across an
Explanandum family whose reliance on a planted cue is graded and measured by intervention
(``attrsearch.metrics.intervention``).

Plain functions over arrays. ``true``: (K, M) per-case true cue effects of K family members on
the same M cases (image, biased class) of fixed evaluation images; ``attributed``: (K, M) the
method's attributed reliance on the cue for the same cases (``context.attribution_shares`` or
``context.relative_importance``). The scores:

- ``tracking``: Spearman and Pearson correlation, and the least-squares slope, between the
  members' mean true effect and mean attributed reliance: a method that follows the classifier
  rises with it;
- ``confound_minus_noise``: attributed reliance on the strongest shortcut member minus on the
  noise control (cues as often, independent of the class). Clark, Oliveira, Wilming & Haufe
  (2026, arXiv 2602.09238) find attributions rise on a watermark whether or not it carries the
  label: a salience filter scores about 0 here whatever its reliance level;
- ``per_image_agreement``: within one member, the correlation between each case's true cue effect
  and its attributed share (Adebayo, Muelly, Abelson & Kim, ICLR 2022, ask the same per image).

Intervals are percentile bootstraps over cases. For the family scores a resample draws the same
cases for every member (the evaluation images are shared), which ``scipy.stats.bootstrap``'s
one-dimensional resampling does not express: those resamples are drawn here with NumPy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from attrsearch.metrics.intervention import bootstrap_interval

Statistic = Callable[[np.ndarray, np.ndarray], dict[str, float]]


def _correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Spearman, Pearson and slope of y on x; NaN where x or y is constant."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        slope = float(np.polyfit(x, y, 1)[0]) if x.size >= 2 and np.ptp(x) > 0 else float("nan")
        return {"spearman": float("nan"), "pearson": float("nan"), "slope": slope}
    return {
        "spearman": float(stats.spearmanr(x, y).statistic),
        "pearson": float(stats.pearsonr(x, y).statistic),
        "slope": float(stats.linregress(x, y).slope),
    }


def _family_bootstrap(
    true: np.ndarray, attributed: np.ndarray, statistic: Statistic, level: float, n_resamples: int, seed: int
) -> dict[str, float]:
    """``statistic`` of the member means and its percentile interval over shared case resamples."""
    out = statistic(true.mean(axis=1), attributed.mean(axis=1))
    rng = np.random.default_rng(seed)
    m = true.shape[1]
    draws: dict[str, list[float]] = {k: [] for k in out}
    for _ in range(n_resamples):
        idx = rng.integers(m, size=m)
        for k, v in statistic(true[:, idx].mean(axis=1), attributed[:, idx].mean(axis=1)).items():
            draws[k].append(v)
    alpha = (1.0 - level) / 2
    for k, values in draws.items():
        v = np.asarray(values)
        v = v[np.isfinite(v)]
        low, high = np.quantile(v, [alpha, 1 - alpha]) if v.size else (np.nan, np.nan)
        out[f"{k}_low"], out[f"{k}_high"] = float(low), float(high)
    return out


def _check(true: np.ndarray, attributed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true, attributed = np.asarray(true, np.float64), np.asarray(attributed, np.float64)
    if true.ndim != 2 or true.shape != attributed.shape:
        raise ValueError(f"true and attributed must be (K, M) of one shape, got {true.shape} and {attributed.shape}")
    return true, attributed


def tracking(
    true: np.ndarray, attributed: np.ndarray, *, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Rank and linear correlation, and slope, between the members' mean true cue effect and mean
    attributed reliance. true, attributed: (K, M) over the same M cases, K >= 2 members.
    Returns ``spearman``, ``pearson`` in [-1, 1] and ``slope`` (attributed per unit of true
    effect), each with ``_low`` / ``_high`` bounds; NaN where a side does not vary."""
    true, attributed = _check(true, attributed)
    return _family_bootstrap(true, attributed, _correlations, level, n_resamples, seed)


def confound_minus_noise(
    confound: np.ndarray, noise: np.ndarray, *, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mean attributed reliance on the strongest shortcut member minus on the noise control.
    confound, noise: (M,) per-case attributed reliance on the same cases. Returns ``gap`` (in
    [-1, 1] for shares) with ``gap_low`` / ``gap_high`` (paired bootstrap)."""
    confound, noise = np.asarray(confound, np.float64), np.asarray(noise, np.float64)
    if confound.shape != noise.shape or confound.ndim != 1:
        raise ValueError(f"confound and noise must be (M,) of one shape, got {confound.shape} and {noise.shape}")
    diff = confound - noise
    low, high = bootstrap_interval(diff, level=level, n_resamples=n_resamples, seed=seed)
    if np.ptp(diff) == 0:  # every case alike: the interval is the point
        low = high = float(diff[0])
    return {"gap": float(diff.mean()), "gap_low": low, "gap_high": high}


def per_image_agreement(
    true: np.ndarray, attributed: np.ndarray, *, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Within one member, Spearman and Pearson correlation between each case's true cue effect and
    its attributed cue share. true, attributed: (M,). Returns ``spearman``, ``pearson`` in
    [-1, 1] with ``_low`` / ``_high`` bounds (paired bootstrap over cases); NaN if constant."""
    true, attributed = _check(np.atleast_2d(true), np.atleast_2d(attributed))
    x, y = true[0], attributed[0]
    out = _correlations(x, y)
    del out["slope"]
    for name in ("spearman", "pearson"):
        if np.isnan(out[name]):
            out[f"{name}_low"] = out[f"{name}_high"] = float("nan")
            continue

        def stat(a: np.ndarray, b: np.ndarray, name: str = name) -> float:
            return _correlations(a, b)[name]

        low, high = bootstrap_interval(x, stat, paired=(y,), level=level, n_resamples=n_resamples, seed=seed)
        out[f"{name}_low"], out[f"{name}_high"] = low, high
    return out
