"""The metric suites, each declared once: which metric families run, with which options.

A family is a module of ``attrsearch.metrics`` that holds its formulas and its scorer (a
``metrics.scorer.Scorer`` subclass registered with ``@register_family(name)``). Adding a family means
one new file and one line in a suite, e.g. for ``attrsearch/metrics/sparsity.py``::

    @register_family("sparsity")
    class SparsityScorer(Scorer):
        family = "sparsity"

        def update(self, ctx):                   # ctx: metrics.scorer.BatchContext
            self.values.add("sparsity/gini", gini(ctx.m))

    # here, in "full":
    Family("sparsity"),

plus its module in ``metrics.families`` (the built-in list) and its metric names with their directions
in ``metrics.registry``, so sweeps know their mode. This module imports nothing heavy (configs
validate suite names against it); the scorers are imported when an evaluation builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Family:
    """A registered metric family (its name) and the options of its scorer."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def scorer_class(self) -> type:
        from attrsearch.metrics.families import scorer_class

        return scorer_class(self.name)


@dataclass(frozen=True)
class Suite:
    """A named list of families; ``per_class_table``: join the families' per-class fragments into
    the ``per_class`` table. The order of the families is the order of the per-class columns."""

    description: str
    families: tuple[Family, ...]
    per_class_table: bool = False

    def uses(self, family: str) -> bool:
        return any(f.name == family for f in self.families)


SUITES: dict[str, Suite] = {
    "full": Suite(
        "every metric (end of training, attrsearch evaluate)",
        (
            Family("classification"),
            Family("mask_stats"),
            Family("segmentation"),
            Family("transfer"),
            Family("pointing"),
            Family("localization"),
            Family("context"),
            Family("faithfulness"),
            Family("class_specific"),
        ),
        per_class_table=True,
    ),
    "fast": Suite(
        "segmentation/iou, mask/area, classification/masked_f1, class_specific/* on a subsample (every epoch)",
        (
            Family("classification", {"masked_only": True}),
            Family("mask_stats", {"area_only": True}),
            Family("segmentation", {"iou_only": True}),
            Family("class_specific", {"subsample": True}),
        ),
    ),
}
