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
The layout, the trial record, ranking, the Pareto front and the best trial are the results contract's
(``attrsearch.results``): this module converts Ray's state into trial records and writes through it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attrsearch.config.search import trial_values
from attrsearch.errors import UserError
from attrsearch.results.choice import TrialTable, format_leaderboard  # noqa: F401 (sweep.run imports it here)
from attrsearch.results.layout import (
    BEST_FILE,
    PARETO_FILE,
    RAY_KEYS,
    REPORT_FILE,
    SWEEP_FILE,
    TRIALS_FILE,
    best_header,
)
from attrsearch.results.trial import Trial, trials_csv
from attrsearch.sweep.storage import Storage
from attrsearch.sweep.watchdog import REASON_FILE as HUNG_REASON_FILE

log = logging.getLogger(__name__)

_STATUS = {"TERMINATED": "completed", "ERROR": "error", "RUNNING": "running", "PENDING": "pending", "PAUSED": "paused"}
_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Diverged|Interrupt|Exit)\w*)(: .*)?$")


@dataclass
class SweepResults(TrialTable):
    """The trials of a sweep (``attrsearch.results.choice.TrialTable``) and the files written from them."""

    written: list[str] = field(default_factory=list)


@contextmanager
def _quiet_ray_analysis() -> Iterator[None]:
    """ExperimentAnalysis warns about trials that have not reported yet; that is normal here."""
    ray_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = ray_log.level
    ray_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ray_log.setLevel(level)


# ------------------------------------------------------------------------------------------------
# Results files on the sweep's storage (a local path or a URI; ``Storage`` decides which)


def read_text(path: str) -> str | None:
    """A file on local or remote storage (None if missing)."""
    parent, name = path.rstrip("/").rsplit("/", 1)
    return Storage.at(parent).read_text(name)


def write_text(path: str, text: str) -> None:
    """Write a results file (local path or URI) whole or not at all (``Storage.write_text``)."""
    parent, name = path.rstrip("/").rsplit("/", 1)
    Storage.at(parent).write_text(name, text)


# ------------------------------------------------------------------------------------------------
# Ray's experiment state -> trial records


def _trial_file(trial: Any, name: str) -> str | None:
    """A text file of the trial's folder in the sweep's storage (None if missing or unreadable)."""
    try:
        with trial.storage.storage_filesystem.open_input_stream(f"{trial.storage.trial_fs_path}/{name}") as fh:
            return fh.read().decode(errors="replace")
    except (OSError, FileNotFoundError):
        return None


def _error_line(trial: Any) -> str:
    """The exception line of the trial's error file (Ray writes the whole traceback); a worker that the
    report watchdog ended (Ray: the actor died) gives the watchdog's reason, ``TrialHung: no report for ...``."""
    text = _trial_file(trial, "error.txt")
    if not text or "died" in text:
        hung = _trial_file(trial, HUNG_REASON_FILE)
        if hung and hung.strip():
            return f"TrialHung: {hung.strip().splitlines()[0]}"
    if not text:
        return "failed (no error file)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if _ERROR_LINE.match(line)]
    line = found[-1] if found else lines[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _logged_failures(trial: Any) -> int:
    """How many failures the trial's error file lists (Ray appends ``Failure # N`` per failure)."""
    return len(re.findall(r"^Failure # \d+", _trial_file(trial, "error.txt") or "", flags=re.M))


def has_experiment_state(experiment_path: str) -> bool:
    storage = Storage.at(experiment_path)
    return storage.is_dir() and any(Path(n).name.startswith("experiment_state-") for n in storage.list())


def load_trials(experiment_path: str) -> list[Trial]:
    """Every trial of Ray's experiment state (works while the sweep runs)."""
    from ray.tune import ExperimentAnalysis

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
        failures = int(getattr(trial.run_metadata, "num_failures", 0) or 0)
        logged = _logged_failures(trial) if status in ("running", "pending") else 0
        if logged > failures:
            # The trial's last failure is in its error file but not in the state: Ray (2.x) does not
            # save the ERROR of a trial whose worker process died (a hung trial the watchdog ended,
            # an OOM kill) once it has no retry left, so its state still reads RUNNING.
            status, failures = "error", logged
        if status == "completed" and last.get("trial/finished") != 1.0:
            status = "stopped"  # ended by the scheduler or the time budget before the final suite
        metrics = {
            k: float(v)
            for k, v in last.items()
            if k not in RAY_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        records.append(
            Trial(
                trial_id=trial.trial_id,
                status=status,
                error=_error_line(trial) if status == "error" else "",
                values=trial_values(trial.config),
                metrics=metrics,
                epochs=last.get("epoch"),
                failures=failures,
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


def best_config(sweep: Any, best: Trial) -> dict[str, Any]:
    """The production experiment: base + the best trial's values and thread count, scored on the test split.

    Portable: without a ``cache_dir`` in the sweep's base, none is written (the machine that trains it
    takes ``$ATTRSEARCH_CACHE`` or its default at load time), not the sweep machine's absolute path.
    """
    from attrsearch.sweep.experiment import trial_data, trial_experiment

    data = trial_data(sweep.base, {**best.values, "evaluation.split": "test", "name": f"{sweep.name}-best"})
    trial_experiment(data, {}, source=f"{sweep.name}: best configuration")
    if not getattr(sweep, "cache_dir_given", True):
        data.pop("cache_dir", None)
    # The trial's torch threads (its CPUs): the same thread count computes the same floating-point sums,
    # so the production run retrains the trial's first seed as it was (only the scored split differs).
    train = data.setdefault("train", {})
    train["num_threads"] = max(1, int(sweep.config.resources_per_trial.cpu))
    return data


def best_comments(sweep: Any, results: SweepResults, best: Trial) -> str:
    """``best.yaml``'s comment lines after the header: the gain over the base (val split) and the
    reproducibility block (versions, sampler, scheduler, seeds, the report's importance evaluators)."""
    from attrsearch.analysis.importance import evaluator_settings
    from attrsearch.results import provenance
    from attrsearch.results.choice import base_trial, gain_over_base, gain_sentence
    from attrsearch.sweep.load import base_values

    objective, mode = sweep.objectives[0], sweep.modes[0]
    seeds = sweep.config.seeds
    base = base_trial(results.trials, base_values(sweep))
    why = "" if sweep.config.start_from_base else "start_from_base was off"
    if base is not None and base.status == "stopped" and base.trial_id != best.trial_id:
        # Its metrics are its last epoch's, not a final score: the report compares both at that epoch.
        at = f" at epoch {base.epochs:g}" if base.epochs is not None else ""
        line = (
            f"The scheduler stopped the base (trial {base.trial_id}){at}, so it has no final score; the report "
            "compares both trials at that epoch, and `attrsearch production` trains both to the end."
        )
        lines = "# " + line + "\n"
    else:
        gain = gain_over_base(best, base, objective, mode, len(seeds) if seeds else 1) if base else None
        lines = "# " + gain_sentence(gain, best, base, why) + "\n"
    facts = provenance.block(
        sweep.config.search_alg.model_dump(mode="json"), sweep.config.scheduler.model_dump(mode="json"), seeds
    )
    facts["importance"] = evaluator_settings()
    return lines + provenance.comment_lines(facts)


def write_results(sweep: Any) -> SweepResults:
    """(Re)write trials.csv, best.yaml and pareto.csv of ``sweep`` from Ray's experiment state."""
    exp = sweep.experiment_path
    results = collect(exp, sweep.objectives, sweep.modes)
    write_text(f"{exp}/{TRIALS_FILE}", trials_csv(results.trials, sweep.objectives))
    results.written.append(f"{exp}/{TRIALS_FILE}")
    best = results.best()
    if best is not None:
        objective = sweep.objectives[0]
        header = best_header(sweep.name, best.trial_id, objective, best.metrics[objective], sweep.modes[0])
        header += best_comments(sweep, results, best)
        write_text(f"{exp}/{BEST_FILE}", header + yaml.safe_dump(best_config(sweep, best), sort_keys=False))
        results.written.append(f"{exp}/{BEST_FILE}")
    if sweep.config.multi_objective:
        front = results.pareto()
        write_text(f"{exp}/{PARETO_FILE}", trials_csv(front, sweep.objectives))
        results.written.append(f"{exp}/{PARETO_FILE}")
    return results


def print_status(path: str) -> int:
    """``attrsearch status s3://...``: the status of a sweep in remote storage, read through Ray's
    experiment state (a local folder is read without Ray: ``attrsearch.analysis.status``)."""
    from attrsearch.analysis.status import format_status

    if not has_experiment_state(path):
        raise UserError(
            f"{path}: no Ray experiment state (experiment_state-*.json) in this folder; is it results/<sweep name>?"
        )
    objectives, modes = saved_objectives(path)
    report = f"{path}/{REPORT_FILE}"
    for line in format_status(
        path, collect(path, objectives, modes), f"report: attrsearch report {path}  (writes {report})"
    ):
        log.info(line)
    return 0
