"""Does the explanation follow the classifier? The dependence study's numbers from a results folder
(no plotting; the report's section is ``attrsearch.analysis.report.follows``).

Input: the trials' ``run/tables/dependence.csv`` (``evaluation.dependence``: one row per cue case
with the Explanandum family member, the source of the maps, the true cue effect measured on
counterfactual twins and the attributed reliance on the cue). Per source (an Explainer objective or
a baseline method), across the family's members (``attrsearch.metrics.dependence``):

- per member: mean true cue effect and mean attributed share / RIW over the shared cases;
- ``tracking``: Spearman, Pearson and slope of attributed on true across the confound members,
  with intervals from resampling the shared cases;
- ``confound_minus_noise``: attributed reliance on the strongest confound member minus on the noise
  control (the same cue frequency, no label information; Clark, Oliveira, Wilming & Haufe 2026);
- ``per_image_agreement`` within the strongest confound member;
- a verdict from the two intervals (``verdict``).

Also read when present: the model-free deltas (``metrics.references``: IoU and deletion AUC of each
source minus the best of ``sobel`` / ``center``, averaged over members), ``randomisation.json``
(``evaluate.retrain``) and ``probe.json`` (``metrics.probe``) in the results folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from attrsearch.analysis.results import Results
from attrsearch.metrics.dependence import confound_minus_noise, per_image_agreement, tracking
from attrsearch.metrics.references import reference_deltas

TABLE = "dependence"
MEASURES = {"attributed_share": "share of the map's mass on the cue", "attributed_riw": "RIW (share / cue area)"}
DELTA_METRICS = ("segmentation/iou", "faithfulness/deletion_auc")
REFERENCES = ("sobel", "center")
RANDOMISATION_FILE = "randomisation.json"
METHOD_RANDOMISATION_FILE = "randomisation_methods.json"  # the baselines' model-randomisation test
PROBE_FILE = "probe.json"


@dataclass
class SourceDependence:
    """One source's dependence scores across the family (``measure``: the attributed column used)."""

    source: str
    kind: str  # explainer | method
    members: pd.DataFrame  # member, p_train, train_mode, noise, cue_effect, attributed_share, attributed_riw, cases
    tracking: dict[str, float]
    gap: dict[str, float]
    agreement: dict[str, float]
    verdict: str
    notes: list[str] = field(default_factory=list)


def read_cases(results: Results) -> pd.DataFrame:
    """Every finished trial's ``run/tables/dependence.csv`` in one frame with a ``trial_id`` column
    (empty frame when no trial has one). Several seeds of one trial are already averaged per case."""
    frames = []
    for trial in results.by_status("completed", "stopped"):
        if trial.run_dir is None:
            continue
        path = trial.run_dir / "tables" / f"{TABLE}.csv"
        if path.is_file():
            frame = pd.read_csv(path, index_col=0)
            frame["trial_id"] = trial.trial_id
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def family_arrays(cases: pd.DataFrame, measure: str = "attributed_share") -> dict[str, Any]:
    """One source's rows -> the arrays of ``metrics.dependence``: ``members`` (labels, confound
    members by p_train, then the noise control if any), ``true`` and ``attributed`` (K, M) over the
    cases (image, class) that every member has, ``noise`` (index of the noise member or None)."""
    keys = ["image", "class"]
    groups = {m: g.groupby(keys)[["cue_effect", measure]].mean() for m, g in cases.groupby("member")}
    info = cases.groupby("member")[["p_train", "train_mode"]].first()
    order = sorted(info.index, key=lambda m: (info.loc[m, "train_mode"] == "noise", float(info.loc[m, "p_train"])))
    shared = None
    for g in groups.values():
        shared = g.index if shared is None else shared.intersection(g.index)
    shared = shared.sort_values() if shared is not None else pd.Index([])
    true = np.stack([groups[m].loc[shared, "cue_effect"].to_numpy() for m in order]) if order else np.zeros((0, 0))
    attributed = np.stack([groups[m].loc[shared, measure].to_numpy() for m in order]) if order else np.zeros((0, 0))
    noise = [i for i, m in enumerate(order) if info.loc[m, "train_mode"] == "noise"]
    return {
        "members": order,
        "p_train": [float(info.loc[m, "p_train"]) for m in order],
        "true": true,
        "attributed": attributed,
        "noise": noise[-1] if noise else None,
    }


def _low(d: dict[str, float], key: str) -> float:
    return d.get(f"{key}_low", math.nan)


def verdict(track: dict[str, float], gap: dict[str, float]) -> str:
    """The section's reading of one source from two 95% intervals:

    - ``follows``: attributed reliance rises with the true effect across the confound members (the
      slope's interval above 0: unlike a correlation, defined and informative with two members and
      0 for a map that does not move) and is higher on the strongest shortcut than on the noise
      control (gap interval above 0);
    - ``salience``: it rises across the confound members but not above the noise control: the map
      sees the cue whether or not the classifier uses it;
    - ``gap only``: above the noise control, without tracking the graded family;
    - ``does not follow``: neither interval above 0;
    - ``undetermined``: an interval could not be computed (too few members or cases, no noise control).
    """
    track_low, gap_low = _low(track, "slope"), _low(gap, "gap")
    if math.isnan(track_low) or math.isnan(gap_low):
        return "undetermined"
    tracks, above = track_low > 0, gap_low > 0
    if tracks and above:
        return "follows"
    if tracks:
        return "salience"
    if above:
        return "gap only"
    return "does not follow"


def source_dependence(
    cases: pd.DataFrame, measure: str = "attributed_share", *, n_resamples: int = 1000, seed: int = 0
) -> SourceDependence:
    """The scores of one source's rows (``cases``: one source, several members)."""
    a = family_arrays(cases, measure)
    notes: list[str] = []
    k, m = a["true"].shape
    members = pd.DataFrame(
        {
            "member": a["members"],
            "p_train": a["p_train"],
            "noise": [i == a["noise"] for i in range(k)],
            "cue_effect": a["true"].mean(axis=1) if m else np.full(k, np.nan),
            measure: a["attributed"].mean(axis=1) if m else np.full(k, np.nan),
            "cases": m,
        }
    )
    confound = [i for i in range(k) if i != a["noise"]]
    nan = {"spearman": math.nan, "pearson": math.nan, "slope": math.nan}
    track, gap, agree = dict(nan), {"gap": math.nan}, {"spearman": math.nan, "pearson": math.nan}
    if m < 2:
        notes.append("fewer than 2 cases shared by the members")
    elif len(confound) < 2:
        notes.append("fewer than 2 confound members: no tracking")
    else:
        track = tracking(a["true"][confound], a["attributed"][confound], n_resamples=n_resamples, seed=seed)
    if m >= 2 and confound:
        strongest = max(confound, key=lambda i: a["true"][i].mean())
        agree = per_image_agreement(
            a["true"][strongest], a["attributed"][strongest], n_resamples=n_resamples, seed=seed
        )
        if a["noise"] is None:
            notes.append("no noise control (train_mode: noise) among the members: no confound-minus-noise gap")
        else:
            gap = confound_minus_noise(
                a["attributed"][strongest], a["attributed"][a["noise"]], n_resamples=n_resamples, seed=seed
            )
    first = cases.iloc[0]
    return SourceDependence(
        str(first["source"]), str(first["source_kind"]), members, track, gap, agree, verdict(track, gap), notes
    )


def follows(
    results: Results, measure: str = "attributed_share", *, n_resamples: int = 1000, seed: int = 0
) -> list[SourceDependence]:
    """Every source's scores (explainers first, then methods, by name); [] when no trial has the table."""
    cases = read_cases(results)
    if cases.empty:
        return []
    out = [
        source_dependence(group, measure, n_resamples=n_resamples, seed=seed)
        for _, group in cases.groupby(["source_kind", "source"], sort=True)
    ]
    return sorted(out, key=lambda s: (s.kind != "explainer", s.source))


def source_scores(results: Results, metrics: tuple[str, ...] = DELTA_METRICS) -> dict[str, dict[str, dict[str, float]]]:
    """member -> source -> ``{metric: value}`` of the finished trials that wrote a dependence table
    (their ``dependence/*`` metrics name the source; the member and source come from the table)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    cases = read_cases(results)
    if cases.empty:
        return out
    ident = cases.groupby("trial_id")[["member", "source"]].first()
    for trial in results.by_status("completed", "stopped"):
        if trial.trial_id not in ident.index:
            continue
        member, source = ident.loc[trial.trial_id, "member"], ident.loc[trial.trial_id, "source"]
        values = {k: float(trial.metrics[k]) for k in metrics if _finite(trial.metrics.get(k))}
        out.setdefault(str(member), {})[str(source)] = values
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def model_free_deltas(
    scores: dict[str, dict[str, dict[str, float]]],
    metrics: tuple[str, ...] = DELTA_METRICS,
    references: tuple[str, ...] = REFERENCES,
) -> pd.DataFrame:
    """Per source and metric: the mean over members of ``score - best reference's score`` on the same
    Explanandum (``metrics.references.reference_deltas``) and the members counted; the advantage is
    the delta signed so that positive is better. Empty when no member has a reference."""
    rows: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for member_scores in scores.values():
        if not any(r in member_scores for r in references):
            continue
        deltas = reference_deltas(member_scores, references, metrics=list(metrics))
        for source, per_metric in deltas.items():
            for metric, d in per_metric.items():
                if math.isfinite(d.delta):
                    rows.setdefault((source, metric), []).append((d.delta, d.advantage, d.reference or ""))
    table = [
        {
            "source": source,
            "metric": metric,
            "delta": float(np.mean([v[0] for v in values])),
            "advantage": float(np.mean([v[1] for v in values])),
            "references": ", ".join(sorted({v[2] for v in values})),
            "members": len(values),
        }
        for (source, metric), values in sorted(rows.items())
    ]
    return pd.DataFrame(table, columns=["source", "metric", "delta", "advantage", "references", "members"])


def read_extra(root: Path | str, name: str) -> dict[str, Any] | None:
    """``<root>/<name>`` (``randomisation.json``, ``probe.json``) as a mapping; None when absent or unreadable."""
    path = Path(root) / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
