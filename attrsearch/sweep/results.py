"""A sweep's results files, rebuilt from Ray's experiment state (so nothing is lost or doubled).

``<storage>/<sweep>/`` holds Ray's experiment folder (``Tuner.restore``-able) and:

- ``sweep.yaml``: the sweep as it was started (``--resume`` refuses a changed file);
- ``trials.csv``: one row per trial: id, status (completed | stopped | error | running | pending; a
  trial that has reported but not ended reads "running", also after the driver died),
  the error's last line, epochs run, failures, the searched values (``config/<path>``) and every
  metric of the trial's last report (for completed trials: the full suite on the val split);
- ``best.yaml``: the base experiment with the best completed trial's values and
  ``evaluation.split: test``: ``attrsearch train best.yaml --out runs/best`` is the production run;
- ``pareto.csv`` (several objectives): the non-dominated completed trials. Trials stopped early by
  the scheduler never ran the final suite and are not counted as complete.

Trials are ranked on the validation split; only ``best.yaml``'s production run sees the test split.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attrsearch.analysis.results import RAY_KEYS
from attrsearch.errors import UserError

TRIALS_FILE = "trials.csv"
BEST_FILE = "best.yaml"
PARETO_FILE = "pareto.csv"
SWEEP_FILE = "sweep.yaml"

_STATUS = {"TERMINATED": "completed", "ERROR": "error", "RUNNING": "running", "PENDING": "pending", "PAUSED": "paused"}
_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Diverged|Interrupt|Exit)\w*)(: .*)?$")


@dataclass
class TrialRecord:
    trial_id: str
    status: str
    error: str
    values: dict[str, Any]
    metrics: dict[str, float]
    epochs: float | None
    failures: int
    path: str
    node: str = ""  # the Ray node id of the last report (or its host/IP for trials of older sweeps)

    def row(self) -> dict[str, Any]:
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


@dataclass
class SweepResults:
    trials: list[TrialRecord]
    objectives: list[str]
    modes: list[str]
    written: list[str] = field(default_factory=list)

    def completed(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == "completed"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def ranked(self, pool: list[TrialRecord] | None = None) -> list[TrialRecord]:
        """Trials with a finite first objective, best first (ties: earlier trial id first)."""
        name, mode = self.objectives[0], self.modes[0]
        pool = self.completed() if pool is None else pool
        scored = [t for t in pool if _finite(t.metrics.get(name))]
        sign = -1.0 if mode == "max" else 1.0
        return sorted(scored, key=lambda t: (sign * t.metrics[name], t.trial_id))

    def best(self) -> TrialRecord | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def pareto(self) -> list[TrialRecord]:
        """Completed trials that no other completed trial dominates on every objective."""
        pool = [t for t in self.completed() if all(_finite(t.metrics.get(o)) for o in self.objectives)]
        signs = [1.0 if m == "max" else -1.0 for m in self.modes]

        def score(t: TrialRecord) -> list[float]:
            return [s * t.metrics[o] for s, o in zip(signs, self.objectives)]

        front = []
        for t in pool:
            st = score(t)
            dominated = any(
                all(x >= y for x, y in zip(score(u), st)) and any(x > y for x, y in zip(score(u), st))
                for u in pool
                if u is not t
            )
            if not dominated:
                front.append(t)
        return front


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@contextmanager
def _quiet_ray_analysis() -> Iterator[None]:
    """ExperimentAnalysis warns about trials that have not reported yet; that is normal here."""
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def storage_filesystem(path: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path in it) of a local path or a URI pyarrow opens (``s3://...``)."""
    import pyarrow.fs

    if "://" in path:
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), str(Path(path).expanduser().resolve())


def read_text(path: str) -> str | None:
    """A file on local or remote storage (None if missing)."""
    import pyarrow.fs

    fs, fs_path = storage_filesystem(path)
    if fs.get_file_info(fs_path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(fs_path) as fh:
        return fh.read().decode()


def write_text(path: str, text: str) -> None:
    """Write a results file (local path or URI) whole or not at all (``write_whole``)."""
    fs, fs_path = storage_filesystem(path)
    write_whole(fs, fs_path, text.encode())


def write_whole(fs: Any, fs_path: str, data: bytes) -> None:
    """Write a file on a pyarrow filesystem whole or not at all: a local file through a temp file and
    a rename (an interrupt mid-write leaves the previous version), a remote object in one put."""
    import os
    import tempfile

    import pyarrow.fs

    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        folder = Path(fs_path).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{Path(fs_path).name}-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, fs_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    fs.create_dir(fs_path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(fs_path) as fh:
        fh.write(data)


def _error_line(trial: Any) -> str:
    """The exception line of the trial's error file (Ray writes the whole traceback)."""
    text = None
    try:
        with trial.storage.storage_filesystem.open_input_stream(f"{trial.storage.trial_fs_path}/error.txt") as fh:
            text = fh.read().decode(errors="replace")
    except (OSError, FileNotFoundError):
        text = None
    if not text:
        return "failed (no error file)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if _ERROR_LINE.match(line)]
    line = found[-1] if found else lines[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def has_experiment_state(experiment_path: str) -> bool:
    import pyarrow.fs

    fs, fs_path = storage_filesystem(experiment_path)
    if fs.get_file_info(fs_path).type != pyarrow.fs.FileType.Directory:
        return False
    infos = fs.get_file_info(pyarrow.fs.FileSelector(fs_path))
    return any(Path(i.path).name.startswith("experiment_state-") for i in infos)


def load_trials(experiment_path: str) -> list[TrialRecord]:
    """Every trial of Ray's experiment state (works while the sweep runs)."""
    from ray.tune import ExperimentAnalysis

    from attrsearch.sweep.space import trial_values

    for attempt in range(5):
        try:
            with _quiet_ray_analysis():
                analysis = ExperimentAnalysis(experiment_path)
            break
        except ValueError:  # read while Ray rewrites the state file (JSONDecodeError): read again
            if attempt == 4:
                raise
            time.sleep(0.5)
    records = []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        last = trial.last_result or {}
        status = _STATUS.get(trial.status, trial.status.lower())
        if status == "pending" and last:
            status = "running"  # Ray stores running trials as PENDING (restartable) in its state file
        if status == "completed" and last.get("trial/finished") != 1.0:
            status = "stopped"  # ended by the scheduler or the time budget before the final suite
        metrics = {
            k: float(v)
            for k, v in last.items()
            if k not in RAY_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        records.append(
            TrialRecord(
                trial_id=trial.trial_id,
                status=status,
                error=_error_line(trial) if trial.status == "ERROR" else "",
                values=trial_values(trial.config),
                metrics=metrics,
                epochs=last.get("epoch"),
                failures=int(getattr(trial.run_metadata, "num_failures", 0) or 0),
                path=str(trial.storage.trial_fs_path),
                node=str(last.get("trial/node") or last.get("node_ip") or last.get("hostname") or ""),
            )
        )
    return records


def saved_objectives(experiment_path: str) -> tuple[list[str], list[str]]:
    """The objectives (and modes) of the sweep stored at ``experiment_path``."""
    from attrsearch.metrics.registry import metric_mode

    text = read_text(f"{experiment_path}/{SWEEP_FILE}")
    if text is None:
        raise UserError(f"{experiment_path}: no {SWEEP_FILE}: not a results folder written by attrsearch sweep")
    objectives = (yaml.safe_load(text) or {}).get("objective") or []
    return objectives, [metric_mode(o) for o in objectives]


def collect(experiment_path: str, objectives: list[str], modes: list[str]) -> SweepResults:
    return SweepResults(load_trials(experiment_path), objectives, modes)


def _csv(rows: list[dict[str, Any]], first: list[str]) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    if df.empty:
        return ",".join(first) + "\n"
    config = sorted(c for c in df.columns if c.startswith("config/"))
    rest = sorted(c for c in df.columns if c not in first and c not in config)
    buf = io.StringIO()
    df[[c for c in first if c in df.columns] + config + rest].to_csv(buf, index=False)
    return buf.getvalue()


def best_config(sweep: Any, best: TrialRecord) -> dict[str, Any]:
    """The production experiment: base + the best trial's values, scored on the test split."""
    from attrsearch.sweep.experiment import trial_data, trial_experiment

    data = trial_data(sweep.base, {**best.values, "evaluation.split": "test", "name": f"{sweep.name}-best"})
    trial_experiment(data, {}, source=f"{sweep.name}: best configuration")
    return data


def write_results(sweep: Any) -> SweepResults:
    """(Re)write trials.csv, best.yaml and pareto.csv of ``sweep`` from Ray's experiment state."""
    exp = sweep.experiment_path
    results = collect(exp, sweep.objectives, sweep.modes)
    lead = ["trial_id", "status", "error", "epochs", "failures", "node"]
    write_text(f"{exp}/{TRIALS_FILE}", _csv([t.row() for t in results.trials], lead + sweep.objectives))
    results.written.append(f"{exp}/{TRIALS_FILE}")
    best = results.best()
    if best is not None:
        objective = sweep.objectives[0]
        header = (
            f"# Best of sweep {sweep.name}: trial {best.trial_id}, {objective} = {best.metrics[objective]:.6g} "
            f"({sweep.modes[0]}) on the val split.\n"
            f"# Production run, scored on the test split: attrsearch train {BEST_FILE} --out runs/{sweep.name}-best\n"
        )
        write_text(f"{exp}/{BEST_FILE}", header + yaml.safe_dump(best_config(sweep, best), sort_keys=False))
        results.written.append(f"{exp}/{BEST_FILE}")
    if sweep.config.multi_objective:
        front = results.pareto()
        write_text(f"{exp}/{PARETO_FILE}", _csv([t.row() for t in front], lead + sweep.objectives))
        results.written.append(f"{exp}/{PARETO_FILE}")
    return results


def format_leaderboard(results: SweepResults, top: int = 10) -> str:
    """The top completed trials by the first objective (other objectives and searched values beside)."""
    import pandas as pd

    ranked = results.ranked()
    label = "completed"
    if not ranked:  # nothing completed yet: rank whatever has reported the objective
        ranked = results.ranked(results.trials)
        label = "reported so far"
    if not ranked:
        return f"no trial has reported {results.objectives[0]} yet"
    rows = []
    for i, t in enumerate(ranked[:top], 1):
        row: dict[str, Any] = {"rank": i, "trial": t.trial_id, "status": t.status, "epochs": t.epochs}
        for o in results.objectives:
            row[o] = t.metrics.get(o)
        for key, value in t.values.items():
            row[key] = value if isinstance(value, (int, float, str)) else json.dumps(value)
        rows.append(row)
    table = pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}")
    direction = "higher" if results.modes[0] == "max" else "lower"
    return f"top {min(top, len(ranked))} of {len(ranked)} {label} trials by {results.objectives[0]} ({direction} is better, val split):\n{table}"


def print_status(path: Path | str) -> int:
    """``attrsearch status results/<name>``: trial counts by status and the best so far (also mid-sweep)."""
    exp = str(path)
    if "://" not in exp:
        if not Path(exp).is_dir():
            raise UserError(f"{exp}: no such results folder")
        exp = str(Path(exp).resolve())
    if not has_experiment_state(exp):
        raise UserError(
            f"{exp}: no Ray experiment state (experiment_state-*.json) in this folder; is it results/<sweep name>?"
        )
    objectives, modes = saved_objectives(exp)
    results = collect(exp, objectives, modes)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(results.counts().items()))
    print(f"{exp}: {len(results.trials)} trials ({counts or 'none yet'})")
    errors = [t for t in results.trials if t.status == "error"]
    for t in errors[:5]:
        print(f"  error {t.trial_id}: {t.error}")
    print(format_leaderboard(results, top=5))
    report = f"{exp}/report.html"
    if "://" not in exp and Path(report).is_file():
        print(f"report: {report}")
    else:
        print(f"report: attrsearch report {exp}  (writes {report})")
    return 0
