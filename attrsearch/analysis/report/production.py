"""The production comparison section: recommendation vs base on the test split, per metric, paired over seeds."""

from __future__ import annotations

from attrsearch.analysis import production
from attrsearch.analysis.report.fragments import _arrow, _caption, _esc, _num, _table, _why
from attrsearch.analysis.results import Results


def _ci(cell: tuple[float, float, float]) -> str:
    mean, lo, hi = cell
    return f'<td class="num">{_num(mean)}<br><small>[{_num(lo)}, {_num(hi)}]</small></td>'


def section_production(r: Results) -> str:
    """Per metric: recommendation and base (mean, 95% interval over seeds), paired difference, p-value."""
    rows, seeds = production.compare(r.root)
    if not rows:
        return _why(
            f"No production comparison yet ({seeds} seeds shared by both runs): run "
            f"`attrsearch production {r.root} --seeds 3` to train the recommendation (best.yaml) and the base "
            "with the same seeds on the test split."
        )
    objective = r.sweep.objectives[0]
    order = sorted(rows, key=lambda x: (x.metric != objective, x.metric))
    table = [
        [
            _esc(x.metric) + (" <b>(optimised)</b>" if x.metric in r.sweep.objectives else ""),
            _esc(_arrow(x.metric)),
            _ci(x.best),
            _ci(x.base),
            _ci(x.diff),
            f'<td class="num">{_num(x.p, 2)}</td>',
            _esc(x.verdict),
        ]
        for x in order
    ]
    worse = [x.metric for x in rows if x.verdict == "worse"]
    out = _caption(
        f"Does the recommendation hold up in production? best.yaml and the base, each trained with the same {seeds} "
        "seeds and scored on the <b>test</b> split with the full suite. Each cell: mean over seeds with its 95% "
        "Student-t interval; the difference is best - base paired by seed, with the two-sided p-value of the paired "
        "t-test (scipy.stats.ttest_rel). Metrics other than the optimised one were not optimised: a worse held-out "
        "metric is what the gain cost. The reference maps' scores (sanity/*) do not depend on the Explainer and are "
        "left out."
    )
    out += _table(
        ["metric", "direction", "recommendation", "base", "difference", "p (paired t)", "recommendation is"],
        table,
        raw=True,
    )
    if worse:
        out += _why(f"The recommendation is worse than the base (p < 0.05) on: {', '.join(worse)}.")
    return out
