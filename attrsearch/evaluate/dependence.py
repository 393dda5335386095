"""One run's measurement for the dependence study: does the explanation follow the classifier?

With ``evaluation.dependence.enabled`` (built-in shapes data only), every scored source (an
Explainer after training, a baseline method) also measures, on the cue cases (image, biased class
with its own cue visible) of the first ``images`` images of the evaluation split drawn with
``p_test`` (default 1: a cue beside every biased object):

- the Explanandum's true cue effect per case, ``p_c(x) - p_c(x without the cue)``, on counterfactual
  twins (``attrsearch.data.shapes_twins``, ``attrsearch.metrics.intervention``: ground truth by
  intervention, as FunnyBirds, Hesse, Schaub-Meyer & Roth 2023);
- the source's attributed reliance on the cue per case: the share of its class map's mass on the
  cue and the relative importance RIW (Clark, Oliveira, Wilming & Haufe 2026), on maps brought to
  [0, 1] as the metric suite does (``evaluation.attribution_normalization``).

The per-case rows go to ``tables/dependence.csv`` (with the run's family-member and source identity,
so a report can pair rows across runs); the means to ``dependence/*`` metrics. The study itself,
across an Explanandum family, is ``attrsearch.analysis.follows``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from attrsearch.attribution import normalize_maps, output_kind_of
from attrsearch.data.shapes_twins import twin_datasets
from attrsearch.metrics.context import case_reliance
from attrsearch.metrics.intervention import case_effects, class_probabilities
from attrsearch.metrics.results import EvaluationResult

TABLE = "dependence"
KINDS = ("original", "no_cue")


def member_label(cfg) -> str:
    """The family member a run's Explanandum belongs to, e.g. ``confound p_train=0.5``."""
    context = cfg.data.shapes.context
    return f"{context.train_mode} p_train={context.p_train:g}"


def source_label(cfg) -> tuple[str, str]:
    """(kind, name) of what made a run's maps: (``method``, the method) or (``explainer``, the objective)."""
    if cfg.method is not None:
        return "method", cfg.method.name
    return "explainer", cfg.objective.name


def dependence_cases(
    attribute: Any, explanandum: torch.nn.Module, cfg, device: torch.device | str = "cpu"
) -> pd.DataFrame:
    """One row per cue case: ``image``, ``class``, ``p_original``, ``p_no_cue``, ``cue_effect`` (in
    [-1, 1]), ``attributed_share`` (in [0, 1]) and ``attributed_riw`` (>= 0) of ``attribute``'s maps
    (images (B, 3, H, W) -> (B, C, H, W)) explaining ``explanandum``, plus the identity columns
    ``member``, ``p_train``, ``train_mode``, ``source_kind``, ``source``."""
    dep = cfg.evaluation.dependence
    data = cfg.data.model_copy(deep=True)
    data.shapes.context.p_test = dep.p_test
    split = cfg.evaluation.split
    datasets, index, classes = twin_datasets(data, split, cfg.cache_dir, dep.images, KINDS)
    cls = torch.from_numpy(np.array(classes, np.int64))  # a writable copy of the cached array
    probs = {
        kind: class_probabilities(explanandum, ds, device, cfg.evaluation.batch_size) for kind, ds in datasets.items()
    }
    effects = case_effects(probs, cls)
    original, kind = datasets["original"], output_kind_of(attribute)
    shares, riws = [], []
    step = cfg.evaluation.batch_size
    for start in range(0, len(original), step):
        items = [original[i] for i in range(start, min(len(original), start + step))]
        raw = attribute(
            torch.stack([it["image"] for it in items]).to(device)
        )  # as evaluate calls it (gradients allowed)
        maps, _ = normalize_maps(raw.detach().float(), cfg.evaluation.attribution_normalization, kind)
        context = torch.stack([it["context"] for it in items]).to(maps.device)
        reliance = case_reliance(maps, cls[start : start + len(items)].to(maps.device), context)
        shares.append(reliance["reliance"].cpu())
        riws.append(reliance["riw"].cpu())
    source_kind, source = source_label(cfg)
    ctx = cfg.data.shapes.context
    return pd.DataFrame(
        {
            "member": member_label(cfg),
            "p_train": float(ctx.p_train),
            "train_mode": ctx.train_mode,
            "source_kind": source_kind,
            "source": source,
            "image": index,
            "class": classes,
            "p_original": effects["p_original"].numpy(),
            "p_no_cue": effects["p_no_cue"].numpy(),
            "cue_effect": effects["cue_effect"].numpy(),
            "attributed_share": torch.cat(shares).numpy(),
            "attributed_riw": torch.cat(riws).numpy(),
        }
    )


def add_dependence(result: EvaluationResult, attribute: Any, explanandum: torch.nn.Module, cfg, device="cpu") -> None:
    """With ``evaluation.dependence.enabled``: add ``tables/dependence.csv`` and the ``dependence/*``
    means (``cue_effect``, ``attributed_share``, ``attributed_riw``, ``cases``) to ``result``."""
    if not cfg.evaluation.dependence.enabled:
        return
    frame = dependence_cases(attribute, explanandum, cfg, device)
    result.tables[TABLE] = frame
    for name in ("cue_effect", "attributed_share", "attributed_riw"):
        result.metrics[f"dependence/{name}"] = float(np.nanmean(frame[name].to_numpy()))
    result.metrics["dependence/cases"] = float(len(frame))
