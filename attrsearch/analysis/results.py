"""Read a sweep's results folder without Ray: ``sweep.yaml``, ``trials.csv`` and the trial folders.

Layout written by ``attrsearch sweep`` (``<storage>/<name>/``):

- ``sweep.yaml``: the sweep as started (a JSON-mode dump of the sweep schema: each ``search`` entry
  holds every distribution kind, the unused ones null, ``int`` spelled ``int_``);
- ``trials.csv``: one row per trial (``trial_id, status, error, epochs, failures``, ``config/<path>``
  values, then every metric of the trial's last report; with ``seeds`` each metric is the mean over
  seeds and ``<metric>_std`` the population std). Written when the sweep ends (or stops);
- ``<trial id>/params.json`` (the trial's flat config), ``<trial id>/result.json`` (Ray's JSON
  logger: one JSON object per reported epoch, with ``timestamp`` and ``time_total_s``) and
  ``<trial id>/run/`` (``metrics.json``, ``history.json`` = ``{"seed<S>": [epoch records]}``,
  ``tables/*.csv``, ``gallery.npz``; with several seeds also ``seeds/seed<S>/``).

A sweep still running has no (or a stale) ``trials.csv``: trials found only as folders are read
from their ``params.json`` and the last line of ``result.json`` (status ``running``, or
``completed`` once the trial reported ``trial/finished = 1``; ``pending`` before any report).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attrsearch.errors import UserError
from attrsearch.metrics.registry import get_spec, metric_mode

SWEEP_FILE = "sweep.yaml"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.yaml"
RESULT_FILE = "result.json"
PARAMS_FILE = "params.json"
RUN_DIR = "run"
GALLERY_FILE = "gallery.npz"
AREA_A = "objective.min_area"
AREA_B = "objective.max_area"
JOINT_KEY = "_area_bounds"  # the joint (a, b) dimension of two discrete area bounds
LEAD_COLUMNS = ("trial_id", "status", "error", "epochs", "failures")
FINISHED_STATUSES = ("completed", "stopped")  # trials that ran to an end (stopped: by the scheduler)
# Ray's and the trainable's bookkeeping entries of a result line (not metrics); sweep/results.py uses them too.
RAY_KEYS = {
    "timestamp",
    "checkpoint_dir_name",
    "should_checkpoint",
    "done",
    "training_iteration",
    "trial_id",
    "date",
    "time_this_iter_s",
    "time_total_s",
    "pid",
    "hostname",
    "node_ip",
    "config",
    "time_since_restore",
    "iterations_since_restore",
    "experiment_tag",
    "trial/finished",
    "trial/resumed_from_epoch",
    "trial/replayed",
    "trial/node",
    "trial/started_at",
    "trial/reported_at",
    "trial/report_wait_s",
}
_KINDS = ("uniform", "loguniform", "int", "choice", "grid")


@dataclass(frozen=True)
class Dimension:
    """One searched field as declared in ``sweep.yaml`` (before the sweep clips the area bounds)."""

    path: str
    kind: str  # uniform | loguniform | int | choice | grid
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    @property
    def categorical(self) -> bool:
        return self.kind in ("choice", "grid")

    @property
    def numeric(self) -> bool:
        """Continuous/integer ranges, and discrete ones whose values are all numbers."""
        return not self.categorical or all(_is_number(v) for v in self.values)

    def describe(self) -> str:
        """The distribution as text, e.g. ``loguniform [0.01, 1]``."""
        if self.categorical:
            return f"{self.kind} {json.dumps(list(self.values), default=str)}"
        return f"{self.kind} [{self.low:g}, {self.high:g}]{' (log)' if self.kind == 'int' and self.log else ''}"


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
class Trial:
    """One trial: its row of ``trials.csv`` (or what its folder holds while the sweep runs)."""

    trial_id: str
    status: str  # completed | stopped | error | running | pending | paused
    error: str
    epochs: float | None
    failures: int
    values: dict[str, Any]
    metrics: dict[str, float] = field(repr=False)
    folder: Path | None  # <results>/<trial id>/ when it exists

    @property
    def run_dir(self) -> Path | None:
        return self.folder / RUN_DIR if self.folder is not None else None


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

    def counts(self) -> dict[str, int]:
        """Number of trials per status."""
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: Any) -> bool:
    """True for a real, finite number (not a bool, not NaN)."""
    return _is_number(value) and math.isfinite(value)


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


def parse_dimension(path: str, entry: Any, source: str) -> Dimension:
    """One ``search`` entry of ``sweep.yaml`` (``{loguniform: [lo, hi]}`` or the dumped form with nulls)."""
    if not isinstance(entry, dict):
        raise UserError(f"{source}: search.{path}: expected a distribution mapping, got {entry!r}")
    given = {("int" if k == "int_" else k): v for k, v in entry.items() if v is not None and k not in ("log",)}
    kinds = [k for k in _KINDS if k in given]
    if len(kinds) != 1:
        raise UserError(f"{source}: search.{path}: give exactly one of {', '.join(_KINDS)}")
    kind = kinds[0]
    if kind in ("choice", "grid"):
        return Dimension(path, kind, values=tuple(given[kind]))
    low, high = given[kind]
    return Dimension(path, kind, low=float(low), high=float(high), log=kind == "loguniform" or bool(entry.get("log")))


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


def _cell(text: str) -> Any:
    """A CSV cell as None, a number, or the text."""
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _value(dim: Dimension | None, raw: Any) -> Any:
    """A searched value from its CSV/JSON form, typed by its dimension (choices matched by label)."""
    if raw is None or dim is None:
        return raw
    if dim.kind == "int":
        return round(float(raw))
    if dim.kind in ("uniform", "loguniform"):
        return float(raw)
    labels = {json.dumps(v, sort_keys=True, default=str): v for v in dim.values}
    for candidate in (raw, str(raw)):
        for label, v in labels.items():
            if candidate == v or str(candidate) == str(v) or candidate == label:
                return v
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _flat_values(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's flat Tune config -> ``{dotted path: value}`` (the joint area dimension unpacked)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == JOINT_KEY and isinstance(value, (list, tuple)) and len(value) == 2:
            out[AREA_A], out[AREA_B] = value
        elif not key.startswith("_"):
            out[key] = value
    return out


def read_result_lines(folder: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``folder/result.json`` (a half-written last line is skipped)."""
    path = folder / RESULT_FILE
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            lines.append(record)
    return lines


def _scalars(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if k not in RAY_KEYS and _is_number(v)}


def _trial_from_folder(folder: Path, space: dict[str, Dimension]) -> Trial:
    """A trial that ``trials.csv`` does not list yet, from its own files."""
    config: dict[str, Any] = {}
    params = folder / PARAMS_FILE
    if params.is_file():
        try:
            config = json.loads(params.read_text())
        except ValueError:
            config = {}
    lines = read_result_lines(folder)
    last = lines[-1] if lines else {}
    if not config and isinstance(last.get("config"), dict):
        config = last["config"]
    values = {p: _value(space.get(p), v) for p, v in _flat_values(config).items()}
    trial = Trial(folder.name, "pending", "", last.get("epoch"), 0, values, _scalars(last), folder)
    if lines:
        trial.status = "completed" if last.get("trial/finished") == 1.0 else "running"
    else:  # Ray's logger had not flushed yet: the run's own history tells whether it started
        curve = learning_curve(trial)
        if curve:
            trial.status, trial.epochs = "running", curve[-1].get("epoch")
            trial.metrics = {k: v for k, v in curve[-1].items() if k != "epoch"}
    return trial


def _is_trial_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / PARAMS_FILE).exists() or (path / RESULT_FILE).exists() or (path / RUN_DIR).is_dir()
    )


def read_trials_csv(path: Path, space: dict[str, Dimension]) -> list[Trial]:
    """The rows of ``trials.csv`` as ``Trial``s (folders not attached)."""
    trials = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "trial_id" not in reader.fieldnames:
            raise UserError(f"{path}: not a trials table (no trial_id column)")
        for row in reader:
            values, metrics = {}, {}
            for key, text in row.items():
                if key is None or key in LEAD_COLUMNS:
                    continue
                if key.startswith("config/"):
                    path_ = key[len("config/") :]
                    values[path_] = _value(space.get(path_), _cell(text))
                else:
                    cell = _cell(text)
                    if _is_number(cell):
                        metrics[key] = float(cell)
            epochs = _cell(row.get("epochs") or "")
            trials.append(
                Trial(
                    trial_id=row["trial_id"],
                    status=row.get("status") or "pending",
                    error=row.get("error") or "",
                    epochs=float(epochs) if _is_number(epochs) else None,
                    failures=int(float(row.get("failures") or 0)),
                    values=values,
                    metrics=metrics,
                    folder=None,
                )
            )
    return trials


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
    found = sorted(p for p in root.iterdir() if _is_trial_folder(p) and p.name not in listed)
    trials += [_trial_from_folder(p, sweep.space) for p in found]
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


def learning_curve(trial: Trial) -> list[dict[str, float]]:
    """Per-epoch records of a trial, oldest first: Ray's ``result.json`` lines, else ``run/history.json``.

    Each record has ``epoch`` plus the reported scalars (``history.json`` holds one list per seed:
    they are averaged per epoch, as the trial reported them).
    """
    if trial.folder is None:
        return []
    lines = read_result_lines(trial.folder)
    if lines:
        return [
            {**_scalars(r), "epoch": float(r.get("epoch", r.get("training_iteration", i + 1)))}
            for i, r in enumerate(lines)
        ]
    history = trial.folder / RUN_DIR / "history.json"
    if not history.is_file():
        return []
    try:
        per_seed = json.loads(history.read_text())
    except ValueError:
        return []
    if isinstance(per_seed, list):
        per_seed = {"seed": per_seed}
    by_epoch: dict[float, list[dict[str, Any]]] = {}
    for records in per_seed.values():
        for r in records if isinstance(records, list) else []:
            if isinstance(r, dict) and _is_number(r.get("epoch")):
                by_epoch.setdefault(float(r["epoch"]), []).append(r)
    out = []
    for epoch in sorted(by_epoch):
        recs = by_epoch[epoch]
        keys = {k for r in recs for k, v in r.items() if _is_number(v)}
        out.append(
            {
                k: sum(float(r[k]) for r in recs if _is_number(r.get(k))) / sum(_is_number(r.get(k)) for r in recs)
                for k in keys
            }
        )
    return out


def trial_times(trial: Trial) -> tuple[float, float] | None:
    """(start, end) wall-clock seconds of a trial from its ``result.json`` timestamps (None if absent)."""
    if trial.folder is None:
        return None
    lines = [r for r in read_result_lines(trial.folder) if _is_number(r.get("timestamp"))]
    if not lines:
        return None
    first, last = lines[0], lines[-1]
    start = float(first["timestamp"]) - float(first.get("time_this_iter_s") or 0.0)
    return start, float(last["timestamp"])


def read_table(trial: Trial, name: str) -> list[list[str]] | None:
    """``run/tables/<name>.csv`` of a trial as rows of cells (None if absent)."""
    if trial.run_dir is None:
        return None
    path = trial.run_dir / "tables" / f"{name}.csv"
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
