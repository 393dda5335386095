"""``build_report``: one self-contained HTML page about a sweep (plotly.js inlined once; opens offline).

Sections, each an ``<h2>`` with an id, in reading order: summary, leaderboard, importance,
dependence, matrix (explainer x explanandum), pareto, agreement, galleries, curves,
stopping (rank fidelity of early epochs), recommendation. A section without data says why in one sentence.

Modules: ``page`` (ids and titles, stylesheet, figure embedding, layout), ``fragments`` (HTML
helpers), one module per group of sections (``overview``: summary, leaderboard, recommendation;
``dependence``: importance, dependence; ``comparison``: matrix, Pareto front, agreement;
``galleries``; ``curves``) and ``build`` (``render``, ``build_report``).
"""

from attrsearch.analysis.report.build import build_report, render
from attrsearch.analysis.report.dependence import partial_dependence
from attrsearch.analysis.report.page import SECTIONS, Page

__all__ = ["SECTIONS", "Page", "build_report", "partial_dependence", "render"]
