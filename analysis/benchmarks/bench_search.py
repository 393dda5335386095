"""Search efficiency on the quickstart's space, measured on recorded learning curves.

Two steps:

    # once (about 15 min on 2 cores): every point of a grid over the quickstart's space, trained for the
    # quickstart's epochs, its val IoU after each epoch -> analysis/benchmarks/data/search_grid.csv
    .venv/bin/python analysis/benchmarks/bench_search.py record --workers 2

    # any time (seconds): replay each search strategy on the recorded curves, 20 seeds each
    .venv/bin/python analysis/benchmarks/bench_search.py replay --seeds 20

The grid (``GRID``) crosses four levels (log-spaced over the quickstart's ranges) of the three loss
settings the area term depends on: ``objective.lambda_area``, ``objective.min_area`` and
``objective.max_area``; the other quickstart dimensions stay at the base's values. Every point is the
quickstart's base (``sweeps/quickstart.yaml``) with those values, trained for the base's epochs with one
torch thread, the value after each epoch being the sweep's objective (``segmentation/iou`` on the val
split). A tabular benchmark in the manner of Ying et al. 2019 (NAS-Bench-101) and Klein & Hutter 2019
(HPOBench): replaying costs nothing, so each strategy runs with many seeds.

Replay: each strategy proposes grid points through Optuna (each dimension an ordinal level index,
``suggest_int``), one trial at a time; a trial "trains" by reading its recorded curve epoch by epoch
(with the pruner asked after every epoch), and costs the epochs it ran. A strategy is done when the
best *completed* trial is within 1% (relative) of the grid's best final value; the table prints, per
strategy, the median (and quartiles) over seeds of the trial-epochs spent until then, as a share of the
grid's own cost (every point, every epoch). A point proposed twice is trained (and paid for) twice, as a
real sweep would. Strategies: random, grid (Optuna's GridSampler, shuffled), TPE (the quickstart's
``n_startup_trials``), TPE + ASHA (Optuna's SuccessiveHalvingPruner with the quickstart's grace period
and reduction factor: Li et al. 2020), GP (Optuna's GPSampler, default settings).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "sweeps" / "quickstart.yaml"
TABLE = Path(__file__).resolve().parent / "data" / "search_grid.csv"
OBJECTIVE = "segmentation/iou"
GRID: dict[str, tuple[float, ...]] = {
    "objective.lambda_area": (0.1, 0.3107, 0.9655, 3.0),
    "objective.min_area": (0.005, 0.01077, 0.02321, 0.05),
    "objective.max_area": (0.08, 0.1533, 0.2267, 0.3),
}
TOLERANCE = 0.01  # within 1% (relative) of the grid's best final value
MAX_TRIALS = 300  # a strategy that has not come within the tolerance by then is reported as not reaching it


def grid_points() -> list[dict[str, float]]:
    return [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]


def point_key(point: dict[str, float]) -> tuple[int, ...]:
    return tuple(GRID[name].index(point[name]) for name in GRID)


# --- record -----------------------------------------------------------------------------------------


def _train_point(base: dict, point: dict[str, float], workdir: str) -> list[dict[str, float]]:
    """Train one grid point (one thread, no final evaluation); its per-epoch objective and seconds."""
    from attrsearch.sweep.experiment import trial_experiment
    from attrsearch.train.run import train_explainers

    cfg = trial_experiment(base, point, source="bench_search", threads=1)
    out = Path(workdir) / "_".join(str(i) for i in point_key(point))
    rows, clock = [], [time.perf_counter()]

    def report(record, _checkpoint_dir, _finished) -> None:
        now = time.perf_counter()
        rows.append({"epoch": int(record["epoch"]), "value": float(record[OBJECTIVE]), "seconds": now - clock[0]})
        clock[0] = now

    train_explainers(cfg, out, final=lambda *args: {}, resume=False, report=report)
    return rows


def record(args: argparse.Namespace) -> None:
    base = yaml.safe_load(SWEEP.read_text())["base"]
    table = Path(args.table)
    done = {row_key(r) for r in read_table(table)} if table.exists() else set()
    todo = [p for p in grid_points() if point_key(p) not in done]
    print(f"{len(done)} of {len(grid_points())} grid points recorded; training {len(todo)} with {args.workers} workers")
    # Train the shared Explanandum (and data) once before the workers race for the cache.
    if todo:
        _train_warmup(base)
    table.parent.mkdir(parents=True, exist_ok=True)
    fresh = not table.exists()
    started = time.perf_counter()
    with (
        table.open("a", newline="") as fh,
        ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool,
    ):
        writer = csv.writer(fh)
        if fresh:
            writer.writerow([*GRID, "epoch", "value", "seconds"])
        futures = {pool.submit(_train_point, base, p, args.workdir): p for p in todo}
        for n, future in enumerate(as_completed(futures), 1):
            point = futures[future]
            for row in future.result():
                writer.writerow([*point.values(), row["epoch"], f"{row['value']:.6f}", f"{row['seconds']:.2f}"])
            fh.flush()
            print(f"[{n}/{len(todo)}] {point} done, {time.perf_counter() - started:.0f} s", flush=True)


def _train_warmup(base: dict) -> None:
    from attrsearch.sweep.experiment import trial_experiment
    from attrsearch.train.explanandum import get_explanandum
    from attrsearch.train.run import split_datasets

    cfg = trial_experiment(base, {}, source="bench_search", threads=2)
    split_datasets(cfg)
    get_explanandum(cfg, "cpu")


def row_key(row: dict) -> tuple[int, ...]:
    return point_key({name: float(row[name]) for name in GRID})


def read_table(path: Path) -> list[dict]:
    with Path(path).open() as fh:
        return list(csv.DictReader(fh))


def read_curves(path: Path) -> dict[tuple[int, ...], list[float]]:
    """Grid point (level indices) -> its objective after each epoch."""
    curves: dict[tuple[int, ...], dict[int, float]] = {}
    for row in read_table(path):
        curves.setdefault(row_key(row), {})[int(row["epoch"])] = float(row["value"])
    return {key: [by_epoch[e] for e in sorted(by_epoch)] for key, by_epoch in curves.items()}


# --- replay -----------------------------------------------------------------------------------------


def strategies(settings: dict) -> dict[str, callable]:
    """Name -> (seed -> (sampler, pruner)), with the quickstart's TPE and ASHA settings."""
    import optuna

    space = {name: list(range(len(levels))) for name, levels in GRID.items()}
    startup = settings["search_alg"].get("n_startup_trials", 10)
    grace = settings["scheduler"].get("grace_period", 1)
    factor = settings["scheduler"].get("reduction_factor", 3)
    return {
        "random": lambda s: (optuna.samplers.RandomSampler(seed=s), None),
        "grid": lambda s: (optuna.samplers.GridSampler(space, seed=s), None),
        "tpe": lambda s: (optuna.samplers.TPESampler(seed=s, n_startup_trials=startup), None),
        "tpe+asha": lambda s: (
            optuna.samplers.TPESampler(seed=s, n_startup_trials=startup),
            optuna.pruners.SuccessiveHalvingPruner(min_resource=grace, reduction_factor=factor),
        ),
        "gp": lambda s: (optuna.samplers.GPSampler(seed=s), None),
    }


def replay_one(curves: dict[tuple[int, ...], list[float]], sampler, pruner, target: float) -> tuple[int, int]:
    """Run one strategy until its best completed trial reaches ``target``: (trial-epochs, trials)."""
    import optuna

    # No pruner given means none (optuna's own default would be the MedianPruner).
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner or optuna.pruners.NopPruner())
    spent, best = 0, -math.inf
    for n in range(1, MAX_TRIALS + 1):
        trial = study.ask()
        key = tuple(trial.suggest_int(name, 0, len(levels) - 1) for name, levels in GRID.items())
        curve = curves[key]
        pruned = False
        for epoch, value in enumerate(curve, 1):
            spent += 1
            trial.report(value, epoch)
            if epoch < len(curve) and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        best = max(best, curve[-1])
        if best >= target:  # checked before tell: GridSampler stops the study once its last point is told
            return spent, n
        study.tell(trial, curve[-1])
    return math.inf, MAX_TRIALS


def replay(args: argparse.Namespace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    curves = read_curves(Path(args.table))
    missing = len(grid_points()) - len(curves)
    if missing:
        raise SystemExit(f"{args.table}: {missing} grid points not recorded yet (run `record` first)")
    settings = yaml.safe_load(SWEEP.read_text())
    finals = {key: curve[-1] for key, curve in curves.items()}
    best = max(finals.values())
    target = best * (1 - TOLERANCE)
    grid_cost = sum(len(c) for c in curves.values())
    within = sum(v >= target for v in finals.values())
    print(
        f"{len(curves)} grid points x {len(next(iter(curves.values())))} epochs = {grid_cost} trial-epochs; "
        f"best final val IoU {best:.4f}; {within} point(s) within {TOLERANCE:.0%} of it (target {target:.4f})"
    )
    print(f"\n{'strategy':10} {'median':>8} {'q25':>6} {'q75':>6} {'share of grid':>14} {'trials':>7} {'reached':>8}")
    for name, make in strategies(settings).items():
        if args.only and name not in args.only:
            continue
        costs, trials = [], []
        for seed in range(args.seeds):
            sampler, pruner = make(seed)
            cost, n = replay_one(curves, sampler, pruner, target)
            costs.append(cost)
            trials.append(n)
        reached = sum(math.isfinite(c) for c in costs)
        q = statistics.quantiles(costs, n=4) if reached == len(costs) else [math.nan] * 3
        median = statistics.median(costs)
        print(
            f"{name:10} {median:8.1f} {q[0]:6.1f} {q[2]:6.1f} {median / grid_cost:14.0%} "
            f"{statistics.median(trials):7.1f} {reached:>4}/{len(costs)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    rec = sub.add_parser("record", help="train every grid point and record its learning curve")
    rec.add_argument("--workers", type=int, default=2)
    rec.add_argument("--workdir", default="/tmp/attrsearch-bench-search")
    rec.add_argument("--table", default=str(TABLE))
    rep = sub.add_parser("replay", help="replay the search strategies on the recorded curves")
    rep.add_argument("--seeds", type=int, default=20)
    rep.add_argument("--table", default=str(TABLE))
    rep.add_argument("--only", nargs="*", help="strategies to replay (default: all)")
    args = ap.parse_args()
    record(args) if args.step == "record" else replay(args)


if __name__ == "__main__":
    main()
