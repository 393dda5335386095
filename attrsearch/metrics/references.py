"""How much of a score needs the classifier: every metric as score(method) - score(best model-free reference).

A mask can score well on overlap, pointing or even deletion metrics without reading the
classifier: an edge filter (Clark, Oliveira, Wilming & Haufe 2026 find attribution methods behave
like salience / edge filters), a centre prior, or a segmenter trained on the ground truth (a
masking model reaches most of its localisation from a data prior). The model-free references are
the ``sobel`` and ``center`` methods and the Explainer trained with the ``segmenter`` objective,
scored by the same suite. For each metric with a direction (``attrsearch metrics``) the *best*
reference is the highest for a ``max`` metric and the lowest for a ``min`` metric, and::

    delta(method, metric) = score(method, metric) - score(best reference, metric)

so a ``max`` metric's delta is positive, and a ``min`` metric's delta negative, where the method
beats every model-free reference; ``advantage`` is the delta signed so that positive is better for
both. Reference scores that are NaN (a metric a reference cannot produce) are ignored; a metric
with no finite reference score gets a NaN delta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from attrsearch.metrics.registry import get_spec, is_score

# Entry names of the model-free references in a comparison (method names; the segmenter Explainer's run).
REFERENCES = ("sobel", "center", "segmenter")


@dataclass(frozen=True)
class ReferenceDelta:
    """One method's score on one metric against the best reference: ``delta`` as defined above,
    ``advantage`` = delta for a ``max`` metric and -delta for a ``min`` metric."""

    metric: str
    score: float
    reference: str | None  # the best reference's name; None when no reference has a finite score
    reference_score: float
    delta: float
    advantage: float


def _direction(metric: str, directions: Mapping[str, str] | None) -> str | None:
    if directions is not None and metric in directions:
        return directions[metric]
    return get_spec(metric).direction if is_score(metric) else None


def best_reference(
    scores: Mapping[str, Mapping[str, float]], references: Sequence[str], metric: str, direction: str
) -> tuple[str | None, float]:
    """(name, score) of the best reference on ``metric`` for ``direction`` ("max" | "min"); (None, NaN) if
    no reference has a finite score."""
    finite = [(scores[r][metric], r) for r in references if r in scores and _finite(scores[r].get(metric))]
    if not finite:
        return None, math.nan
    value, name = max(finite) if direction == "max" else min(finite)
    return name, float(value)


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def reference_deltas(
    scores: Mapping[str, Mapping[str, float]],
    references: Sequence[str] = REFERENCES,
    *,
    metrics: Sequence[str] | None = None,
    directions: Mapping[str, str] | None = None,
) -> dict[str, dict[str, ReferenceDelta]]:
    """method -> metric -> ``ReferenceDelta`` for every entry of ``scores`` that is not a reference.

    scores: entry name -> flat metrics (a ``metrics.json`` each); references: the entries that are
    model-free references (those absent from ``scores`` are skipped); metrics: the names to compare
    (default: every name with a direction in the registry or in ``directions`` that some entry has);
    directions: metric -> "max" | "min" for names outside the registry (or to override it)."""
    present = [r for r in references if r in scores]
    if not present:
        raise ValueError(
            f"no model-free reference among the entries ({', '.join(scores)}); expected one of {', '.join(references)}"
        )
    if metrics is None:
        names = {m for entry in scores.values() for m in entry}
        metrics = sorted(m for m in names if _direction(m, directions) is not None)
    out: dict[str, dict[str, ReferenceDelta]] = {}
    for method, entry in scores.items():
        if method in present:
            continue
        row = {}
        for metric in metrics:
            direction = _direction(metric, directions)
            if direction not in ("max", "min"):
                raise ValueError(f"metric {metric!r} has no direction (max or min) to pick the best reference by")
            ref, ref_score = best_reference(scores, present, metric, direction)
            value = float(entry.get(metric, math.nan))
            delta = value - ref_score
            row[metric] = ReferenceDelta(metric, value, ref, ref_score, delta, delta if direction == "max" else -delta)
        out[method] = row
    return out
