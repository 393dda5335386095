"""``attrsearch status results/<name>``: trial counts by status, the first errors and the best so far,
read from the results folder without Ray (also mid-sweep: trials not in ``trials.csv`` yet are read
from their own folders).

What Ray's experiment state knows and the folder does not (until the sweep writes ``trials.csv``,
when it ends or stops): trials that have not started (no folder), failed trials and their errors,
failure counts, and trials the scheduler stopped early (read as ``running`` until then).
"""

from __future__ import annotations

import logging
from pathlib import Path

from attrsearch.analysis.results import read_results
from attrsearch.errors import UserError
from attrsearch.results.choice import TrialTable, format_leaderboard
from attrsearch.results.layout import EXPERIMENT_STATE_PREFIX, REPORT_FILE, SWEEP_FILE

log = logging.getLogger(__name__)


def status_lines(path: Path | str) -> list[str]:
    """The lines ``attrsearch status`` prints for the local results folder ``path``."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: no such results folder")
    root = root.resolve()
    if not (root / SWEEP_FILE).is_file() and not any(
        p.name.startswith(EXPERIMENT_STATE_PREFIX) for p in root.iterdir()
    ):
        raise UserError(
            f"{root}: no Ray experiment state (experiment_state-*.json) in this folder; is it results/<sweep name>?"
        )
    results = read_results(root)
    report = root / REPORT_FILE
    shown = f"report: {report}" if report.is_file() else f"report: attrsearch report {root}  (writes {report})"
    return format_status(str(root), results.table(), shown)


def format_status(where: str, table: TrialTable, report_line: str) -> list[str]:
    """Counts by status, the first five errors, the top five trials and where the report is."""
    counts = ", ".join(f"{n} {s}" for s, n in sorted(table.counts().items()))
    lines = [f"{where}: {len(table.trials)} trials ({counts or 'none yet'})"]
    lines += [f"  error {t.trial_id}: {t.error}" for t in table.trials if t.status == "error"][:5]
    return lines + [format_leaderboard(table, top=5), report_line]


def print_status(path: Path | str) -> int:
    """Log the status of the results folder ``path`` (the CLI routes INFO records to stdout)."""
    for line in status_lines(path):
        log.info(line)
    return 0
