"""The result of an evaluation, writing it, and averaging the results of several seeds."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from attrsearch.errors import UserError


@dataclass
class EvaluationResult:
    """Flat named scalars, tables (class-specific matrix, transfer per classifier, per class),
    text records (faithfulness parameters), notes printed during the run, and ``timings``: seconds
    per metric family, ``total``, and ``images_classified/<classifier>`` (forward-pass images)."""

    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def aggregate(records: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds under each name, plus ``<name>_std`` (population std) when there are several.

    records: one flat dict per seed; the names of the first record are kept, non-numeric values
    dropped. A single record is returned as it is (no ``_std``)."""
    if len(records) == 1:
        return dict(records[0])
    out: dict[str, float] = {}
    for key in records[0]:
        values = [r[key] for r in records if key in r and isinstance(r[key], (int, float))]
        if not values:
            continue
        mean = sum(values) / len(values)
        out[key] = mean
        out[f"{key}_std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return out


def average_results(results: list[EvaluationResult]) -> EvaluationResult:
    """One result for several seeds of the same evaluation.

    Scalars: mean over seeds plus ``<name>_std`` (population std), as ``aggregate`` (a single
    result is returned unchanged). Tables: averaged cell-wise over the seeds for numeric columns
    (rows and columns aligned by label, NaN cells skipped); other columns (e.g. transfer's ``role``)
    are taken from the first seed. Params, notes and timings: the first seed's.
    """
    if not results:
        raise ValueError("average_results needs at least one result")
    first = results[0]
    if len(results) == 1:
        return first
    tables: dict[str, pd.DataFrame] = {}
    for name, table in first.tables.items():
        frames = [r.tables[name] for r in results if name in r.tables]
        numeric = table.select_dtypes("number").columns
        stacked = pd.concat([f[numeric] for f in frames], keys=range(len(frames)))
        mean = stacked.groupby(level=1, sort=False).mean()
        out = table.copy()
        out[numeric] = mean.reindex(table.index)[numeric]
        tables[name] = out
    return EvaluationResult(
        aggregate([r.metrics for r in results]), tables, dict(first.params), list(first.notes), dict(first.timings)
    )


def write_results(result: EvaluationResult, out_dir: Path | str) -> Path:
    """Write ``out_dir/metrics.json`` (flat JSON object: the metrics and text records, merged into
    the keys already in the file; NaN is written as null) and ``out_dir/tables/<name>.csv``.
    Returns the metrics file's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    merged: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{path}: not valid JSON; remove it or choose another output folder") from None
        if not isinstance(old, dict):
            raise UserError(f"{path}: expected a JSON object of named metrics")
        merged.update(old)
    for key, value in {**result.metrics, **result.params}.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        merged[key] = value
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=1, sort_keys=True))
    os.replace(tmp, path)
    if result.tables:
        (out_dir / "tables").mkdir(exist_ok=True)
        for name, table in result.tables.items():
            table.to_csv(out_dir / "tables" / f"{name}.csv")
    return path
