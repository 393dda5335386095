"""The trial record: one row of ``trials.csv``, written from Ray's state by ``attrsearch.sweep`` and read
back here (from the table, or from a trial's own folder while the sweep runs)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attrsearch.config.search import Dimension, is_number, label, trial_values
from attrsearch.errors import UserError
from attrsearch.results.layout import HISTORY_FILE, LEAD_COLUMNS, PARAMS_FILE, RAY_KEYS, RESULT_FILE, RUN_DIR


@dataclass
class Trial:
    """One trial: its status, searched values and the metrics of its last report."""

    trial_id: str
    status: str  # completed | stopped | error | running | pending | paused
    error: str  # the exception line of a failed trial
    epochs: float | None
    failures: int
    values: dict[str, Any]  # dotted path -> value
    metrics: dict[str, float] = field(repr=False)
    folder: Path | None = None  # <results>/<trial id>/ when it exists on this machine
    node: str = ""  # the Ray node id of the last report (or its host/IP for trials of older sweeps)
    path: str = ""  # the trial's folder in the sweep's storage (local path or bucket path)

    @property
    def run_dir(self) -> Path | None:
        return self.folder / RUN_DIR if self.folder is not None else None

    def row(self) -> dict[str, Any]:
        """The trial's row of ``trials.csv`` (non-scalar values as JSON)."""
        out: dict[str, Any] = {
            "trial_id": self.trial_id,
            "status": self.status,
            "error": self.error,
            "epochs": self.epochs,
            "failures": self.failures,
            "node": self.node,
        }
        for key, value in self.values.items():
            out[f"config/{key}"] = (
                value if isinstance(value, (int, float, str, bool, type(None))) else json.dumps(value)
            )
        out.update(self.metrics)
        return out


def finite(value: Any) -> bool:
    """True for a real, finite number (not a bool, not NaN)."""
    return is_number(value) and math.isfinite(value)


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The metrics of a reported result: its numbers that are not bookkeeping (``RAY_KEYS``)."""
    return {k: float(v) for k, v in record.items() if k not in RAY_KEYS and is_number(v)}


def trials_csv(trials: list[Trial], objectives: list[str]) -> str:
    """``trials.csv`` (and ``pareto.csv``) text: lead columns and objectives, ``config/*``, other metrics."""
    import pandas as pd

    first = list(LEAD_COLUMNS) + list(objectives)
    df = pd.DataFrame([t.row() for t in trials])
    if df.empty:
        return ",".join(first) + "\n"
    config = sorted(c for c in df.columns if c.startswith("config/"))
    rest = sorted(c for c in df.columns if c not in first and c not in config)
    buf = io.StringIO()
    df[[c for c in first if c in df.columns] + config + rest].to_csv(buf, index=False)
    return buf.getvalue()


def _cell(text: str) -> Any:
    """A CSV cell as None, a number, or the text."""
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def typed_value(dim: Dimension | None, raw: Any) -> Any:
    """A searched value from its CSV/JSON form, typed by its dimension (choices matched by label)."""
    if raw is None or dim is None:
        return raw
    if dim.kind == "int":
        return round(float(raw))
    if dim.kind in ("uniform", "loguniform"):
        return float(raw)
    labels = {label(v): v for v in dim.values}
    for candidate in (raw, str(raw)):
        for text, v in labels.items():
            if candidate == v or str(candidate) == str(v) or candidate == text:
                return v
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _row_trial(row: dict[str | None, str], space: dict[str, Dimension]) -> Trial:
    values, metrics = {}, {}
    for key, text in row.items():
        if key is None or key in LEAD_COLUMNS:
            continue
        if key.startswith("config/"):
            path = key[len("config/") :]
            values[path] = typed_value(space.get(path), _cell(text))
        elif is_number(cell := _cell(text)):
            metrics[key] = float(cell)
    epochs = _cell(row.get("epochs") or "")
    return Trial(
        trial_id=row["trial_id"] or "",
        status=row.get("status") or "pending",
        error=row.get("error") or "",
        epochs=float(epochs) if is_number(epochs) else None,
        failures=int(float(row.get("failures") or 0)),
        values=values,
        metrics=metrics,
        node=row.get("node") or "",
    )


def read_trials_csv(path: Path, space: dict[str, Dimension]) -> list[Trial]:
    """The rows of ``trials.csv`` as ``Trial``s (folders not attached)."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "trial_id" not in reader.fieldnames:
            raise UserError(f"{path}: not a trials table (no trial_id column)")
        return [_row_trial(row, space) for row in reader]


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


def is_trial_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / PARAMS_FILE).exists() or (path / RESULT_FILE).exists() or (path / RUN_DIR).is_dir()
    )


def trial_from_folder(folder: Path, space: dict[str, Dimension]) -> Trial:
    """A trial that ``trials.csv`` does not list yet, from its own files: ``running``, or ``completed``
    once it reported ``trial/finished = 1``; ``pending`` before any report."""
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
    values = {p: typed_value(space.get(p), v) for p, v in trial_values(config).items()}
    trial = Trial(folder.name, "pending", "", last.get("epoch"), 0, values, scalars(last), folder)
    if lines:
        trial.status = "completed" if last.get("trial/finished") == 1.0 else "running"
    else:  # Ray's logger had not flushed yet: the run's own history tells whether it started
        curve = learning_curve(trial)
        if curve:
            trial.status, trial.epochs = "running", curve[-1].get("epoch")
            trial.metrics = {k: v for k, v in curve[-1].items() if k != "epoch"}
    return trial


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
            {**scalars(r), "epoch": float(r.get("epoch", r.get("training_iteration", i + 1)))}
            for i, r in enumerate(lines)
        ]
    history = trial.folder / RUN_DIR / HISTORY_FILE
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
            if isinstance(r, dict) and is_number(r.get("epoch")):
                by_epoch.setdefault(float(r["epoch"]), []).append(r)
    return [_epoch_mean(by_epoch[epoch]) for epoch in sorted(by_epoch)]


def _epoch_mean(records: list[dict[str, Any]]) -> dict[str, float]:
    """The mean of each number over the seeds' records of one epoch."""
    keys = {k for r in records for k, v in r.items() if is_number(v)}
    return {
        k: sum(float(r[k]) for r in records if is_number(r.get(k))) / sum(is_number(r.get(k)) for r in records)
        for k in keys
    }
