"""The section "Does the explanation follow the classifier?": the dependence study's figures and tables
(numbers from ``attrsearch.analysis.follows``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attrsearch.analysis import follows as fl
from attrsearch.analysis.report.fragments import _caption, _esc, _num, _table, _why
from attrsearch.analysis.report.page import Page
from attrsearch.analysis.results import Results

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def _ci(d: dict[str, float], key: str, digits: int = 2) -> str:
    low, high = d.get(f"{key}_low", math.nan), d.get(f"{key}_high", math.nan)
    interval = f"<br><small>[{_num(low, digits)}, {_num(high, digits)}]</small>" if math.isfinite(low) else ""
    return f'<td class="num">{_num(d.get(key, math.nan), digits)}{interval}</td>'


def _figure(page: Page, sources: list[fl.SourceDependence], measure: str) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, s in enumerate(sources):
        color = _COLORS[i % len(_COLORS)]
        m = s.members
        confound = m[~m["noise"]]
        fig.add_trace(
            go.Scatter(
                x=confound["cue_effect"],
                y=confound[measure],
                mode="markers",
                name=s.source,
                legendgroup=s.source,
                marker={"color": color, "size": 9},
                text=confound["member"],
                hovertemplate="%{text}<br>true %{x:.3f}<br>attributed %{y:.3f}<extra>" + s.source + "</extra>",
            )
        )
        noise = m[m["noise"]]
        if len(noise):
            fig.add_trace(
                go.Scatter(
                    x=noise["cue_effect"],
                    y=noise[measure],
                    mode="markers",
                    name=f"{s.source} (noise control)",
                    legendgroup=s.source,
                    showlegend=False,
                    marker={"color": color, "size": 11, "symbol": "x"},
                    text=noise["member"],
                    hovertemplate="%{text}<br>true %{x:.3f}<br>attributed %{y:.3f}<extra>" + s.source + "</extra>",
                )
            )
        x, y = confound["cue_effect"].to_numpy(float), confound[measure].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
            slope, intercept = np.polyfit(x[ok], y[ok], 1)
            xs = np.array([x[ok].min(), x[ok].max()])
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=slope * xs + intercept,
                    mode="lines",
                    name=f"{s.source} fit",
                    legendgroup=s.source,
                    showlegend=False,
                    line={"color": color, "dash": "dot"},
                    hoverinfo="skip",
                )
            )
    fig.update_layout(
        title="True cue effect vs attributed reliance, per method (x: noise control)",
        xaxis_title="true cue effect p_c(x) - p_c(x without the cue) (mean over cases)",
        yaxis_title=fl.MEASURES[measure],
        height=460,
    )
    return page.figure(fig)


def _member_table(sources: list[fl.SourceDependence], measure: str) -> str:
    members = sources[0].members
    header = ["member", "true cue effect"] + [s.source for s in sources]
    rows = []
    for _, row in members.iterrows():
        cells = [_esc(row["member"]), f'<td class="num">{_num(float(row["cue_effect"]), 3)}</td>']
        for s in sources:
            match = s.members[s.members["member"] == row["member"]]
            value = float(match[measure].iloc[0]) if len(match) else math.nan
            cells.append(f'<td class="num">{_num(value, 3)}</td>')
        rows.append(cells)
    return _table(header, rows, raw=True)


def _verdict_table(sources: list[fl.SourceDependence]) -> str:
    rows = [
        [
            f"{_esc(s.source)} <small>({_esc(s.kind)})</small>",
            _ci(s.tracking, "spearman"),
            _ci(s.tracking, "pearson"),
            _ci(s.tracking, "slope"),
            _ci(s.gap, "gap", 3),
            _ci(s.agreement, "spearman"),
            f"<b>{_esc(s.verdict)}</b>" + (f"<br><small>{_esc('; '.join(s.notes))}</small>" if s.notes else ""),
        ]
        for s in sources
    ]
    header = [
        "source",
        "Spearman (members)",
        "Pearson (members)",
        "slope",
        "confound − noise",
        "per-image Spearman",
        "verdict",
    ]
    return _table(header, rows, raw=True)


def _deltas(r: Results) -> str:
    table = fl.model_free_deltas(fl.source_scores(r))
    if table.empty:
        return _why(
            "No model-free deltas: no member has a sobel or center trial (add {method.name: sobel} and "
            "{method.name: center} to the sweep's variant.method grid)."
        )
    rows = [
        [
            _esc(row.source),
            _esc(row.metric),
            f'<td class="num">{_num(row.delta, 3)}</td>',
            f'<td class="num">{_num(row.advantage, 3)}</td>',
            _esc(row.references),
            f'<td class="num">{row.members}</td>',
        ]
        for row in table.itertuples()
    ]
    return _caption(
        "<b>Model-free deltas.</b> Each source's score minus the best of the model-free references (sobel, center) "
        "on the same Explanandum, averaged over members; advantage &gt; 0: better than every reference. A method "
        "whose advantage is about 0 scores what an edge filter or a centre prior scores without reading the classifier."
    ) + _table(["source", "metric", "delta", "advantage", "best reference(s)", "members"], rows, raw=True)


def _missing_extra(name: str, what: str) -> str:
    """The note shown for an extra (``randomisation.json``, ``probe.json``) the results folder lacks."""
    return _why(
        f"No {what}: {name} is not in the results folder (python analysis/dependence_extras.py RESULTS writes it: README)."
    )


def _randomisation_rows(metrics: dict[str, Any], source: str | None = None) -> list[list[str]]:
    """One row per measure and variant of a ``randomisation_scores`` record (``source`` leads when given)."""
    rows = []
    for measure in ("spearman", "ssim", "top10"):
        reseed, control = (
            metrics.get(f"randomisation/reseed/{measure}"),
            metrics.get(f"randomisation/control/{measure}"),
        )
        if reseed is None:
            continue
        for variant in ("random_init", "shuffled_labels"):
            key = f"randomisation/{variant}/{measure}"
            if key not in metrics:
                continue
            idx = {
                "index": metrics.get(f"{key}/index", math.nan),
                "index_low": metrics.get(f"{key}/index_low", math.nan),
                "index_high": metrics.get(f"{key}/index_high", math.nan),
            }
            rows.append(
                ([_esc(source)] if source is not None else [])
                + [
                    _esc(measure),
                    _esc(variant),
                    f'<td class="num">{_num(metrics[key], 3)}</td>',
                    f'<td class="num">{_num(reseed, 3)}</td>',
                    f'<td class="num">{_num(control, 3)}</td>',
                    _ci(idx, "index"),
                ]
            )
    return rows


_RANDOMISATION_COLUMNS = [
    "measure",
    "variant",
    "sim(real, randomised)",
    "sim(real, reseed)",
    "sim(real, control)",
    "index",
]


def _randomisation(r: Results) -> str:
    data = fl.read_extra(r.root, fl.RANDOMISATION_FILE)
    if data is None:
        return _missing_extra(fl.RANDOMISATION_FILE, "randomised-retrain test")
    head = _caption(
        f"<b>Randomised retrain</b> ({_esc(data.get('source', 'the configuration named in the file'))}, "
        f"{_esc(data.get('images', '?'))} images of the {_esc(data.get('split', '?'))} split). Similarity of the "
        "real-model Explainer's maps to an Explainer retrained against a randomised Explanandum, against the reseed "
        "floor and the uninformative control; index = 1 − sim(randomised) / sim(reseed): 0 = the maps do not depend "
        "on the classifier beyond seed noise. Read it only where the reseed similarity is well above the control's."
    )
    return head + _table(_RANDOMISATION_COLUMNS, _randomisation_rows(data.get("metrics", {})), raw=True) + _methods(r)


def _methods(r: Results) -> str:
    """The baselines' model-randomisation test (``randomisation_methods.json``), when the folder has it."""
    data = fl.read_extra(r.root, fl.METHOD_RANDOMISATION_FILE)
    if not data or not data.get("sources"):
        return ""
    rows = [
        row
        for name, record in sorted(data["sources"].items())
        for row in _randomisation_rows(record.get("metrics", {}), source=name)
    ]
    head = _caption(
        f"<b>Model randomisation of the baselines</b> ({_esc(data.get('member', '?'))}): a method trains nothing, so "
        "its maps on the randomised Explananda are compared with its maps on the real one (Adebayo et al. 2018); the "
        "floor is the method with another seed (RISE's masks), or itself (similarity 1) for a method without one."
    )
    return head + _table(["source", *_RANDOMISATION_COLUMNS], rows, raw=True)


def _probe(r: Results) -> str:
    data = fl.read_extra(r.root, fl.PROBE_FILE)
    if data is None:
        return _missing_extra(fl.PROBE_FILE, "encoding probe")
    rows = [
        [
            _esc(name),
            f'<td class="num">{_num(v.get("probe/accuracy"), 3)}</td>',
            f'<td class="num">{_num(v.get("probe/control_accuracy"), 3)}</td>',
            f'<td class="num">{_num(v.get("probe/encoding_excess"), 3)}</td>',
        ]
        for name, v in data.get("sources", {}).items()
        if isinstance(v, dict)
    ]
    return _caption(
        f"<b>Encoding probe</b> (Jethani et al. 2021; member {_esc(data.get('member', '?'))}): a small CNN "
        "trained on the binarised masks alone predicts the labels; the control reads the ground-truth masks. "
        "Excess &gt; 0: the masks encode the label beyond the object's outline."
    ) + _table(["source", "probe accuracy", "ground-truth accuracy", "encoding excess"], rows, raw=True)


def section_follows(r: Results, page: Page) -> str:
    """True effect vs attributed reliance per source with fitted lines, the verdict table, the
    model-free deltas, and the randomised-retrain and probe results when their files exist."""
    sources = fl.follows(r)
    if not sources:
        return _why(
            "This sweep measured no dependence: no trial wrote tables/dependence.csv. Run a sweep with "
            "evaluation.dependence.enabled over an Explanandum family (sweeps/dependence.yaml)."
        )
    measure = "attributed_share"
    members = len(sources[0].members)
    out = _caption(
        f"Each source's maps explain {members} Explananda of one family: the planted cue accompanied the biased "
        "classes in training from never to always (confound members) and, as the noise control, as often as always "
        "but independent of the class. x: the classifier's <b>true</b> reliance on the cue, measured on "
        "counterfactual twins (the same image without the cue); y: the share of the class map's mass on the cue. "
        "A method that follows the classifier rises along x (dotted line: least-squares fit over the confound "
        "members) and sits lower on the noise control (×) than on the strongest shortcut."
    )
    out += _figure(page, sources, measure)
    out += _member_table(sources, measure)
    out += _caption(
        "<b>Verdicts</b> (95% percentile-bootstrap intervals over the shared cases). Tracking: correlation and slope "
        "between the members' mean true effect and mean attributed share (confound members). Confound − noise: "
        "attributed share on the strongest shortcut member minus on the noise control. Per-image Spearman: within "
        "the strongest member, case by case. follows = both the slope and the gap interval above 0; salience = "
        "tracks but not above the noise control; gap only; does not follow; undetermined = an interval is missing."
    )
    out += _verdict_table(sources)
    out += _deltas(r)
    out += _randomisation(r)
    out += _probe(r)
    out += _caption(
        "What this cannot show: why a map moved; cues the classifier uses only together with the object; "
        "correlations over few members are coarse and their intervals are over cases, not over training seeds."
    )
    return out
