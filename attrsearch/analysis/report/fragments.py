"""Small HTML fragments shared by the report's sections: escaping, numbers, notes, captions, tables.

``STATUS_COLORS`` is the one colour per trial status that every figure uses.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from attrsearch.analysis.results import metric_direction

STATUS_COLORS = {
    "completed": "#1f77b4",
    "stopped": "#ff7f0e",
    "running": "#2ca02c",
    "error": "#d62728",
    "pending": "#7f7f7f",
}


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        if abs(value) < 1e-12:  # floating-point residue (the slope of a map that never moves): 0
            value = 0.0
        return f"{value:.{digits}g}"
    return str(value)


def _why(text: str) -> str:
    return f'<p class="why">{_esc(text)}</p>'


def _caption(text: str) -> str:
    return f'<p class="caption">{text}</p>'


def _arrow(metric: str) -> str:
    d = metric_direction(metric)
    return "↑ higher is better" if d == "max" else "↓ lower is better" if d == "min" else ""


def _table(header: list[str] | None, rows: list[list[str]], raw: bool = False, cls: str = "") -> str:
    """A table in a horizontally scrolling box (``cls``: the table's class, e.g. ``board``)."""
    head = (
        "<thead><tr>" + "".join(f"<th>{h if raw else _esc(h)}</th>" for h in header) + "</tr></thead>" if header else ""
    )
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    klass = f' class="{cls}"' if cls else ""
    return f'<div class="wide"><table{klass}>{head}<tbody>{body}</tbody></table></div>'


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)
