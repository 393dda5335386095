"""The report page: section ids and titles, the inlined stylesheet and error catcher, ``Page``
(which embeds the figures, plotly.js once) and ``layout`` (the header, contents and sections).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from attrsearch.analysis.report.fragments import _esc
from attrsearch.analysis.results import Results

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
    "stopping": "Is early stopping trustworthy?",
    "recommendation": "Recommendation",
    "production": "Production: recommendation vs base",
    "follows": "Does the explanation follow the classifier?",
    "reproducibility": "Reproducibility",
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
.base { background: #eaf6ea; border-left: 4px solid #2ca02c; padding: 6px 10px; }
.why { color: #8a5a00; background: #fff8e6; border-left: 4px solid #f0b400; padding: 6px 10px; }
.stopped { color: #a35200; } .best { font-weight: 600; }
pre.cmd { background: #f4f4f4; padding: 10px; border-radius: 4px; white-space: pre-wrap; word-break: break-all; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.gallery figure { margin: 0; text-align: center; font-size: 12px; width: min-content; }
.gallery figcaption { min-width: 128px; }
.gallery img { border: 1px solid #ccc; cursor: zoom-in; }
.gallery img.big { width: 384px; height: 384px; cursor: zoom-out; }
table.board th { white-space: normal; overflow-wrap: anywhere; max-width: 10em; }
table.board td:nth-child(2), table.board th:nth-child(2) { position: sticky; left: 0; background: #fff;
       box-shadow: 1px 0 0 #ddd; z-index: 1; }
table.board th:nth-child(2) { background: #f3f6fa; }
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


def layout(r: Results, bodies: dict[str, str]) -> str:
    """The page: head (styles, error catcher), header line, contents and the sections' HTML in ``SECTIONS`` order."""
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
