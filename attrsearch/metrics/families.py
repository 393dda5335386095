"""The built-in metric families: importing this module registers each one's scorer in ``FAMILIES``.

A family is one module of ``attrsearch.metrics`` holding its formulas and its scorer, registered there
with ``@register_family(name)`` (``metrics.scorer``). Suites (``metrics.suites``) name families; they
read the scorer classes through ``scorer_class`` here, when an evaluation builds them, so that
importing the suites (configs, the metric registry) stays cheap.
"""

from __future__ import annotations

# Importing the built-in family modules registers their scorers.
from attrsearch.metrics import (  # noqa: F401
    class_specific,
    classification,
    context,
    faithfulness,
    localization,
    mask_stats,
    pointing,
    segmentation,
    transfer,
)
from attrsearch.metrics.scorer import FAMILIES, Scorer


def scorer_class(name: str) -> type[Scorer]:
    """The scorer class of the metric family ``name`` (a one-line ``UserError`` when unknown)."""
    return FAMILIES.get(name)
