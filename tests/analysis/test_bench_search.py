"""``analysis/benchmarks/bench_search.py``'s replay on a synthetic table with a known answer."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "analysis" / "benchmarks" / "bench_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_curves(bench, epochs: int = 6) -> dict[tuple[int, ...], list[float]]:
    """Final value rises with the first level index only; the best points are those at its top level."""
    levels = [range(len(v)) for v in bench.GRID.values()]
    return {
        key: [0.1 + 0.1 * key[0] * e / epochs + 0.001 * key[1] for e in range(1, epochs + 1)]
        for key in itertools.product(*levels)
    }


def test_grid_reaches_the_best_within_the_grid_and_pays_whole_curves(bench):
    import optuna

    curves = synthetic_curves(bench)
    target = max(c[-1] for c in curves.values()) * (1 - bench.TOLERANCE)
    space = {name: list(range(len(v))) for name, v in bench.GRID.items()}
    spent, trials = bench.replay_one(curves, optuna.samplers.GridSampler(space, seed=0), None, target)
    assert 1 <= trials <= len(curves)
    assert spent == 6 * trials  # nothing pruned: every trial pays its six epochs


def test_asha_pays_less_than_whole_curves(bench):
    import optuna

    curves = synthetic_curves(bench)
    target = max(c[-1] for c in curves.values()) * (1 - bench.TOLERANCE)
    costs = []
    for seed in range(5):
        sampler = optuna.samplers.RandomSampler(seed=seed)
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3)
        spent, trials = bench.replay_one(curves, sampler, pruner, target)
        assert math.isfinite(spent)
        costs.append(spent < 6 * trials)
    assert any(costs)  # some trial was stopped at the rung: cost below six epochs per trial


def test_an_unreachable_target_is_reported_as_not_reached(bench):
    import optuna

    curves = synthetic_curves(bench)
    spent, trials = bench.replay_one(curves, optuna.samplers.RandomSampler(seed=0), None, target=10.0)
    assert spent == math.inf and trials == bench.MAX_TRIALS
