"""Comparisons across trials: the Explainer x Explanandum matrix with its ANOVA shares, the Pareto front
of the objectives and the rank agreement (Spearman) between metrics.
"""

from __future__ import annotations

import math
from typing import Any

from attrsearch.analysis import rungs, stats
from attrsearch.analysis.report.fragments import STATUS_COLORS, _arrow, _caption, _esc, _num, _table, _why
from attrsearch.analysis.report.page import Page
from attrsearch.analysis.results import Results, metric_direction


def _base_value(r: Results, path: str) -> Any:
    node: Any = r.sweep.raw.get("base")
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def section_matrix(r: Results, page: Page) -> str:
    """Heatmap of each objective per (Explanandum, Explainer) with seed spread, and ANOVA shares."""
    import plotly.graph_objects as go

    rows_f, cols_f = stats.ARCH_FACTORS
    completed = r.by_status("completed")
    varying = stats.categorical_factors(r, completed)
    if rows_f not in varying and cols_f not in varying:
        searched = [f for f in stats.ARCH_FACTORS if f in r.sweep.space]
        if searched:
            return _why(
                f"{', '.join(searched)} is searched, but the {len(completed)} completed trials so far share one "
                "value: nothing to compare yet."
            )
        return _why(
            f"The architectures are fixed in this sweep (Explanandum {_base_value(r, rows_f) or 'base default'}, "
            "Explainer "
            f"{_base_value(r, cols_f) or 'base default'}): there is no matrix to compare."
        )
    out = _caption(
        "How much of the score belongs to the Explainer's architecture, and how much to the classifier it explains? "
        "Each cell: mean over the completed trials with that pair (± mean seed std, n trials). The table splits the "
        "variance of each objective into the shares of each factor, their interaction, seed noise and the rest "
        "(the other hyperparameters), using sequential sums of squares."
    )
    for o in r.sweep.objectives:
        cells = stats.cell_table(completed, o, rows_f, cols_f)
        if not cells:
            out += f"<h3>{_esc(o)}</h3>" + _why(f"No completed trial reports {o}.")
            continue
        rv = sorted({k[0] for k in cells}, key=str)
        cv = sorted({k[1] for k in cells}, key=str)
        z = [[cells.get((a, b), (math.nan, math.nan, 0))[0] for b in cv] for a in rv]
        text = [
            [
                (
                    f"{cells[(a, b)][0]:.4g} ± {_num(cells[(a, b)][1], 2)} (n={cells[(a, b)][2]})"
                    if (a, b) in cells
                    else "no trial"
                )
                for b in cv
            ]
            for a in rv
        ]

        def label(v, f):
            return str(v) if v is not None else f"{_base_value(r, f)} (fixed)"

        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=[label(b, cols_f) for b in cv],
                y=[label(a, rows_f) for a in rv],
                text=text,
                texttemplate="%{text}",
                colorscale="Viridis",
                reversescale=metric_direction(o) == "min",
                colorbar={"title": o.split("/")[-1]},
            )
        )
        fig.update_layout(
            title=f"{o} ({_arrow(o)})", xaxis_title="Explainer", yaxis_title="Explanandum", height=320 + 40 * len(rv)
        )
        out += page.figure(fig)
        a = stats.anova(r, o, completed)
        if a is None:
            out += _why(f"Too few completed trials ({len(completed)}) for an ANOVA of {o} over {', '.join(varying)}.")
        else:
            out += _table(
                ["term", "share of variance"], [[_esc(k), f'<td class="num">{v:.1%}</td>'] for k, v in a.shares.items()]
            )
    return out


def section_pareto(r: Results, page: Page) -> str:
    """2-D projections of the Pareto front (dominated and early-stopped trials drawn apart)."""
    import plotly.graph_objects as go

    objs = r.sweep.objectives
    if len(objs) < 2:
        return _why(f"This sweep optimises one objective ({objs[0]}), so there is no trade-off to draw.")
    p = stats.pareto(r, objs)
    if not p.front:
        return _why("No completed trial reports every objective yet.")
    out = _caption(
        "Which trials are best trade-offs? A trial is on the Pareto front (large blue dots) when no other completed "
        "trial "
        f"is at least as good on all of {', '.join(map(_esc, p.objectives))} and better on one. Grey: dominated; "
        "orange crosses: "
        "stopped early (not counted: their numbers come from an earlier epoch)."
    )
    pairs = [(i, j) for i in range(len(p.objectives)) for j in range(i + 1, len(p.objectives))]
    if len(p.objectives) > 2:
        out += _caption(
            "The front is computed over all objectives at once; in a 2-D view a front trial can sit behind others."
        )
    out += '<div class="row">'
    for i, j in pairs:
        a, b = p.objectives[i], p.objectives[j]
        fig = go.Figure()
        for pool, name, marker in (
            (p.dominated, "dominated", {"color": "#bbbbbb", "size": 7}),
            (p.stopped, "stopped early", {"color": STATUS_COLORS["stopped"], "symbol": "x", "size": 8}),
            (p.front, "Pareto front", {"color": STATUS_COLORS["completed"], "size": 11}),
        ):
            fig.add_scatter(
                x=[t.metrics[a] for t in pool],
                y=[t.metrics[b] for t in pool],
                mode="markers",
                name=name,
                marker=marker,
                text=[t.trial_id for t in pool],
                hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra></extra>",
            )
        fig.update_layout(
            title=f"{b} vs {a}",
            xaxis_title=f"{a} ({_arrow(a)})",
            yaxis_title=f"{b} ({_arrow(b)})",
            height=420,
            width=600,
            legend={"orientation": "h", "y": -0.25},
        )
        out += '<div style="width:600px">' + page.figure(fig) + "</div>"
    out += "</div>"
    rows = [[_esc(t.trial_id)] + [f'<td class="num">{_num(t.metrics[o])}</td>' for o in p.objectives] for t in p.front]
    out += f"<h3>{len(p.front)} trials on the front</h3>" + _table(["trial"] + p.objectives, rows)
    return out


def section_agreement(r: Results, page: Page, metrics_limit: int = 18) -> str:
    """Spearman rank correlation between score metrics across completed trials."""
    import plotly.graph_objects as go

    need = rungs.MIN_TRIALS["agreement"]
    basis = rungs.pool(r, r.sweep.objectives[:1], need, "a rank correlation")
    if not basis.ok:
        return _why(basis.note)
    trials = basis.trials
    scored = stats.score_metrics(trials)
    names = [o for o in r.sweep.objectives if o in scored] + [m for m in scored if m not in r.sweep.objectives]
    names = names[:metrics_limit]
    if len(names) < 2:
        return _why(f"Fewer than two metrics vary across the {basis.label}.")
    rho = stats.spearman(trials, names, min_periods=need)
    fig = go.Figure(
        go.Heatmap(
            z=rho,
            x=names,
            y=names,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            text=[[_num(v, 2) for v in row] for row in rho],
            texttemplate="%{text}",
            colorbar={"title": "Spearman ρ"},
        )
    )
    fig.update_layout(
        title=f"Spearman rank correlation across {basis.label}",
        height=260 + 32 * len(names),
        width=360 + 32 * len(names),
        yaxis_autorange="reversed",
    )
    note = _why(basis.note) if basis.note else ""
    return (
        note
        + _caption(
            "Would the metrics pick the same trials? +1: two metrics rank the trials identically; −1: in opposite order; "
            "0: "
            "unrelated. Mind the direction: for a metric where lower is better, agreement shows as a negative ρ with a "
            f"higher-is-better one. Computed on {basis.label}; pairs with fewer than {need} shared trials are blank."
        )
        + page.figure(fig)
    )
