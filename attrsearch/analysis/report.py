"""``build_report``: one self-contained HTML page about a sweep (plotly.js inlined once; opens offline).

Sections, each an ``<h2>`` with an id, in reading order: summary, leaderboard, importance,
dependence, matrix (explainer x explanandum), pareto, agreement, galleries, curves,
recommendation. A section without data says why in one sentence.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attrsearch.analysis import importance as imp
from attrsearch.analysis import stats
from attrsearch.analysis.results import (
    Results,
    Trial,
    finite,
    learning_curve,
    metric_direction,
    read_gallery,
    read_results,
    read_table,
    require_finished,
    trial_times,
)
from attrsearch.errors import UserError

SECTIONS = {
    "summary": "Summary",
    "leaderboard": "Leaderboard",
    "importance": "Hyperparameter importance",
    "dependence": "How each hyperparameter moves the objectives",
    "matrix": "Explainer x Explanandum",
    "pareto": "Pareto front",
    "agreement": "Do the metrics agree?",
    "galleries": "Mask galleries",
    "curves": "Learning curves",
    "recommendation": "Recommendation",
}
STATUS_COLORS = {
    "completed": "#1f77b4",
    "stopped": "#ff7f0e",
    "running": "#2ca02c",
    "error": "#d62728",
    "pending": "#7f7f7f",
}
_ERROR_CATCHER = """<script>
window.__reportErrors = [];
window.addEventListener('error', function (e) {
  window.__reportErrors.push(String(e.message));
  var box = document.getElementById('js-errors');
  if (box) { box.textContent = window.__reportErrors.join('\\n'); box.style.display = 'block'; }
});
</script>"""
_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 0 24px 48px; color: #222; line-height: 1.45; }
header { border-bottom: 2px solid #1f77b4; margin-bottom: 12px; }
h1 { margin: 18px 0 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { margin: 18px 0 6px; font-size: 1.05em; }
.lead { color: #555; margin: 0 0 12px; }
nav ol { columns: 2; margin: 4px 0 0; } nav a { text-decoration: none; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f6fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.caption { color: #444; font-size: 14px; margin: 4px 0 10px; max-width: 980px; }
.why { color: #8a5a00; background: #fff8e6; border-left: 4px solid #f0b400; padding: 6px 10px; }
.stopped { color: #a35200; } .best { font-weight: 600; }
pre.cmd { background: #f4f4f4; padding: 10px; border-radius: 4px; white-space: pre-wrap; word-break: break-all; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.gallery figure { margin: 0; text-align: center; font-size: 12px; }
.gallery img { image-rendering: pixelated; border: 1px solid #ccc; }
.wide { overflow-x: auto; max-width: 100%; }
.row { display: flex; flex-wrap: wrap; gap: 8px; }
#js-errors { display: none; color: #b00; white-space: pre; }
"""


@dataclass
class Page:
    """Collects the HTML of the sections; plotly.js goes into the first figure only."""

    parts: list[str] = field(default_factory=list)
    plotly_included: bool = False

    def figure(self, fig: Any) -> str:
        """The figure as an HTML fragment (the first one carries plotly.js itself)."""
        fig.update_layout(template="plotly_white")
        if fig.layout.margin.t is None:
            fig.update_layout(margin={"l": 60, "r": 20, "t": 50, "b": 50})
        text = fig.to_html(
            full_html=False,
            include_plotlyjs=not self.plotly_included,
            config={"displaylogo": False, "responsive": True},
        )
        self.plotly_included = True
        return text


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _why(text: str) -> str:
    return f'<p class="why">{_esc(text)}</p>'


def _caption(text: str) -> str:
    return f'<p class="caption">{text}</p>'


def _arrow(metric: str) -> str:
    d = metric_direction(metric)
    return "↑ higher is better" if d == "max" else "↓ lower is better" if d == "min" else ""


def _table(header: list[str] | None, rows: list[list[str]], raw: bool = False) -> str:
    head = (
        "<thead><tr>" + "".join(f"<th>{h if raw else _esc(h)}</th>" for h in header) + "</tr></thead>" if header else ""
    )
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<div class="wide"><table>{head}<tbody>{body}</tbody></table></div>'


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


# ----------------------------------------------------------------------------------- sections


def section_summary(r: Results, finished: list[Trial]) -> str:
    """Space, search algorithm, scheduler, budget, seeds, trials by status, wall time, best per objective."""
    s = r.sweep
    space_rows = [[_esc(p), _esc(d.describe())] for p, d in s.space.items()]
    alg = ", ".join(f"{k}={v}" for k, v in s.search_alg.items() if k != "name" and v is not None)
    sched = ", ".join(f"{k}={v}" for k, v in s.scheduler.items() if k != "name" and v is not None)
    budget = f"num_samples {s.num_samples}" if s.num_samples else "num_samples default"
    if s.time_budget_s:
        budget += f", time budget {s.time_budget_s:g} s"
    res = ", ".join(f"{v:g} {k.upper()}" for k, v in s.resources.items() if isinstance(v, (int, float)))
    times = [x for x in (trial_times(t) for t in r.trials) if x]
    wall = (
        f"{max(e for _, e in times) - min(b for b, _ in times):.0f} s (first trial start to last report)"
        if times
        else "unknown (no result.json)"
    )
    counts = ", ".join(f"{n} {st}" for st, n in sorted(r.counts().items()))
    seeds = (
        f"{s.seed_count} per configuration ({', '.join(map(str, s.seeds))}): every metric is a mean over seeds"
        if s.seeds
        else "1 (no seed repeats)"
    )
    facts = [
        ["search algorithm", _esc(f"{s.search_alg.get('name')} ({alg})" if alg else s.search_alg.get("name"))],
        ["scheduler", _esc(f"{s.scheduler.get('name')} ({sched})" if sched else s.scheduler.get("name"))],
        ["budget", _esc(f"{budget}; {res} per trial" if res else budget)],
        ["seeds", _esc(seeds)],
        ["trials", _esc(counts)],
        ["wall time", _esc(wall)],
        ["objectives", _esc(", ".join(f"{o} ({_arrow(o)})" for o in s.objectives))],
    ]
    best_rows = []
    for o in s.objectives:
        ranked = stats.ranked(r.by_status("completed"), o, metric_direction(o) or "max")
        if ranked:
            t = ranked[0]
            std = t.metrics.get(f"{o}_std")
            best_rows.append(
                [_esc(o), _esc(_arrow(o)), _esc(t.trial_id), f'<td class="num">{_num(t.metrics[o])}</td>', _num(std)]
            )
        else:
            best_rows.append([_esc(o), _esc(_arrow(o)), "no completed trial", "–", "–"])
    out = _table(None, facts)
    out += "<h3>Search space</h3>" + (
        _table(["field", "distribution"], space_rows) if space_rows else _why("Nothing was searched.")
    )
    out += "<h3>Best completed trial per objective (validation split)</h3>"
    out += _table(["objective", "direction", "trial", "value", "seed std"], best_rows)
    errors = r.by_status("error")
    if errors:
        out += "<h3>Failed trials</h3>" + _table(
            ["trial", "error"], [[_esc(t.trial_id), _esc(t.error)] for t in errors[:10]]
        )
    for note in r.notes:
        out += _why(note)
    return out


def section_leaderboard(r: Results, top: int = 20) -> str:
    """Completed trials ranked by the first objective (mean ± seed std, 95% CI), early-stopped ones apart."""
    objs = r.sweep.objectives
    completed, stopped = stats.leaderboard(r, objs, top=top)
    params = list(r.sweep.space)
    n = r.sweep.seed_count

    def rows(board: list[stats.Row], cls: str) -> list[list[str]]:
        out = []
        for row in board:
            cells = [
                str(row.rank),
                f'<td class="{cls}">{_esc(row.trial.trial_id)}</td>',
                _esc(row.trial.status),
                _num(row.trial.epochs),
            ]
            for o in objs:
                mean, std, lo, hi = row.cells[o]
                text = _num(mean) + (f" ± {_num(std, 2)}" if finite(std) else "")
                if finite(lo):
                    text += f"<br><small>95% CI [{_num(lo)}, {_num(hi)}]</small>"
                cells.append(f'<td class="num">{text}</td>')
            cells += [_esc(_value_text(row.trial.values.get(p, ""))) for p in params]
            out.append(cells)
        return out

    header = (
        ["#", "trial", "status", "epochs"]
        + [f"{o}<br><small>{_esc(_arrow(o))}</small>" for o in objs]
        + [_esc(p) for p in params]
    )
    ci = (
        f"mean ± std over {n} seeds with the 95% t-interval of the mean"
        if n > 1
        else "one seed per trial, so no interval"
    )
    out = _caption(
        f"Which configurations scored best on the validation split? Ranked by <b>{_esc(objs[0])}</b>; each cell is "
        f"the {ci}. "
        f"Showing the top {min(top, len(completed))} of {len(r.by_status('completed'))} completed trials."
    )
    out += _table(header, rows(completed, "best"), raw=True) if completed else _why("No trial has completed yet.")
    if stopped:
        out += '<h3 class="stopped">Stopped early by the scheduler</h3>'
        out += _caption(
            "These trials were stopped before the final metric suite ran; their numbers are the per-epoch (fast suite) "
            "values at the epoch they stopped and are not comparable with the completed trials above."
        )
        out += _table(header, rows(stopped, "stopped"), raw=True)
    return out


def section_importance(r: Results, page: Page, resamples: int) -> str:
    """PED-ANOVA and fANOVA importance per objective, bars with the std over bootstrap resamples."""
    import plotly.graph_objects as go

    out = _caption(
        "Which hyperparameters matter? Importance of each searched field for each objective (share of the explained "
        f"variation, summing to 1 per method), mean over {resamples} bootstrap resamples of the completed trials "
        "(up to 150 trials each); the error bar is the standard deviation across resamples. "
        "PED-ANOVA looks at what separates the best 10% of trials; "
        "fANOVA decomposes a random-forest model of the whole space. A long error bar means too few trials to be sure."
    )
    for o in r.sweep.objectives:
        res, why = imp.importances(r, o, resamples=resamples)
        if not res:
            out += f"<h3>{_esc(o)}</h3>" + _why(why)
            continue
        fig = go.Figure()
        for method, label in (("ped_anova", "PED-ANOVA"), ("fanova", "fANOVA")):
            rows = [x for x in res if x.method == method]
            if rows:
                fig.add_bar(
                    name=label,
                    x=[x.param for x in rows],
                    y=[x.mean for x in rows],
                    error_y={"type": "data", "array": [x.std for x in rows], "visible": True},
                )
        n = res[0].trials
        fig.update_layout(
            title=f"{o}: importance ({n} completed trials)", barmode="group", height=360, yaxis_title="importance"
        )
        out += page.figure(fig)
    return out


def _encode(r: Results, trials: list[Trial], params: list[str]) -> np.ndarray:
    """Trials as a numeric matrix for the surrogate: log of log ranges, category index for categories."""
    cols = []
    for p in params:
        d = r.sweep.space[p]
        if d.categorical:
            labels = [json.dumps(v, sort_keys=True, default=str) for v in d.values]
            cols.append(
                [
                    labels.index(json.dumps(t.values.get(p), sort_keys=True, default=str))
                    if json.dumps(t.values.get(p), sort_keys=True, default=str) in labels
                    else -1
                    for t in trials
                ]
            )
        else:
            cols.append(
                [
                    math.log(t.values[p]) if d.log and t.values.get(p, 0) > 0 else float(t.values.get(p, math.nan))
                    for t in trials
                ]
            )
    return np.array(cols, dtype=float).T


def partial_dependence(
    r: Results, trials: list[Trial], objective: str, params: list[str], grid: int = 20
) -> dict[str, tuple[list[Any], list[float]]]:
    """Partial dependence of ``objective`` on each param from a random-forest surrogate (Friedman 2001).

    Returns {param: (grid values in the param's own units, mean prediction)}.
    """
    from sklearn.ensemble import RandomForestRegressor

    X = _encode(r, trials, params)
    y = np.array([t.metrics[objective] for t in trials])
    model = RandomForestRegressor(n_estimators=48, min_samples_leaf=2, random_state=0, n_jobs=1).fit(X, y)
    sample = X if len(X) <= 200 else X[np.random.default_rng(0).choice(len(X), 200, replace=False)]
    out = {}
    for j, p in enumerate(params):
        d = r.sweep.space[p]
        if d.categorical:
            points = np.arange(len(d.values), dtype=float)
            shown: list[Any] = [_value_text(v) for v in d.values]
        else:
            points = np.linspace(np.nanmin(X[:, j]), np.nanmax(X[:, j]), grid)
            shown = [float(math.exp(v)) if d.log else float(v) for v in points]
        preds = []
        for v in points:
            Z = sample.copy()
            Z[:, j] = v
            preds.append(float(model.predict(Z).mean()))
        out[p] = (shown, preds)
    return out


def section_dependence(r: Results, page: Page) -> str:
    """Slice plots with partial-dependence curves per hyperparameter x objective, and parallel coordinates."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    objs = r.sweep.objectives
    params = list(r.sweep.space)
    if not params:
        return _why("Nothing was searched, so there is no hyperparameter to plot against.")
    completed = [t for t in r.by_status("completed") if all(finite(t.metrics.get(o)) for o in objs)]
    stopped = [t for t in r.by_status("stopped") if all(finite(t.metrics.get(o)) for o in objs)]
    out = _caption(
        "How does each hyperparameter move each objective? Each dot is a trial (blue: completed, orange: stopped "
        "early, "
        "epoch-suite value); the black line is the partial dependence: the objective predicted by a random-forest "
        "model "
        "of the completed trials when only this hyperparameter changes, averaged over the others."
    )
    ncol = min(4, len(params))
    nrow = math.ceil(len(params) / ncol)
    pd_note = ""
    for o in objs:
        curves = partial_dependence(r, completed, o, params) if len(completed) >= 5 else {}
        if not curves:
            pd_note = (
                f"Partial dependence needs at least 5 completed trials ({len(completed)} so far): "
                "only the dots are shown."
            )
        fig = make_subplots(
            rows=nrow,
            cols=ncol,
            horizontal_spacing=0.06,
            vertical_spacing=0.18 if nrow > 1 else 0.1,
            subplot_titles=params,
        )
        for k, p in enumerate(params):
            i, j = k // ncol + 1, k % ncol + 1
            for pool, status in ((completed, "completed"), (stopped, "stopped")):
                pts = [t for t in pool if p in t.values]
                fig.add_scatter(
                    x=[_value_text(t.values[p]) if r.sweep.space[p].categorical else t.values[p] for t in pts],
                    y=[t.metrics[o] for t in pts],
                    mode="markers",
                    row=i,
                    col=j,
                    showlegend=k == 0,
                    name=status,
                    legendgroup=status,
                    marker={"color": STATUS_COLORS[status], "size": 6, "opacity": 0.7},
                    text=[t.trial_id for t in pts],
                    hovertemplate="%{text}<br>%{x}: %{y:.4g}<extra></extra>",
                )
            if p in curves:
                xs, ys = curves[p]
                fig.add_scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    row=i,
                    col=j,
                    line={"color": "black", "width": 2},
                    name="partial dependence",
                    legendgroup="pd",
                    showlegend=k == 0,
                )
            if r.sweep.space[p].log:
                fig.update_xaxes(type="log", row=i, col=j)
            if j == 1:
                fig.update_yaxes(title_text=o.split("/")[-1], row=i, col=j)
        fig.update_layout(title=f"{o} ({_arrow(o)})", height=280 * nrow + 90, legend={"orientation": "h", "y": -0.12})
        fig.update_annotations(font_size=12)
        out += page.figure(fig)
    if pd_note:
        out += _why(pd_note)
    if len(completed) >= 2:
        dims = []
        for p in params:
            d = r.sweep.space[p]
            if d.categorical:
                labels = [_value_text(v) for v in d.values]
                vals = [
                    labels.index(_value_text(t.values.get(p))) if _value_text(t.values.get(p)) in labels else 0
                    for t in completed
                ]
                dims.append(
                    {
                        "label": _short(p),
                        "values": vals,
                        "tickvals": list(range(len(labels))),
                        "ticktext": labels,
                    }
                )
            else:
                vals = [math.log10(t.values[p]) if d.log else t.values[p] for t in completed]
                dims.append({"label": f"{_short(p)} (log10)" if d.log else _short(p), "values": vals})
        for o in objs:
            dims.append({"label": o.split("/")[-1], "values": [t.metrics[o] for t in completed]})
        first = objs[0]
        color = [t.metrics[first] for t in completed]
        par = go.Figure(
            go.Parcoords(
                line={
                    "color": color,
                    "colorscale": "Viridis",
                    "showscale": True,
                    "reversescale": metric_direction(first) == "min",
                    "colorbar": {"title": first.split("/")[-1]},
                },
                dimensions=dims,
            )
        )
        par.update_layout(height=480)
        par.update_layout(margin={"l": 140, "r": 40, "t": 90, "b": 40})
        out += _caption(
            "Which combinations lead to good scores? One line per completed trial; brighter lines score better on "
            f"{_esc(first)}. Drag along an axis to keep only a range."
        )
        out += page.figure(par)
    return out


def _short(path: str) -> str:
    """A short axis label: ``loss.lambda_tv`` -> ``lambda_tv``, ``explainer.arch`` -> ``explainer``."""
    head, _, tail = path.rpartition(".")
    return head.split(".")[-1] if tail == "arch" and head else tail


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

    completed = r.by_status("completed")
    if len(completed) < 3:
        return _why(f"Rank correlations need at least 3 completed trials ({len(completed)} so far).")
    names = [o for o in r.sweep.objectives if o in stats.score_metrics(completed)]
    names += [m for m in stats.score_metrics(completed) if m not in names]
    names = names[:metrics_limit]
    if len(names) < 2:
        return _why("Fewer than two metrics vary across the completed trials.")
    rho = stats.spearman(completed, names)
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
        title=f"Spearman rank correlation across {len(completed)} completed trials",
        height=260 + 32 * len(names),
        width=360 + 32 * len(names),
        yaxis_autorange="reversed",
    )
    return _caption(
        "Would the metrics pick the same trials? +1: two metrics rank the trials identically; −1: in opposite order; "
        "0: "
        "unrelated. Mind the direction: for a metric where lower is better, agreement shows as a negative ρ with a "
        "higher-is-better one."
    ) + page.figure(fig)


def _png(array: np.ndarray, scale: int) -> str:
    from PIL import Image

    img = Image.fromarray(array)
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image darkened where the mask is low, tinted red where it is high."""
    m = np.clip(mask.astype(np.float32), 0, 1)[..., None]
    red = np.array([255, 40, 40], dtype=np.float32)
    out = image.astype(np.float32) * (0.35 + 0.65 * m) * (1 - 0.45 * m) + red * 0.45 * m
    return np.clip(out, 0, 255).astype(np.uint8)


def _gallery_html(trial: Trial, gallery: dict[str, Any], images: int = 4, classes: int = 3) -> str:
    names = [str(c) for c in gallery.get("class_names", [])]
    imgs, masks, labels = gallery["images"], gallery["masks"], gallery.get("labels")
    size = imgs.shape[1]
    scale = max(1, 128 // max(size, 1))
    figs = []
    for i in range(min(images, len(imgs))):
        present = [c for c in range(masks.shape[1]) if labels is not None and labels[i][c] > 0.5]
        order = present or list(np.argsort(-masks[i].reshape(masks.shape[1], -1).mean(1))[:1])
        figs.append(
            f'<figure><img src="{_png(imgs[i], scale)}" alt="image {i}"><figcaption>image {i}<br>'
            f"{_esc(', '.join(names[c] for c in present) or 'no labelled class')}</figcaption></figure>"
        )
        for c in order[:classes]:
            name = names[c] if c < len(names) else f"class {c}"
            figs.append(
                f'<figure><img src="{_png(_overlay(imgs[i], masks[i][c]), scale)}" alt="mask {name}">'
                f"<figcaption>mask: {_esc(name)}<br>mean {float(masks[i][c].mean()):.2f}</figcaption></figure>"
            )
    return '<div class="gallery">' + "".join(figs) + "</div>"


def section_galleries(r: Results, page: Page) -> str:
    """Masks of the best, median and worst completed trial, and the best trial's class-specific matrix."""
    import plotly.graph_objects as go

    o = r.sweep.objectives[0]
    ranked = stats.ranked(r.by_status("completed"), o, metric_direction(o) or "max")
    if not ranked:
        return _why("No completed trial yet.")
    picks = {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}
    out = _caption(
        "What do the masks look like? The same validation images for the best, median and worst completed trial by "
        f"{_esc(o)}: "
        "each image, then the Explainer's mask for each class present in it (bright red = kept, dark = removed), "
        "upscaled with nearest-neighbour pixels."
    )
    shown = set()
    for label, t in picks.items():
        if t.trial_id in shown:
            continue
        shown.add(t.trial_id)
        gallery = read_gallery(t)
        out += f"<h3>{label}: trial {_esc(t.trial_id)} ({_esc(o)} = {_num(t.metrics[o])})</h3>"
        out += (
            _gallery_html(t, gallery)
            if gallery
            else _why(
                "This trial's folder has no run/gallery.npz (galleries are written only when W&B logging is not "
                "disabled)."
            )
        )
    table = read_table(ranked[0], "class_specific")
    if table and len(table) > 1:
        header, body = table[0], table[1:]
        cols = [c for c in header[1:] if c != "images"]
        idx = [header.index(c) for c in cols]
        z = [[float(row[k]) if row[k] not in ("", None) else math.nan for k in idx] for row in body]
        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=[c if c != "none" else "none (unmasked)" for c in cols],
                y=[row[0] for row in body],
                colorscale="Viridis",
                text=[[_num(v, 3) for v in row] for row in z],
                texttemplate="%{text}",
                colorbar={"title": "softmax x100"},
            )
        )
        fig.update_layout(
            title=f"Class-specific matrix of trial {ranked[0].trial_id}",
            xaxis_title="mask of class",
            yaxis_title="target class",
            yaxis_autorange="reversed",
            height=300 + 28 * len(body),
        )
        out += _caption(
            "Does each class's mask keep only that class's evidence? Row: the class whose score is read; column: the "
            "class whose "
            "mask was applied (last column: no mask). A strong diagonal and weak off-diagonal mean class-specific "
            "masks."
        ) + page.figure(fig)
    else:
        out += _why("The best trial has no run/tables/class_specific.csv.")
    return out


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


def section_recommendation(r: Results) -> str:
    """The configuration to train for production, why, the ranges near the best, and the command."""
    rec = stats.recommend(r)
    if rec.trial is None:
        return _why(rec.reason)
    o = rec.objective
    out = f"<p><b>Train trial {_esc(rec.trial.trial_id)}</b>: {_esc(rec.reason)}</p>"
    rows = [[_esc(p), _esc(_value_text(v))] for p, v in sorted(rec.trial.values.items())]
    out += _table(["hyperparameter", "value"], rows)
    if len(rec.candidates) > 1:
        cand = [
            [
                _esc(c["trial"]),
                f'<td class="num">{_num(c["mean"])}</td>',
                f"[{_num(c['ci'][0])}, {_num(c['ci'][1])}]",
                f'<td class="num">{_num(c["pessimistic"])}</td>',
                f'<td class="num">{_num(c["sensitivity"], 3)}</td>',
                f'<td class="num">{_num(c["robust"])}</td>',
            ]
            for c in rec.candidates
        ]
        out += "<h3>Trials not distinguishable from the best mean</h3>"
        out += _caption(
            "Neighbourhood change: mean difference of the score to the 5 most similar configurations "
            "(small = a plateau, large = a lucky spike). Robust score = worst-seed score minus that change."
        )
        out += _table(
            ["trial", f"mean {o}", "95% CI", "worst-seed score (mean ∓ std)", "neighbourhood change", "robust score"],
            cand,
        )
    out += f"<h3>Values within 1% of the best {_esc(o)} ({rec.near_best} completed trials)</h3>"
    out += _caption(
        "How precisely must each value be set? The range each hyperparameter spans among trials within 1% of the "
        "best score; "
        "a wide range means the score does not depend much on that value."
    )
    out += _table(["hyperparameter", "range"], [[_esc(p), _esc(v)] for p, v in rec.ranges.items()])
    if rec.command:
        out += "<h3>Production run (scored on the test split)</h3><pre class='cmd'>" + _esc(rec.command) + "</pre>"
    else:
        out += _why(
            "best.yaml is not written yet (the sweep writes it when it ends); rerun the report afterwards for the "
            "command."
        )
    return out


# ----------------------------------------------------------------------------------- page


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
        "recommendation": _safe(section_recommendation, r),
    }
    toc = "".join(f'<li><a href="#{k}">{_esc(v)}</a></li>' for k, v in SECTIONS.items())
    sections = "".join(f'<section id="{k}"><h2>{_esc(SECTIONS[k])}</h2>{bodies[k]}</section>' for k in SECTIONS)
    s = r.sweep
    counts = ", ".join(f"{n} {st}" for st, n in sorted(r.counts().items()))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Sweep {_esc(s.name)}: report</title><style>{_CSS}</style>{_ERROR_CATCHER}</head><body>"
        f"<header><h1>Sweep <code>{_esc(s.name)}</code></h1>"
        f"<p class='lead'>{len(r.trials)} trials ({_esc(counts)}), objectives {_esc(', '.join(s.objectives))}; every "
        "number is "
        f"measured on the validation split. Folder: <code>{_esc(r.root)}</code>; report written "
        f"{time.strftime('%Y-%m-%d %H:%M')}.</p></header><div id='js-errors'></div>"
        f"<nav><b>Contents</b><ol>{toc}</ol></nav>{sections}</body></html>"
    )


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
