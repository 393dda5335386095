"""Statistics over a sweep's trials: leaderboard with seed confidence intervals, ANOVA over factors,
Pareto sets, rank agreement between metrics, and the recommended configuration.

Ranking, the Pareto front, confidence intervals and the recommended pick are the results
contract's (``attrsearch.results.choice``): ``best.yaml``, ``pareto.csv`` and the report agree.
Seeds: with ``seeds: [s1, ..., sn]`` a trial's ``<metric>`` is the mean over its n seeds and
``<metric>_std`` their population standard deviation (ddof 0). One seed gives no interval.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attrsearch.analysis.results import Results, Trial, finite, learning_curve, metric_direction
from attrsearch.config.base import get_dotted
from attrsearch.config.search import label
from attrsearch.results import choice
from attrsearch.results.choice import confidence_interval, pareto_mask, ranked
from attrsearch.results.layout import BEST_FILE, best_header_trial

__all__ = ["confidence_interval", "pareto_mask", "ranked"]

ARCH_FACTORS = ("explanandum.arch", "explainer.arch")


# ----------------------------------------------------------------------------------- leaderboard


@dataclass
class Row:
    """One leaderboard row: a trial and, per metric, (mean, std, ci_low, ci_high)."""

    rank: int
    trial: Trial
    cells: dict[str, tuple[float, float, float, float]]


def leaderboard(results: Results, metrics: list[str], top: int | None = None) -> tuple[list[Row], list[Row]]:
    """(completed rows ranked by ``metrics[0]``, early-stopped rows ranked the same way, shown apart).

    Early-stopped trials never ran the final suite: their numbers are epoch-suite values at the
    epoch they were stopped, not comparable with the completed ones.
    """
    n = results.sweep.seed_count
    mode = metric_direction(metrics[0]) or "max"

    def rows(pool: list[Trial]) -> list[Row]:
        out = []
        for i, t in enumerate(ranked(pool, metrics[0], mode)[:top], 1):
            cells = {}
            for m in metrics:
                mean = t.metrics.get(m, math.nan)
                std = t.metrics.get(f"{m}_std")
                lo, hi = confidence_interval(mean, std, n)
                cells[m] = (mean, std if std is not None else math.nan, lo, hi)
            out.append(Row(i, t, cells))
        return out

    return rows(results.by_status("completed")), rows(results.by_status("stopped"))


# ----------------------------------------------------------------------------------- ANOVA


def categorical_factors(results: Results, trials: list[Trial]) -> list[str]:
    """Categorical searched fields that vary among ``trials``: the two architectures first, then the others."""
    cats = [p for p, d in results.sweep.space.items() if d.categorical]
    order = [p for p in ARCH_FACTORS if p in cats] + [p for p in cats if p not in ARCH_FACTORS]
    return [p for p in order if len({label(t.values.get(p)) for t in trials}) > 1]


def _dummies(labels: list[str]) -> np.ndarray:
    levels = sorted(set(labels))
    return np.array([[1.0 if x == lv else 0.0 for lv in levels[1:]] for x in labels]).reshape(
        len(labels), len(levels) - 1
    )


def _rss(X: np.ndarray, y: np.ndarray) -> float:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    return float(r @ r)


@dataclass
class Anova:
    """Shares of a metric's variance (over trials and seeds) per term; they sum to 1 up to rounding."""

    metric: str
    factors: list[str]
    shares: dict[str, float]  # factor, "A x B", "seed", "residual"
    trials: int
    seeds: int


def anova(
    results: Results, metric: str, trials: list[Trial] | None = None, factors: list[str] | None = None
) -> Anova | None:
    """Two-way ANOVA of ``metric`` over categorical factors, with sequential (type I) sums of squares.

    Terms, in order: each factor's main effect, the interaction of the first two factors, the
    spread between seeds of one trial (``n * std**2`` per trial, from ``<metric>_std``), and the
    residual (the other hyperparameters and what no term explains). None when fewer than two
    levels of any factor or fewer trials than model terms + 1.
    """
    trials = [
        t for t in (results.by_status("completed") if trials is None else trials) if finite(t.metrics.get(metric))
    ]
    factors = categorical_factors(results, trials) if factors is None else factors
    if not factors or len(trials) < 3:
        return None
    n = results.sweep.seed_count
    y = np.array([t.metrics[metric] for t in trials])
    labels = {f: [label(t.values.get(f)) for t in trials] for f in factors}
    X = np.ones((len(trials), 1))
    rss = _rss(X, y)
    ss: dict[str, float] = {}
    for f in factors:
        X = np.hstack([X, _dummies(labels[f])])
        new = _rss(X, y)
        ss[f] = max(rss - new, 0.0)
        rss = new
    if len(factors) >= 2:
        a, b = factors[0], factors[1]
        inter = _dummies([x + "|" + z for x, z in zip(labels[a], labels[b])])
        new = _rss(np.hstack([X, inter]), y)
        ss[f"{a} x {b}"] = max(rss - new, 0.0)
        rss = new
    if X.shape[1] >= len(trials):
        return None
    within = sum(n * t.metrics.get(f"{metric}_std", 0.0) ** 2 for t in trials) if n > 1 else 0.0
    terms = {k: n * v for k, v in ss.items()}
    terms["seed"] = within
    terms["residual"] = n * rss
    total = n * float(((y - y.mean()) ** 2).sum()) + within
    if total <= 0:
        return None
    return Anova(metric, factors, {k: v / total for k, v in terms.items()}, len(trials), n)


def cell_table(
    trials: list[Trial], metric: str, rows: str, cols: str
) -> dict[tuple[Any, Any], tuple[float, float, int]]:
    """Per (row value, column value): mean of ``metric`` over trials, mean seed std, trial count."""
    cells: dict[tuple[Any, Any], list[Trial]] = {}
    for t in trials:
        if finite(t.metrics.get(metric)):
            cells.setdefault((t.values.get(rows), t.values.get(cols)), []).append(t)
    out = {}
    for key, ts in cells.items():
        stds = [t.metrics.get(f"{metric}_std") for t in ts if finite(t.metrics.get(f"{metric}_std"))]
        out[key] = (
            float(np.mean([t.metrics[metric] for t in ts])),
            float(np.mean(stds)) if stds else math.nan,
            len(ts),
        )
    return out


# ----------------------------------------------------------------------------------- Pareto


@dataclass
class Pareto:
    objectives: list[str]
    front: list[Trial]
    dominated: list[Trial]
    stopped: list[Trial]  # early-stopped trials: shown apart, never on the front


def pareto(results: Results, objectives: list[str] | None = None) -> Pareto:
    """Non-dominated completed trials over up to 3 objectives (directions from the metric registry)."""
    objectives = list(objectives or results.sweep.objectives)[:3]
    modes = ["max" if metric_direction(o) == "max" else "min" for o in objectives]
    stopped = [t for t in results.by_status("stopped") if all(finite(t.metrics.get(o)) for o in objectives)]
    front, dominated = choice.pareto_split(results.trials, objectives, modes)
    return Pareto(objectives, front, dominated, stopped)


# ----------------------------------------------------------------------------------- agreement


def score_metrics(trials: list[Trial], limit: int | None = None) -> list[str]:
    """Registered score metrics (with a direction) that vary across ``trials``, in registry order."""
    from attrsearch.metrics.registry import metric_names

    present = {k for t in trials for k in t.metrics}
    out = []
    for name in metric_names("full"):
        if name in present and metric_direction(name) and not name.startswith("sanity/"):
            vals = {t.metrics.get(name) for t in trials if finite(t.metrics.get(name))}
            if len(vals) > 1:
                out.append(name)
    return out[:limit]


def spearman(trials: list[Trial], metrics: list[str], min_periods: int = 3) -> np.ndarray:
    """Spearman rank correlation between each pair of ``metrics`` across ``trials`` (nan: < ``min_periods``
    shared trials)."""
    import pandas as pd

    frame = pd.DataFrame([{m: t.metrics.get(m, math.nan) for m in metrics} for t in trials], columns=metrics)
    return frame.corr(method="spearman", min_periods=min_periods).to_numpy()


# ----------------------------------------------------------------------------------- recommendation


def sensitivity(results: Results, trials: list[Trial], metric: str, k: int = 5) -> dict[str, float]:
    """``attrsearch.results.choice.sensitivity`` over the sweep's searched space."""
    return choice.sensitivity(results.sweep.space, trials, metric, k)


@dataclass
class Recommendation:
    objective: str
    mode: str
    trial: Trial | None
    best_mean: Trial | None
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)  # trial id, mean, ci, pessimistic, sensitivity
    ranges: dict[str, str] = field(default_factory=dict)  # hyperparameter -> range within 1% of the best
    near_best: int = 0
    command: str = ""


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def ranges_near_best(
    results: Results, trials: list[Trial], metric: str, mode: str, tolerance: float = 0.01
) -> tuple[dict[str, str], int]:
    """Range of each searched field among trials within ``tolerance`` (relative) of the best ``metric``.

    Returns ({path: "lo .. hi" or "{values}"}, number of those trials).
    """
    vals = [t.metrics[metric] for t in trials]
    best = max(vals) if mode == "max" else min(vals)
    tol = tolerance * abs(best) if best != 0 else tolerance * (max(vals) - min(vals))
    near = [
        t for t in trials if (t.metrics[metric] >= best - tol if mode == "max" else t.metrics[metric] <= best + tol)
    ]
    out = {}
    for path, dim in results.sweep.space.items():
        seen = [t.values.get(path) for t in near if path in t.values]
        if not seen:
            continue
        if dim.categorical or not all(finite(v) for v in seen):
            out[path] = "{" + ", ".join(sorted({_format(v) for v in seen})) + "}"
        else:
            out[path] = f"{_format(min(seen))} .. {_format(max(seen))}"
    return out, len(near)


def best_yaml_trial(results: Results) -> str | None:
    """The trial id named in ``best.yaml``'s header (None without the file)."""
    path = results.root / BEST_FILE
    return best_header_trial(path.read_text()) if path.is_file() else None


def train_command(results: Results, trial: Trial) -> str:
    """The exact ``attrsearch train`` command for ``trial``: ``best.yaml`` plus ``--set`` for another trial."""
    best_file = results.root / BEST_FILE
    if not best_file.is_file():
        return ""
    out = f"runs/{results.sweep.name}-best"
    parts = ["attrsearch", "train", str(best_file)]
    if best_yaml_trial(results) != trial.trial_id:
        for path in sorted(results.sweep.space):
            if path in trial.values:
                value = trial.values[path]
                text = (
                    repr(value)
                    if isinstance(value, float)
                    else (json.dumps(value) if not isinstance(value, str) else value)
                )
                parts += ["--set", f"{path}={text}"]
        out = f"runs/{results.sweep.name}-{trial.trial_id}"
    parts += ["--out", out]
    return " ".join(shlex.quote(p) for p in parts)


def recommend(results: Results, objective: str | None = None) -> Recommendation:
    """The configuration to train for production, judged on ``objective`` (default: the first): the
    contract's robust pick (``attrsearch.results.choice.recommend``), with the ranges of the searched
    fields near the best and the command that trains it."""
    objective = objective or results.sweep.objectives[0]
    mode = metric_direction(objective) or "max"
    trials = results.by_status("completed")
    pick = choice.recommend(trials, objective, mode, results.sweep.space, results.sweep.seed_count)
    if pick is None:
        return Recommendation(objective, mode, None, None, f"no completed trial reports {objective} yet.")
    ranges, near = ranges_near_best(results, ranked(trials, objective, mode), objective, mode)
    return Recommendation(
        objective,
        mode,
        pick.trial,
        pick.best,
        pick.reason,
        candidates=[{**c, "trial": c["trial"].trial_id} for c in pick.candidates],
        ranges=ranges,
        near_best=near,
        command=train_command(results, pick.trial),
    )


# ----------------------------------------------------------------------------------- the base


def base_values(results: Results) -> dict[str, Any]:
    """The base experiment's own values of the searched fields (from ``sweep.yaml``'s ``base``)."""
    base = results.sweep.raw.get("base")
    if not isinstance(base, dict):
        return {}
    from attrsearch.config import ExperimentConfig

    try:  # with the defaults the base does not spell out (what the sweep's first trial ran)
        full = ExperimentConfig.model_validate(base).model_dump(mode="json")
    except ValueError:
        full = {}
    missing = object()
    out = {}
    for path in results.sweep.space:
        value = get_dotted(base, path, missing)
        out[path] = get_dotted(full, path) if value is missing else value
    return out


def seed_values(trial: Trial, metric: str) -> dict[str, float]:
    """Per seed, the final ``metric`` of a trial (``run/seeds/seed<S>/metrics.json``; {} when absent)."""
    if trial.run_dir is None or not (trial.run_dir / "seeds").is_dir():
        return {}
    out = {}
    for folder in sorted((trial.run_dir / "seeds").iterdir()):
        try:
            value = json.loads((folder / "metrics.json").read_text()).get(metric)
        except (OSError, ValueError):
            continue
        if finite(value):
            out[folder.name] = float(value)
    return out


@dataclass
class BaseComparison:
    base: Trial | None
    gain: choice.Gain | None
    sentence: str


def compare_with_base(results: Results, pick: Trial, objective: str) -> BaseComparison:
    """The recommendation against the trial that ran the base configuration, on the validation split:
    a paired interval over seeds when both trials' per-seed results are at hand, else Welch's."""
    mode = metric_direction(objective) or "max"
    base = choice.base_trial(results.trials, base_values(results))
    why = "no trial has the base's values" if results.sweep.raw.get("start_from_base") else "start_from_base was off"
    if base is not None and base.status == "stopped" and base.trial_id != pick.trial_id:
        stopped = _compare_where_base_stopped(pick, base, objective, mode)
        if stopped is not None:
            return stopped
    if base is None or base.status != "completed":
        if base is not None:
            why = f"the base's trial {base.trial_id} was {base.status}, so it has no final score"
            base = None
        return BaseComparison(None, None, choice.gain_sentence(None, pick, None, why))
    a, b = seed_values(pick, objective), seed_values(base, objective)
    paired = [(a[s], b[s]) for s in sorted(a) if s in b] or None
    gain = choice.gain_over_base(pick, base, objective, mode, results.sweep.seed_count, paired)
    return BaseComparison(base, gain, choice.gain_sentence(gain, pick, base))


def _compare_where_base_stopped(pick: Trial, base: Trial, objective: str, mode: str) -> BaseComparison | None:
    """The base was stopped early by the scheduler (it ranked low at a rung): compare both trials' values
    at the last epoch the base reported (validation split, epoch suite). None if either lacks a value there."""
    base_curve = [r for r in learning_curve(base) if finite(r.get(objective))]
    if not base_curve:
        return None
    epoch = base_curve[-1]["epoch"]
    there = [r for r in learning_curve(pick) if r.get("epoch") == epoch and finite(r.get(objective))]
    if not there:
        return None
    a, b = float(there[0][objective]), float(base_curve[-1][objective])
    method = f"at epoch {epoch:g}, where the scheduler stopped the base; one value per trial: no interval"
    gain = choice.Gain(objective, mode, a, b, a - b, math.nan, math.nan, method)
    sentence = (
        f"The scheduler stopped the base (trial {base.trial_id}) at epoch {epoch:g}, so it has no final score; "
        + choice.gain_sentence(gain, pick, base)
        + " The production comparison (attrsearch production) trains both to the end."
    )
    return BaseComparison(base, gain, sentence)
