"""Which trials win: ranking, the Pareto front, the best trial and the recommended one.

- ``best``: the completed trial with the best mean of the first objective (``best.yaml``);
- ``pareto_front``: the completed trials no other completed trial dominates (``pareto.csv``);
- ``recommend``: the report's robust pick. The best mean, unless other trials' 95% intervals over
  seeds overlap its own: then, among those, the one with the best robust score (mean minus one seed
  std minus its neighbourhood sensitivity for a maximised metric, plus both for a minimised one).

Trials stopped early by the scheduler never ran the final suite: none of these choices counts them.
Seeds: a trial's ``<metric>`` is the mean over its n seeds and ``<metric>_std`` their population std
(ddof 0); the 95% interval of the mean is ``mean +- t(0.975, n-1) * std / sqrt(n-1)`` (Student's t).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attrsearch.config.search import Dimension, label
from attrsearch.results.trial import Trial, finite


def ranked(trials: list[Trial], metric: str, mode: str) -> list[Trial]:
    """Trials with a finite ``metric``, best first (ties: earlier trial id first)."""
    sign = -1.0 if mode == "max" else 1.0
    return sorted(
        [t for t in trials if finite(t.metrics.get(metric))], key=lambda t: (sign * t.metrics[metric], t.trial_id)
    )


def completed(trials: list[Trial]) -> list[Trial]:
    return [t for t in trials if t.status == "completed"]


def best(trials: list[Trial], objective: str, mode: str) -> Trial | None:
    """The completed trial with the best ``objective`` (None when none reports it)."""
    pool = ranked(completed(trials), objective, mode)
    return pool[0] if pool else None


def pareto_mask(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``points`` (trials x objectives) that no other row dominates.

    ``signs``: +1 for maximised, -1 for minimised objectives. A row dominates another when it is at
    least as good on every objective and better on one.
    """
    s = points * signs
    keep = np.ones(len(s), dtype=bool)
    for i in range(len(s)):
        keep[i] = not ((s >= s[i]).all(axis=1) & (s > s[i]).any(axis=1)).any()
    return keep


def pareto_split(trials: list[Trial], objectives: list[str], modes: list[str]) -> tuple[list[Trial], list[Trial]]:
    """(front, dominated) among the completed trials that report every objective, in trial order."""
    pool = [t for t in completed(trials) if all(finite(t.metrics.get(o)) for o in objectives)]
    if not pool:
        return [], []
    signs = np.array([1.0 if m == "max" else -1.0 for m in modes])
    mask = pareto_mask(np.array([[t.metrics[o] for o in objectives] for t in pool]), signs)
    return [t for t, k in zip(pool, mask) if k], [t for t, k in zip(pool, mask) if not k]


def pareto_front(trials: list[Trial], objectives: list[str], modes: list[str]) -> list[Trial]:
    """The completed trials that no other completed trial dominates on every objective."""
    return pareto_split(trials, objectives, modes)[0]


@dataclass
class TrialTable:
    """A sweep's trials with its objectives and their modes ("max" | "min")."""

    trials: list[Trial]
    objectives: list[str]
    modes: list[str]

    def completed(self) -> list[Trial]:
        return completed(self.trials)

    def counts(self) -> dict[str, int]:
        """Number of trials per status."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def ranked(self, pool: list[Trial] | None = None) -> list[Trial]:
        """``pool`` (default: the completed trials) ranked on the first objective."""
        return ranked(self.completed() if pool is None else pool, self.objectives[0], self.modes[0])

    def best(self) -> Trial | None:
        return best(self.trials, self.objectives[0], self.modes[0])

    def pareto(self) -> list[Trial]:
        return pareto_front(self.trials, self.objectives, self.modes)


def format_leaderboard(table: TrialTable, top: int = 10) -> str:
    """The top completed trials by the first objective (other objectives and searched values beside)."""
    import pandas as pd

    board = table.ranked()
    kind = "completed"
    if not board:  # nothing completed yet: rank whatever has reported the objective
        board, kind = table.ranked(table.trials), "reported so far"
    if not board:
        return f"no trial has reported {table.objectives[0]} yet"
    rows = []
    for i, t in enumerate(board[:top], 1):
        row: dict[str, Any] = {"rank": i, "trial": t.trial_id, "status": t.status, "epochs": t.epochs}
        for o in table.objectives:
            row[o] = t.metrics.get(o)
        for key, value in t.values.items():
            row[key] = value if isinstance(value, (int, float, str)) else json.dumps(value)
        rows.append(row)
    text = pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}")
    direction = "higher" if table.modes[0] == "max" else "lower"
    head = f"top {min(top, len(board))} of {len(board)} {kind} trials by {table.objectives[0]}"
    return f"{head} ({direction} is better, val split):\n{text}"


# ----------------------------------------------------------------------------------- recommendation


def confidence_interval(mean: float, std: float | None, n: int, level: float = 0.95) -> tuple[float, float]:
    """The t-interval of a mean over ``n`` seeds from its population std; (nan, nan) for n < 2 or no std."""
    if n < 2 or std is None or not finite(std) or not finite(mean):
        return math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n - 1)
    return mean - half, mean + half


def coordinates(space: dict[str, Dimension], trials: list[Trial]) -> np.ndarray:
    """Trials as points in [0, 1]^d of the searched space (log where the range is log; categories one-hot)."""
    cols = []
    for path, dim in space.items():
        if dim.discrete:
            for v in dim.values:
                cols.append([1.0 if label(t.values.get(path)) == label(v) else 0.0 for t in trials])
            continue
        use_log = dim.log and dim.low > 0
        lo, hi = (math.log(dim.low), math.log(dim.high)) if use_log else (float(dim.low), float(dim.high))
        span = (hi - lo) or 1.0
        col = []
        for t in trials:
            v = t.values.get(path)
            ok = finite(v) and (v > 0 or not use_log)
            col.append(((math.log(v) if use_log else float(v)) - lo) / span if ok else 0.5)
        cols.append(col)
    return np.array(cols, dtype=float).T if cols else np.zeros((len(trials), 0))


def sensitivity(space: dict[str, Dimension], trials: list[Trial], metric: str, k: int = 5) -> dict[str, float]:
    """Per trial: mean |metric difference| to its ``k`` nearest trials in the normalised search space.

    Small = the metric barely changes around this configuration (it is not a lucky spike).
    """
    if len(trials) < 2:
        return {t.trial_id: math.nan for t in trials}
    x = coordinates(space, trials)
    y = np.array([t.metrics[metric] for t in trials])
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    k = min(k, len(trials) - 1)
    near = np.argsort(d, axis=1)[:, :k]
    return {t.trial_id: float(np.abs(y[near[i]] - y[i]).mean()) for i, t in enumerate(trials)}


@dataclass
class Pick:
    """The recommended trial, the best mean (``best``'s trial) and the candidates weighed between them."""

    trial: Trial
    best: Trial
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)  # trial, mean, std, ci, pessimistic, ...


def _candidate(t: Trial, objective: str, n: int, sens: float, sign: float) -> dict[str, Any]:
    mean, std = t.metrics[objective], t.metrics.get(f"{objective}_std", math.nan)
    pess = mean - sign * std if finite(std) else mean
    robust = pess - sign * sens if finite(sens) else pess
    ci = confidence_interval(mean, std, n)
    return {"trial": t, "mean": mean, "std": std, "ci": ci, "pessimistic": pess, "sensitivity": sens, "robust": robust}


def recommend(trials: list[Trial], objective: str, mode: str, space: dict[str, Dimension], seeds: int) -> Pick | None:
    """The configuration to train for production, judged on ``objective`` (None: no completed trial
    reports it). Ties of the robust score: the better mean."""
    pool = ranked(completed(trials), objective, mode)
    if not pool:
        return None
    sens = sensitivity(space, pool, objective)
    sign = 1.0 if mode == "max" else -1.0
    top = _candidate(pool[0], objective, seeds, sens[pool[0].trial_id], sign)
    if seeds < 2 or not finite(top["ci"][0]):
        reason = f"best mean {objective} of {len(pool)} completed trials (one seed per trial: no confidence interval)."
        return Pick(pool[0], pool[0], reason, [top])
    others = (_candidate(t, objective, seeds, sens[t.trial_id], sign) for t in pool[1:])
    cands = [top] + [
        c for c in others if finite(c["ci"][0]) and c["ci"][1] >= top["ci"][0] and c["ci"][0] <= top["ci"][1]
    ]
    if len(cands) == 1:
        return Pick(
            pool[0],
            pool[0],
            f"best mean {objective} over {seeds} seeds; no other trial's 95% interval overlaps it.",
            cands,
        )
    chosen = max(cands, key=lambda c: (sign * c["robust"], sign * c["mean"]))["trial"]
    worst = "mean - std - sensitivity" if sign > 0 else "mean + std + sensitivity"
    reason = (
        f"{len(cands)} trials have 95% intervals overlapping the best mean's, so {objective} cannot tell "
        "them apart; "
        f"{chosen.trial_id} has the best robust score ({worst}: what an unlucky seed with a slightly different "
        "setting would still score)."
    )
    return Pick(chosen, pool[0], reason, cands)


# ----------------------------------------------------------------------------------- the base


def _same(a: Any, b: Any) -> bool:
    if finite(a) and finite(b):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    return label(a) == label(b)


def base_trial(trials: list[Trial], base: dict[str, Any]) -> Trial | None:
    """The earliest trial whose searched values are the base's own (``start_from_base``'s first trial, or the
    grid point equal to the base); None when no trial ran the base. ``base``: searched path -> the base's value."""
    if not base:
        return None
    for t in sorted(trials, key=lambda t: t.trial_id):
        if all(path in t.values and _same(t.values[path], value) for path, value in base.items()):
            return t
    return None


@dataclass(frozen=True)
class Gain:
    """``pick - base`` on one objective (positive = better for a maximised one), with a 95% interval."""

    objective: str
    mode: str
    pick: float
    base: float
    diff: float
    low: float  # nan: no interval (one seed)
    high: float
    method: str  # how the interval was computed, in words

    @property
    def better(self) -> float:
        """The improvement in the objective's own direction (positive = the pick is better)."""
        return self.diff if self.mode == "max" else -self.diff

    @property
    def verdict(self) -> str:
        """ "beats" | "loses to" | "does not distinguish itself from" the base (interval excludes 0 or not)."""
        if not finite(self.low):
            return "beats" if self.better > 0 else "does not beat"
        lo, hi = (self.low, self.high) if self.mode == "max" else (-self.high, -self.low)
        return "beats" if lo > 0 else "loses to" if hi < 0 else "cannot be told apart from"


def gain_over_base(
    pick: Trial, base: Trial, objective: str, mode: str, seeds: int, paired: list[tuple[float, float]] | None = None
) -> Gain | None:
    """``pick - base`` in ``objective`` with a 95% Student-t interval over seeds (None if one lacks the value).

    ``paired``: per seed (pick value, base value), when the per-seed results are at hand: the interval of
    the mean paired difference (both trials ran the same seeds, so seed effects cancel). Else, from each
    trial's seed mean and population std (ddof 0), Welch's interval. A bootstrap over 2 to 5 seeds has too
    few distinct resamples to give an interval, hence Student's t.
    """
    from scipy.stats import t as student

    a, b = pick.metrics.get(objective), base.metrics.get(objective)
    if not (finite(a) and finite(b)):
        return None
    diff = float(a) - float(b)
    if paired and len(paired) >= 2:
        d = np.array([p - q for p, q in paired])
        half = float(student.ppf(0.975, len(d) - 1)) * float(d.std(ddof=1)) / math.sqrt(len(d))
        method = f"paired Student-t interval over {len(d)} seeds"
        return Gain(objective, mode, float(a), float(b), float(d.mean()), d.mean() - half, d.mean() + half, method)
    sa, sb = pick.metrics.get(f"{objective}_std"), base.metrics.get(f"{objective}_std")
    if seeds < 2 or not (finite(sa) and finite(sb)):
        return Gain(objective, mode, float(a), float(b), diff, math.nan, math.nan, "one seed per trial: no interval")
    va, vb = sa**2 / (seeds - 1), sb**2 / (seeds - 1)  # squared standard errors of the two seed means
    se = math.sqrt(va + vb)
    if se == 0:
        return Gain(objective, mode, float(a), float(b), diff, diff, diff, f"{seeds} seeds, no spread")
    dof = (va + vb) ** 2 / ((va**2 + vb**2) / (seeds - 1))  # Welch-Satterthwaite
    half = float(student.ppf(0.975, dof)) * se
    method = f"Welch t-interval over {seeds} seeds per trial"
    return Gain(objective, mode, float(a), float(b), diff, diff - half, diff + half, method)


def gain_sentence(gain: Gain | None, pick: Trial, base: Trial | None, why_no_base: str = "") -> str:
    """One plain sentence: does the recommendation beat the base on the validation split?"""
    if base is None:
        return f"No trial ran the base configuration ({why_no_base or 'start_from_base was off'}): no reference."
    if gain is None:
        return f"The base (trial {base.trial_id}) did not report the objective: no comparison."
    if pick.trial_id == base.trial_id:
        return f"The sweep did not beat the base: the base itself (trial {base.trial_id}) is the pick."
    interval = f", 95% interval [{gain.low:+.4g}, {gain.high:+.4g}]" if finite(gain.low) else ""
    text = (
        f"Trial {pick.trial_id} {gain.verdict} the base (trial {base.trial_id}) on {gain.objective} "
        f"(validation split): {gain.pick:.4g} vs {gain.base:.4g}, difference {gain.diff:+.4g}{interval} "
        f"({gain.method})."
    )
    if gain.verdict != "beats":
        text += " The sweep did not beat the base."
    return text
