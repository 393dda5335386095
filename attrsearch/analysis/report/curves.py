"""Learning curves: each objective per epoch and trial, coloured by the trial's status."""

from __future__ import annotations

from typing import Any

from attrsearch.analysis.report.fragments import STATUS_COLORS, _arrow, _caption, _why
from attrsearch.analysis.report.page import Page
from attrsearch.analysis.results import Results, finite, learning_curve


def section_curves(r: Results, page: Page, max_trials: int = 1000) -> str:
    """Per-epoch objectives per trial from Ray's result.json lines (or the run's history.json)."""
    import plotly.graph_objects as go

    trials = [t for t in r.trials if t.folder is not None][:max_trials]
    curves = {t.trial_id: learning_curve(t) for t in trials}
    if not any(len(c) for c in curves.values()):
        return _why("No trial folder holds a result.json or run/history.json with per-epoch records.")
    out = _caption(
        "How did the trials learn? The objective after every epoch (validation split, fast suite; the last point of a "
        "completed trial is the full suite). Orange lines end where the scheduler stopped a trial."
    )
    for o in r.sweep.objectives:
        fig = go.Figure()
        for status in ("completed", "stopped", "running", "error"):
            xs: list[Any] = []
            ys: list[Any] = []
            for t in trials:
                if t.status != status:
                    continue
                pts = [(c["epoch"], c[o]) for c in curves[t.trial_id] if finite(c.get(o))]
                if pts:
                    xs += [p[0] for p in pts] + [None]
                    ys += [p[1] for p in pts] + [None]
            if xs:
                fig.add_scatter(
                    x=xs,
                    y=ys,
                    mode="lines+markers",
                    name=status,
                    line={"color": STATUS_COLORS[status], "width": 1},
                    marker={"size": 4},
                    opacity=0.7,
                )
        fig.update_layout(title=f"{o} per epoch ({_arrow(o)})", xaxis_title="epoch", yaxis_title=o, height=360)
        out += page.figure(fig)
    return out
