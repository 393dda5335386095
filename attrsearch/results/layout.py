"""The layout of a results folder, ``<storage>/<sweep name>/``:

- ``sweep.yaml``: the sweep as started (a JSON-mode dump of the sweep schema: each ``search`` entry
  holds every distribution kind, the unused ones null, ``int`` spelled ``int_``);
- ``trials.csv``: one row per trial (``LEAD_COLUMNS``, ``config/<path>`` values, then every metric of
  the trial's last report; with ``seeds`` each metric is the mean over seeds and ``<metric>_std`` the
  population std). Written when the sweep ends (or stops);
- ``best.yaml``: the base experiment with the best completed trial's values, scored on the test split;
- ``pareto.csv`` (several objectives): the non-dominated completed trials, as rows of ``trials.csv``;
- ``<trial id>/params.json`` (the trial's flat config), ``<trial id>/result.json`` (Ray's JSON
  logger: one JSON object per reported epoch, with ``timestamp`` and ``time_total_s``) and
  ``<trial id>/run/`` (``metrics.json``, ``history.json`` = ``{"seed<S>": [epoch records]}``,
  ``tables/*.csv``, ``gallery.npz``; with several seeds also ``seeds/seed<S>/``);
- Ray's experiment state (``experiment_state-*.json``), which only ``attrsearch sweep --resume`` reads;
- ``sweep.lock`` while a run of the sweep is going: its owner (pid, host, start time, command) as JSON.
"""

from __future__ import annotations

SWEEP_FILE = "sweep.yaml"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.yaml"
PARETO_FILE = "pareto.csv"
REPORT_FILE = "report.html"
EXPERIMENT_STATE_PREFIX = "experiment_state-"
RESULT_FILE = "result.json"
PARAMS_FILE = "params.json"
RUN_DIR = "run"
HISTORY_FILE = "history.json"
TABLES_DIR = "tables"
GALLERY_FILE = "gallery.npz"
LOCK_FILE = "sweep.lock"

LEAD_COLUMNS = ("trial_id", "status", "error", "epochs", "failures", "node")
STATUSES = ("completed", "stopped", "error", "running", "pending", "paused")
FINISHED_STATUSES = ("completed", "stopped")  # trials that ran to an end (stopped: by the scheduler)

# Ray's and the trainable's bookkeeping entries of a result line: not metrics.
RAY_KEYS = frozenset(
    {
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
)


def best_header(sweep_name: str, trial_id: str, objective: str, value: float, mode: str) -> str:
    """The comment lines that open ``best.yaml`` (``best_header_trial`` reads the trial id back)."""
    return (
        f"# Best of sweep {sweep_name}: trial {trial_id}, {objective} = {value:.6g} ({mode}) on the val split.\n"
        f"# Production run, scored on the test split: attrsearch train {BEST_FILE} --out runs/{sweep_name}-best\n"
    )


def best_header_trial(text: str) -> str | None:
    """The trial id named in ``best.yaml``'s header (None if the header is not there)."""
    import re

    match = re.search(r"^# Best of sweep .*?: trial (\S+),", text, flags=re.MULTILINE)
    return match.group(1) if match else None
