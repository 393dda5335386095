"""``render`` (every section in reading order, one broken section becoming a note) and ``build_report``
(read a results folder, write the page).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attrsearch.analysis.report.comparison import section_agreement, section_matrix, section_pareto
from attrsearch.analysis.report.curves import section_curves
from attrsearch.analysis.report.dependence import section_dependence, section_importance
from attrsearch.analysis.report.follows import section_follows
from attrsearch.analysis.report.fragments import _why
from attrsearch.analysis.report.galleries import section_galleries
from attrsearch.analysis.report.overview import (
    section_leaderboard,
    section_recommendation,
    section_reproducibility,
    section_summary,
)
from attrsearch.analysis.report.page import Page, layout
from attrsearch.analysis.report.production import section_production
from attrsearch.analysis.report.stopping import section_stopping
from attrsearch.analysis.results import Results, read_results, require_finished
from attrsearch.errors import UserError


def _safe(fn: Any, *args: Any) -> str:
    """A section's HTML; an unexpected failure becomes a one-sentence note instead of losing the report."""
    try:
        return fn(*args)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - one broken section must not hide the others
        return _why(f"This section could not be drawn ({type(err).__name__}: {err}).")


def render(r: Results, resamples: int = 20) -> str:
    """The whole report as an HTML string."""
    finished = require_finished(r)
    page = Page()
    bodies = {
        "summary": _safe(section_summary, r, finished),
        "leaderboard": _safe(section_leaderboard, r),
        "importance": _safe(section_importance, r, page, resamples),
        "dependence": _safe(section_dependence, r, page),
        "matrix": _safe(section_matrix, r, page),
        "pareto": _safe(section_pareto, r, page),
        "agreement": _safe(section_agreement, r, page),
        "galleries": _safe(section_galleries, r, page),
        "curves": _safe(section_curves, r, page),
        "stopping": _safe(section_stopping, r, page),
        "recommendation": _safe(section_recommendation, r),
        "production": _safe(section_production, r),
        "follows": _safe(section_follows, r, page),
        "reproducibility": _safe(section_reproducibility, r, resamples),
    }
    return layout(r, bodies)


def build_report(results_dir: str | Path, out_html: str | Path, resamples: int = 20) -> Path:
    """Write the HTML report of ``results_dir`` to ``out_html``; returns its path.

    ``UserError`` (one line): not a results folder, no finished trial, an unwritable ``out_html``.
    """
    out = Path(out_html)
    results = read_results(results_dir)
    tmp = out.with_name(out.name + ".tmp")
    try:  # fail before the (slow) statistics when the file cannot be written
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("", encoding="utf-8")
    except OSError as err:
        raise UserError(f"{out}: cannot write the report ({err.strerror or err})") from None
    try:
        tmp.write_text(render(results, resamples=resamples), encoding="utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
