"""Which trials an analysis may use, and whether the scheduler's early decisions were trustworthy.

Early stopping leaves most trials without a final score, but every trial reported its objective at
each epoch it ran (Ray's ``result.json``: the per-epoch values ASHA compared at its rungs). An analysis
that needs ``minimum`` trials therefore runs on

1. the completed trials (final suite, validation split) when there are at least ``minimum``; else
2. the trials' values at the deepest epoch that at least ``minimum`` trials reached (for ASHA a rung:
   the counts drop right after each rung), labelled with that epoch; else
3. nothing, with a sentence saying how many trials it has and how many more it needs.

``rung_fidelity`` measures how well the value at each rung predicts the final value over the
completed trials (Spearman's rho, and Kendall's tau as the share of trial pairs that the rung puts in
their final order, (1 + tau) / 2): when that share at the grace period is near one half, stopping
there was a coin flip (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys
2020, assume rung values rank trials as their final values would).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from attrsearch.analysis.results import Results, Trial, finite, learning_curve

# Fewest trials each analysis runs on. PED-ANOVA contrasts the best 10% of trials with all
# (Watanabe et al. 2023): below 10 trials that top set is a single trial. A Spearman rho over n
# trials has a 95% interval of about +-1.96 / sqrt(n - 3) on Fisher's z scale: +-0.74 in rho at
# n = 10 around 0, anything less is noise. The partial-dependence forest needs a few trials per
# leaf (min_samples_leaf = 2) over several hyperparameters.
MIN_TRIALS = {"importance": 10, "dependence": 8, "agreement": 10}
# Share of trial pairs a rung orders as their final values: below this, stopping there is close to a coin flip.
COIN_FLIP_AGREEMENT = 0.75
MIN_FIDELITY_TRIALS = 5

Curves = Callable[[Trial], list[dict[str, float]]]


@dataclass
class Pool:
    """The trials an analysis runs on: each trial's ``metrics`` are the values it is judged by."""

    trials: list[Trial]
    epoch: float | None  # None: the completed trials' final values
    label: str  # "12 completed trials (final suite)" | "15 trials at epoch 2 (ASHA rung)"
    note: str = ""  # why the completed trials were not used (or why nothing is shown)

    @property
    def ok(self) -> bool:
        return bool(self.trials)


def asha_rungs(results: Results) -> list[float]:
    """The epochs at which ASHA compares trials (Ray's bracket 0: grace_period * rf**k below max_t)."""
    sched = results.sweep.scheduler
    if sched.get("name") != "asha":
        return []
    grace = float(sched.get("grace_period") or 1)
    rf = float(sched.get("reduction_factor") or 2.0)
    max_t = sched.get("max_t") or ((results.sweep.raw.get("base") or {}).get("train") or {}).get("epochs")
    if not max_t or max_t < grace:
        return [grace]
    count = int(math.log(float(max_t) / grace) / math.log(rf) + 1)  # ray.tune.schedulers.async_hyperband._Bracket
    return [grace * rf**k for k in range(count) if grace * rf**k < max_t] or [grace]


def grace_period(results: Results) -> float | None:
    """The epoch before which the scheduler stops no trial (None without a stopping scheduler)."""
    sched = results.sweep.scheduler
    if sched.get("name") in ("asha", "median"):
        return float(sched.get("grace_period") or 1)
    return None


def _at(curve: list[dict[str, float]], epoch: float) -> dict[str, float] | None:
    for record in curve:
        if record.get("epoch") == epoch:
            return record
    return None


def values_at(
    results: Results, objectives: list[str], curves: Curves = learning_curve
) -> dict[float, list[tuple[Trial, dict[str, float]]]]:
    """Per epoch: the trials (not failed) whose curve has a finite value of every objective there, with that record."""
    out: dict[float, list[tuple[Trial, dict[str, float]]]] = {}
    for t in results.trials:
        if t.status == "error":
            continue
        for record in curves(t):
            if all(finite(record.get(o)) for o in objectives):
                out.setdefault(float(record["epoch"]), []).append((t, record))
    return dict(sorted(out.items()))


def pool(results: Results, objectives: list[str], minimum: int, what: str, curves: Curves = learning_curve) -> Pool:
    """The trials ``what`` (an analysis named in sentences) runs on: completed trials, else the deepest epoch
    with at least ``minimum`` trials, else none (the note says how many more trials it needs)."""
    done = [t for t in results.by_status("completed") if all(finite(t.metrics.get(o)) for o in objectives)]
    if len(done) >= minimum:
        return Pool(done, None, f"{len(done)} completed trials (final suite)")
    short = f"Only {len(done)} completed trials report {', '.join(objectives)}; {what} needs at least {minimum}"
    rungs = asha_rungs(results)
    per_epoch = values_at(results, objectives, curves)
    for epoch in sorted(per_epoch, reverse=True):
        entries = per_epoch[epoch]
        if len(entries) >= minimum:
            trials = [replace(t, metrics={k: v for k, v in rec.items() if k != "epoch"}) for t, rec in entries]
            kind = " (ASHA rung)" if epoch in rungs else ""
            return Pool(
                trials,
                epoch,
                f"{len(trials)} trials at epoch {epoch:g}{kind}",
                short + f", so it uses every trial that reached epoch {epoch:g}, with its value there (epoch suite).",
            )
    most = max((len(v) for v in per_epoch.values()), default=0)
    have = max(most, len(done))
    return Pool(
        [],
        None,
        "",
        f"{short}, and no epoch was reached by {minimum} trials (at most {have}): {minimum - have} more trials needed.",
    )


# ----------------------------------------------------------------------------------- fidelity


@dataclass(frozen=True)
class Fidelity:
    """How well the objective at one epoch ranks the completed trials as their final values do."""

    epoch: float
    trials: int
    rho: float  # Spearman
    agreement: float  # share of trial pairs in the same order at this epoch and at the end: (1 + tau_b) / 2
    rung: bool  # an ASHA rung
    grace: bool  # the configured grace period


def rank_agreement(early: list[float], final: list[float]) -> tuple[float, float]:
    """(Spearman rho, pair agreement (1 + Kendall tau_b) / 2) between two equally long lists; nan when undefined."""
    from scipy.stats import kendalltau, spearmanr

    if len(early) < 3 or len(set(early)) < 2 or len(set(final)) < 2:
        return math.nan, math.nan
    rho = float(spearmanr(early, final).statistic)
    tau = float(kendalltau(early, final).statistic)
    return rho, (1.0 + tau) / 2.0


def rung_fidelity(results: Results, objective: str, curves: Curves = learning_curve) -> list[Fidelity]:
    """Per epoch before the last: rank agreement between the value there and the final value, completed trials."""
    done = [t for t in results.by_status("completed") if finite(t.metrics.get(objective))]
    rungs, grace = asha_rungs(results), grace_period(results)
    by_epoch: dict[float, list[tuple[float, float]]] = {}
    for t in done:
        curve = [r for r in curves(t) if finite(r.get(objective))]
        for record in curve[:-1]:  # the last record is the final suite itself
            by_epoch.setdefault(float(record["epoch"]), []).append((record[objective], t.metrics[objective]))
    out = []
    for epoch, pairs in sorted(by_epoch.items()):
        rho, agree = rank_agreement([p[0] for p in pairs], [p[1] for p in pairs])
        out.append(Fidelity(epoch, len(pairs), rho, agree, epoch in rungs, grace is not None and epoch == grace))
    return out


def fidelity_warning(results: Results, rows: list[Fidelity]) -> str:
    """One sentence when stopping at the grace period was close to a coin flip (or cannot be judged)."""
    grace = grace_period(results)
    if grace is None:
        return ""
    row = next((f for f in rows if f.epoch == grace), None)
    if row is None or row.trials < MIN_FIDELITY_TRIALS or not finite(row.agreement):
        n = row.trials if row else 0
        return (
            f"Cannot judge the stopping at the grace period (epoch {grace:g}): {n} completed trials with a value "
            f"there, at least {MIN_FIDELITY_TRIALS} needed."
        )
    if row.agreement < COIN_FLIP_AGREEMENT:
        return (
            f"Stopping at the grace period (epoch {grace:g}) was close to a coin flip: the values there put only "
            f"{row.agreement:.0%} of the pairs of completed trials in their final order (rho = {row.rho:.2f}, "
            f"{row.trials} trials). Raise scheduler.grace_period to an epoch whose agreement is at least "
            f"{COIN_FLIP_AGREEMENT:.0%}."
        )
    return ""
