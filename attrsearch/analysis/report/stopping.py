"""Is early stopping trustworthy here? The rank agreement between each epoch's value and the final value
over the completed trials, with a warning when stopping at the grace period was close to a coin flip.
"""

from __future__ import annotations

from attrsearch.analysis import rungs
from attrsearch.analysis.report.fragments import _caption, _esc, _num, _table, _why
from attrsearch.analysis.report.page import Page
from attrsearch.analysis.results import Results


def section_stopping(r: Results, page: Page) -> str:
    """Per epoch before the last: Spearman rho and pair agreement with the final value (completed trials)."""
    import plotly.graph_objects as go

    o = r.sweep.objectives[0]
    sched = r.sweep.scheduler.get("name")
    rows = rungs.rung_fidelity(r, o)
    head = _caption(
        f"Would the trials stopped early have lost anyway? For each epoch, how well {_esc(o)} there ranks the "
        "completed trials as their final value does: Spearman's ρ, and the share of trial pairs put in their final "
        "order ((1 + Kendall's τ) / 2; 50% is a coin flip, 100% a perfect forecast). The scheduler "
        f"({_esc(sched)}) compares trials at its rungs; a low agreement at the grace period means it stopped trials "
        "on noise."
    )
    if not rows:
        return head + _why(
            "No completed trial has a value before its last epoch (one-epoch trials, or no result.json): nothing to "
            "compare."
        )
    table = [
        [
            _num(f.epoch),
            ("grace period" if f.grace else "rung" if f.rung else ""),
            str(f.trials),
            f'<td class="num">{_num(f.rho, 2)}</td>',
            f'<td class="num">{f.agreement:.0%}</td>' if f.agreement == f.agreement else "–",
        ]
        for f in rows
    ]
    out = head + _table(["epoch", "scheduler", "completed trials", "Spearman ρ", "pairs in final order"], table)
    warn = rungs.fidelity_warning(r, rows)
    if warn:
        out += _why(warn)
    elif rungs.grace_period(r) is not None:
        out += "<p>Stopping at the grace period ranks the trials well: see the row marked <i>grace period</i>.</p>"
    else:
        out += _caption("This sweep stopped no trial early; the table shows how early a scheduler could decide.")
    fig = go.Figure()
    fig.add_scatter(x=[f.epoch for f in rows], y=[f.agreement for f in rows], mode="lines+markers", name="agreement")
    fig.add_hline(y=0.5, line_dash="dot", annotation_text="coin flip")
    fig.update_layout(
        title=f"Pairs of completed trials ranked as at the end, by epoch ({o})",
        xaxis_title="epoch",
        yaxis_title="pairs in final order",
        yaxis_range=[0, 1.05],
        height=320,
    )
    return out + page.figure(fig)
