"""The production comparison: the recommendation against the base, each trained with the same seeds
and scored on the test split (``attrsearch production``), per metric with intervals and a paired test.

Reads ``<results>/production/{best,base}/seeds/seed<S>/metrics.json``. Per metric: each
configuration's mean over seeds with its 95% Student-t interval, the mean paired difference
(best - base, same seed) with its interval, and the two-sided p-value of the paired t-test
(``scipy.stats.ttest_rel``). Every registered score metric both report is compared: the optimised
objective and the held-out families (faithfulness, transfer, class-specific, context reliance),
so a gain bought at the cost of another property shows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attrsearch.analysis.results import metric_direction
from attrsearch.results.trial import finite

PRODUCTION_DIR = "production"
# The suite's reference maps (ground truth, all-zero, all-one, half): their scores do not depend on the
# Explainer, so they are the same for both configurations and left out of the comparison.
REFERENCE_PREFIX = "sanity/"


def per_seed(folder: Path) -> dict[str, dict[str, float]]:
    """{seed folder name: {metric: value}} of one production run ({} when it has not run)."""
    out: dict[str, dict[str, float]] = {}
    seeds = folder / "seeds"
    if not seeds.is_dir():
        return out
    for sub in sorted(seeds.iterdir()):
        try:
            data = json.loads((sub / "metrics.json").read_text())
        except (OSError, ValueError):
            continue
        out[sub.name] = {k: float(v) for k, v in data.items() if finite(v)}
    return out


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    from scipy.stats import t

    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.975, len(values) - 1)) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Row:
    metric: str
    direction: str  # max | min
    best: tuple[float, float, float]  # mean, ci low, ci high
    base: tuple[float, float, float]
    diff: tuple[float, float, float]  # best - base, paired by seed
    p: float  # paired t-test, two-sided
    seeds: int

    @property
    def verdict(self) -> str:
        """ "better" | "worse" | "no difference" for the recommendation (p < 0.05 in the metric's direction)."""
        if not finite(self.p) or self.p >= 0.05:
            return "no difference"
        up = self.diff[0] > 0
        return "better" if up == (self.direction == "max") else "worse"


def compare(root: Path) -> tuple[list[Row], int]:
    """Rows for every score metric both production runs report over their shared seeds (but the reference maps'
    ``sanity/*`` scores, which no Explainer changes); (rows, seeds)."""
    from scipy.stats import ttest_rel

    best, base = per_seed(root / PRODUCTION_DIR / "best"), per_seed(root / PRODUCTION_DIR / "base")
    shared = [s for s in best if s in base]
    if len(shared) < 2:
        return [], len(shared)
    names = sorted(set.intersection(*(set(best[s]) & set(base[s]) for s in shared)))
    rows = []
    for name in names:
        direction = metric_direction(name)
        if direction is None or name.endswith("_std") or name.startswith(REFERENCE_PREFIX):
            continue
        a = np.array([best[s][name] for s in shared])
        b = np.array([base[s][name] for s in shared])
        d = a - b
        p = float(ttest_rel(a, b).pvalue) if d.std() > 0 else (1.0 if d.mean() == 0 else 0.0)
        rows.append(Row(name, direction, _interval(a), _interval(b), _interval(d), p, len(shared)))
    return rows, len(shared)
