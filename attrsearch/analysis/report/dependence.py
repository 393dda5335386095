"""What the hyperparameters do: importance bars (PED-ANOVA, fANOVA), slice plots with the partial
dependence of a random-forest surrogate (Friedman 2001) and parallel coordinates.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from attrsearch.analysis import importance as imp
from attrsearch.analysis import rungs
from attrsearch.analysis.report.fragments import STATUS_COLORS, _arrow, _caption, _esc, _value_text, _why
from attrsearch.analysis.report.page import Page
from attrsearch.analysis.results import Results, Trial, finite, metric_direction


def section_importance(r: Results, page: Page, resamples: int) -> str:
    """PED-ANOVA and fANOVA importance per objective, bars with the std over bootstrap resamples."""
    import plotly.graph_objects as go

    out = _caption(
        "Which hyperparameters matter? Importance of each searched field for each objective (share of the explained "
        f"variation, summing to 1 per method), mean over {resamples} bootstrap resamples of the trials "
        "(up to 150 trials each); the error bar is the standard deviation across resamples. "
        f"It uses the completed trials when at least {rungs.MIN_TRIALS['importance']} report the objective, else every "
        "trial's value at the deepest epoch (scheduler rung) that many trials reached; each chart names which. "
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
        fig.update_layout(
            title=f"{o}: importance ({res[0].basis})", barmode="group", height=360, yaxis_title="importance"
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
    objs = r.sweep.objectives
    params = list(r.sweep.space)
    if not params:
        return _why("Nothing was searched, so there is no hyperparameter to plot against.")
    need = rungs.MIN_TRIALS["dependence"]
    basis = rungs.pool(r, objs, need, "partial dependence")
    completed = [t for t in r.by_status("completed") if all(finite(t.metrics.get(o)) for o in objs)]
    stopped = [t for t in r.by_status("stopped") if all(finite(t.metrics.get(o)) for o in objs)]
    out = _caption(
        "How does each hyperparameter move each objective? Each dot is a trial (blue: completed, orange: stopped "
        "early, epoch-suite value at the epoch it stopped); the black line is the partial dependence: the objective "
        "predicted by a random-forest model when only this hyperparameter changes, averaged over the others. "
        f"The model is fitted on the completed trials when at least {need} exist, else on every trial's value at "
        "the deepest epoch (scheduler rung) that many trials reached."
    )
    if basis.note:
        out += _why(basis.note)
    for o in objs:
        curves = partial_dependence(r, basis.trials, o, params) if basis.ok else {}
        title = f"{o} ({_arrow(o)}); partial dependence on {basis.label}" if basis.ok else f"{o} ({_arrow(o)})"
        out += page.figure(_slice_figure(r, o, params, curves, completed, stopped, title))
    pc = completed if len(completed) >= need or not basis.ok else basis.trials
    if len(pc) >= 2:
        par = _parallel_coordinates(r, pc, params)
        which = "completed trial" if pc is completed else f"trial at epoch {basis.epoch:g}"
        out += _caption(
            f"Which combinations lead to good scores? One line per {which}; brighter lines score better on "
            f"{_esc(objs[0])}. Drag along an axis to keep only a range."
        )
        out += page.figure(par)
    return out


def _slice_figure(
    r: Results,
    o: str,
    params: list[str],
    curves: dict[str, tuple[list[Any], list[float]]],
    completed: list[Trial],
    stopped: list[Trial],
    title: str,
) -> Any:
    """One subplot per param: objective ``o`` of each trial (dots by status) and its partial-dependence curve."""
    from plotly.subplots import make_subplots

    ncol = min(4, len(params))
    nrow = math.ceil(len(params) / ncol)
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
    fig.update_layout(title=title, height=280 * nrow + 90, legend={"orientation": "h", "y": -0.12})
    fig.update_annotations(font_size=12)
    return fig


def _parallel_coordinates(r: Results, completed: list[Trial], params: list[str]) -> Any:
    """One line per completed trial across the params (log10 for log ranges) and objectives, coloured by the first."""
    import plotly.graph_objects as go

    objs = r.sweep.objectives
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
    return par


def _short(path: str) -> str:
    """A short axis label: ``loss.lambda_tv`` -> ``lambda_tv``, ``explainer.arch`` -> ``explainer``."""
    head, _, tail = path.rpartition(".")
    return head.split(".")[-1] if tail == "arch" and head else tail
