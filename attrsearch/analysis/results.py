"""Read a sweep's results folder without Ray: ``sweep.yaml``, ``trials.csv`` and the trial folders.

The folder layout, the trial record and the parsing of its files belong to ``attrsearch.results``;
this module adds what the metric registry knows (objective directions) and the files only the
report reads (per-trial tables, the mask gallery, timings).

A sweep still running has no (or a stale) ``trials.csv``: trials found only as folders are read
from their ``params.json`` and the last line of ``result.json`` (status ``running``, or
``completed`` once the trial reported ``trial/finished = 1``; ``pending`` before any report).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attrsearch.config.search import Dimension, is_number, parse_dimension
from attrsearch.errors import UserError
from attrsearch.metrics.registry import get_spec, metric_mode
from attrsearch.results.choice import TrialTable
from attrsearch.results.layout import FINISHED_STATUSES, GALLERY_FILE, SWEEP_FILE, TABLES_DIR, TRIALS_FILE
from attrsearch.results.trial import (
    Trial,
    finite,
    is_trial_folder,
    learning_curve,
    read_result_lines,
    read_trials_csv,
    trial_from_folder,
)

__all__ = ["Dimension", "Trial", "finite", "learning_curve", "read_result_lines"]


@dataclass
class SweepInfo:
    """What ``sweep.yaml`` says about the sweep."""

    name: str
    objectives: list[str]
    modes: list[str]
    space: dict[str, Dimension]
    search_alg: dict[str, Any]
    scheduler: dict[str, Any]
    num_samples: int | None
    seeds: list[int] | None
    time_budget_s: float | None
    resources: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def seed_count(self) -> int:
        return len(self.seeds) if self.seeds else 1


@dataclass
class Results:
    """A results folder read into memory."""

    root: Path
    sweep: SweepInfo
    trials: list[Trial]
    from_csv: bool  # False: no trials.csv yet (a running sweep), trials read from their folders
    notes: list[str] = field(default_factory=list)

    def by_status(self, *statuses: str) -> list[Trial]:
        """Trials with one of ``statuses``, in trial id order."""
        return [t for t in self.trials if t.status in statuses]

    def table(self) -> TrialTable:
        """The trials with the sweep's objectives: what ranking, ``best`` and the Pareto front take."""
        return TrialTable(self.trials, self.sweep.objectives, self.sweep.modes)

    def counts(self) -> dict[str, int]:
        """Number of trials per status."""
        return self.table().counts()


def check_metric(name: str) -> str:
    """``name`` if it is a registered score (with a direction); else a one-line ``UserError``."""
    metric_mode(name)
    return name


def metric_direction(name: str) -> str | None:
    """ "max", "min", or None (a record, or a name the registry does not know)."""
    base = name.removesuffix("_std")
    try:
        return get_spec(base).direction
    except UserError:
        return None


def read_sweep(root: Path) -> SweepInfo:
    """``root/sweep.yaml`` as a ``SweepInfo`` (objectives checked against the metric registry)."""
    path = root / SWEEP_FILE
    if not path.is_file():
        raise UserError(f"{root}: no {SWEEP_FILE}: not a results folder written by attrsearch sweep")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping")
    objectives = data.get("objective") or []
    if isinstance(objectives, str):
        objectives = [objectives]
    if not objectives:
        raise UserError(f"{path}: no objective")
    modes = [metric_mode(o) for o in objectives]
    space = {p: parse_dimension(p, e, str(path)) for p, e in (data.get("search") or {}).items()}
    alg = data.get("search_alg") or {"name": "random"}
    sched = data.get("scheduler") or {"name": "none"}
    return SweepInfo(
        name=str(data.get("name") or root.name),
        objectives=list(objectives),
        modes=modes,
        space=space,
        search_alg={"name": alg} if isinstance(alg, str) else dict(alg),
        scheduler={"name": sched} if isinstance(sched, str) else dict(sched),
        num_samples=data.get("num_samples"),
        seeds=list(data["seeds"]) if data.get("seeds") else None,
        time_budget_s=data.get("time_budget_s"),
        resources=dict(data.get("resources_per_trial") or {}),
        raw=data,
    )


def read_results(path: str | Path) -> Results:
    """Read ``results/NAME/``: the sweep, every trial (from ``trials.csv`` and the trial folders).

    Raises a one-line ``UserError`` when ``path`` is not a results folder. Works while the sweep
    runs (no ``trials.csv`` yet, trials without metrics).
    """
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: no such results folder")
    sweep = read_sweep(root)
    csv_path = root / TRIALS_FILE
    notes: list[str] = []
    trials = read_trials_csv(csv_path, sweep.space) if csv_path.is_file() else []
    listed = {t.trial_id for t in trials}
    for t in trials:
        if (root / t.trial_id).is_dir():
            t.folder = root / t.trial_id
    found = sorted(p for p in root.iterdir() if is_trial_folder(p) and p.name not in listed)
    trials += [trial_from_folder(p, sweep.space) for p in found]
    if not csv_path.is_file():
        notes.append(f"no {TRIALS_FILE} yet (the sweep is running or was interrupted): trials read from their folders")
    elif found:
        notes.append(f"{len(found)} trial folders are not in {TRIALS_FILE} yet (the sweep is still running)")
    return Results(root=root, sweep=sweep, trials=trials, from_csv=csv_path.is_file(), notes=notes)


def require_finished(results: Results) -> list[Trial]:
    """Trials that completed or were stopped with metrics; a ``UserError`` when there is none."""
    done = [t for t in results.by_status(*FINISHED_STATUSES) if t.metrics]
    if not done:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(results.counts().items())) or "no trials"
        raise UserError(f"{results.root}: no finished trial yet ({counts}); run the report again when one has finished")
    return done


def require_columns(results: Results, names: list[str]) -> None:
    """A ``UserError`` naming the first metric no trial reported (after checking the registry)."""
    for name in names:
        get_spec(name.removesuffix("_std"))
        if not any(name in t.metrics for t in results.trials):
            raise UserError(f"{results.root}: no trial reported metric {name!r}")


def trial_times(trial: Trial) -> tuple[float, float] | None:
    """(start, end) wall-clock seconds of a trial from its ``result.json`` timestamps (None if absent)."""
    if trial.folder is None:
        return None
    lines = [r for r in read_result_lines(trial.folder) if is_number(r.get("timestamp"))]
    if not lines:
        return None
    first, last = lines[0], lines[-1]
    start = float(first["timestamp"]) - float(first.get("time_this_iter_s") or 0.0)
    return start, float(last["timestamp"])


def read_table(trial: Trial, name: str) -> list[list[str]] | None:
    """``run/tables/<name>.csv`` of a trial as rows of cells (None if absent)."""
    if trial.run_dir is None:
        return None
    path = trial.run_dir / TABLES_DIR / f"{name}.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        return [row for row in csv.reader(fh)]


def read_gallery(trial: Trial) -> dict[str, Any] | None:
    """``run/gallery.npz`` of a trial: images (N,H,W,3) uint8, masks (N,C,H,W), labels, class_names."""
    if trial.run_dir is None or not (trial.run_dir / GALLERY_FILE).is_file():
        return None
    import numpy as np

    try:
        with np.load(trial.run_dir / GALLERY_FILE, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None
