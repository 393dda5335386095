"""Hyperparameter importance per objective, from an Optuna study rebuilt out of the trials table.

The study is rebuilt with ``optuna.trial.create_trial`` + ``Study.add_trials`` (Optuna's documented
way to import finished trials) over distributions taken from ``sweep.yaml``'s ``search``:
uniform / loguniform -> ``FloatDistribution`` (log for loguniform), int -> ``IntDistribution``,
choice / grid -> ``CategoricalDistribution``. The coupled area bounds (``objective.min_area <
objective.max_area``) enter as two independent float distributions over their declared ranges.

Evaluators: PED-ANOVA (Watanabe et al., "PED-ANOVA: Efficiently Quantifying Hyperparameter
Importance in Arbitrary Subspaces", IJCAI 2023; ``optuna.importance.PedAnovaImportanceEvaluator``),
which treats lower as better, so maximised metrics are negated; and fANOVA (Hutter et al., "An
Efficient Approach for Assessing Hyperparameter Importance", ICML 2014;
``FanovaImportanceEvaluator``, a random-forest surrogate; needs scikit-learn). Each is run on
bootstrap resamples of the trials and reported as mean and standard deviation over resamples.
Large sweeps are resampled m-out-of-n (Bickel, Goetze & van Zwet 1997): each resample draws
``max_trials`` trials (default 150), which keeps the cost bounded (fANOVA's forest grows with the
number of distinct values: 13 s for one fit on 800 trials, 0.3 s on 150); the spread is then that
of a 150-trial sweep, an upper bound on the full sweep's.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from attrsearch.analysis import rungs
from attrsearch.analysis.results import Results, Trial, finite
from attrsearch.config.search import Dimension

METHODS = ("ped_anova", "fanova")
_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Importance:
    """Importance of one hyperparameter for one objective by one method (normalised to sum 1 per resample)."""

    objective: str
    method: str  # ped_anova | fanova
    param: str
    mean: float
    std: float
    resamples: int
    trials: int
    basis: str = ""  # the trials it was computed on: "12 completed trials (final suite)" | "15 trials at epoch 2 ..."


def _label(value: Any) -> Any:
    return value if isinstance(value, _PRIMITIVE) else json.dumps(value, sort_keys=True, default=str)


def distribution(dim: Dimension) -> Any:
    """The Optuna distribution of a searched dimension."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dim.categorical:
        return CategoricalDistribution([_label(v) for v in dim.values])
    if dim.kind == "int":
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.kind == "loguniform")


def varying_params(results: Results, trials: list[Trial]) -> list[str]:
    """Searched paths that take more than one value among ``trials`` (a constant has no importance)."""
    out = []
    for path in results.sweep.space:
        seen = {json.dumps(t.values.get(path), sort_keys=True, default=str) for t in trials if path in t.values}
        if len(seen) > 1:
            out.append(path)
    return out


def scored_trials(results: Results, objective: str) -> list[Trial]:
    """Completed trials with a finite ``objective`` (early-stopped trials never ran the final suite)."""
    return [t for t in results.by_status("completed") if finite(t.metrics.get(objective))]


def build_study(
    results: Results, objective: str, trials: list[Trial] | None = None, params: list[str] | None = None
) -> Any:
    """An in-memory Optuna study holding ``trials`` (default: ``scored_trials``) as COMPLETE trials.

    The value is the objective, negated when the registry says "max", so lower is always better
    (what PED-ANOVA assumes). Trials whose values fall outside the declared distributions are left out.
    """
    import optuna

    mode = (
        results.sweep.modes[results.sweep.objectives.index(objective)]
        if objective in results.sweep.objectives
        else None
    )
    if mode is None:
        from attrsearch.metrics.registry import metric_mode

        mode = metric_mode(objective)
    sign = -1.0 if mode == "max" else 1.0
    trials = scored_trials(results, objective) if trials is None else trials
    params = varying_params(results, trials) if params is None else params
    dists = {p: distribution(results.sweep.space[p]) for p in params}
    study = optuna.create_study(direction="minimize")
    frozen = []
    for t in trials:
        values = {p: _label(t.values.get(p)) for p in params}
        if not all(p in t.values and dists[p]._contains(dists[p].to_internal_repr(values[p])) for p in params):
            continue
        frozen.append(optuna.trial.create_trial(params=values, distributions=dists, value=sign * t.metrics[objective]))
    study.add_trials(frozen)
    return study


FANOVA_SETTINGS = {"n_trees": 16, "max_depth": 8}
RESAMPLES = 20
MAX_TRIALS = 150


def evaluator_settings(resamples: int = RESAMPLES) -> str:
    """The importance evaluators by name with their settings, in words (the reproducibility block)."""
    fanova = ", ".join(f"{k}={v}" for k, v in FANOVA_SETTINGS.items())
    return (
        "optuna PedAnovaImportanceEvaluator (defaults: target_quantile=0.1, region_quantile=1.0, evaluate_on_local=True), "
        f"optuna FanovaImportanceEvaluator ({fanova}, seed=resample index); {resamples} bootstrap resamples "
        f"of up to {MAX_TRIALS} trials, at least {rungs.MIN_TRIALS['importance']} trials"
    )


def _evaluator(method: str, seed: int) -> Any:
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    if method == "ped_anova":
        return PedAnovaImportanceEvaluator()
    if method == "fanova":
        return FanovaImportanceEvaluator(**FANOVA_SETTINGS, seed=seed)
    raise ValueError(f"unknown importance method {method!r}")


def importances(
    results: Results,
    objective: str,
    methods: tuple[str, ...] = METHODS,
    resamples: int = RESAMPLES,
    seed: int = 0,
    max_trials: int = MAX_TRIALS,
    pool: rungs.Pool | None = None,
) -> tuple[list[Importance], str]:
    """Importance of every varying hyperparameter for ``objective``, mean and std over bootstrap resamples.

    ``pool``: the trials, each with its value of ``objective`` in ``metrics`` (default ``rungs.pool``:
    the completed trials when there are ``rungs.MIN_TRIALS["importance"]``, else every trial's value at
    the deepest epoch that many reached). Returns ``(importances, why)``: an empty list with a
    one-sentence reason when it cannot be computed (too few trials, nothing varies).
    """
    import optuna

    if pool is None:
        pool = rungs.pool(results, [objective], rungs.MIN_TRIALS["importance"], "importance")
    if not pool.ok:
        return [], pool.note
    trials = [t for t in pool.trials if finite(t.metrics.get(objective))]
    params = varying_params(results, trials)
    if not params:
        return [], f"{objective}: no searched hyperparameter takes more than one value among the {pool.label}."
    rng = np.random.default_rng(seed)
    out: list[Importance] = []
    quiet = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        for method in methods:
            table = _resampled(results, objective, trials, params, method, rng, resamples, seed, max_trials)
            ok = ~np.isnan(table).any(axis=1)
            if not ok.any():
                continue
            for j, p in enumerate(params):
                col = table[ok, j]
                std = float(col.std(ddof=1)) if len(col) > 1 else 0.0
                out.append(
                    Importance(objective, method, p, float(col.mean()), std, int(ok.sum()), len(trials), pool.label)
                )
    finally:
        optuna.logging.set_verbosity(quiet)
    if not out:
        return [], f"{objective}: neither evaluator could rank the {pool.label} (all objective values equal?)."
    return out, ""


def _resampled(
    results: Results,
    objective: str,
    trials: list[Trial],
    params: list[str],
    method: str,
    rng: np.random.Generator,
    resamples: int,
    seed: int,
    max_trials: int,
) -> np.ndarray:
    """(resamples, params) importances of ``method`` on bootstrap resamples; a row of nan where it failed."""
    import optuna

    table = np.full((resamples, len(params)), np.nan)
    for r in range(resamples):
        size = min(len(trials), max_trials)
        pick = [trials[i] for i in rng.integers(0, len(trials), size)]
        if len({t.trial_id for t in pick}) < 3:
            continue
        study = build_study(results, objective, pick, params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("optuna").setLevel(logging.ERROR)
            try:
                scores = optuna.importance.get_param_importances(
                    study, evaluator=_evaluator(method, seed + r), params=params
                )
            except (ValueError, RuntimeError, ZeroDivisionError):
                continue
        table[r] = [scores.get(p, 0.0) for p in params]
    return table
