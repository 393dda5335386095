"""The one evaluation entry point, used by single runs, sweep trials and ``attrsearch evaluate``.

``evaluate`` streams the dataset in batches: each batch's maps are computed once, the per-batch
context (``metrics.scorer.BatchContext``: maps, target / non-target masks, ground truth, the clean
and masked logits the suite needs) is built once, and every family scorer of the suite
(``metrics.suites``) takes what it needs from it. The frozen classifiers see every derived image
set (masked, cropped, thresholded, perturbed, inpainted) in chunks of ``cfg.classify_chunk`` images
(default: cache-sized chunks on CPU, large ones on CUDA; see ``common.auto_chunk``). Per-image (or
per-case) values are collected and averaged at the end, so a result never depends on the batch size.

Which images count:
- images without any label are skipped everywhere (their target mask is undefined), before their
  maps are computed, so a method spends no forward passes on them;
- pixel metrics (segmentation/*, sanity/*) use annotated images (``has_masks``) only and never
  count void pixels; ``segmentation/images`` says how many;
- localisation / pointing / context use (image, present class) cases, see their modules;
- the class-specific table and deletion/insertion can be capped to the first N images
  (``class_specific_max_images``, ``faithfulness.max_images``); the fast suite scores its
  class-specific table on the first ``fast_subsample`` images.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from attrsearch.attribution import Attribution, check_maps, normalize_maps, output_kind_of
from attrsearch.data.base import AttributionDataset, collate_samples
from attrsearch.masks import aggregate_masks, ground_truth
from attrsearch.metrics.common import Classifier, auto_chunk
from attrsearch.metrics.registry import check_suite
from attrsearch.metrics.results import EvaluationResult, write_results  # noqa: F401  (re-exported)
from attrsearch.metrics.scorer import BatchContext, EvaluationSetup, Scorer, per_class_frame
from attrsearch.metrics.suites import SUITES

log = logging.getLogger(__name__)


def _named_panel(panel: Sequence[Any], chunk: int, dtype: str) -> list[tuple[str, Classifier]]:
    out = []
    for i, item in enumerate(panel):
        name, model = item if isinstance(item, tuple) else (f"panel{i}", item)
        out.append((str(name), Classifier(model, chunk, dtype=dtype)))
    return out


def evaluate(
    attribution: Attribution,
    explanandum: nn.Module,
    dataset: AttributionDataset,
    cfg,
    suite: str = "full",
    panel: Sequence[nn.Module | tuple[str, nn.Module]] = (),
    device: str | torch.device = "cpu",
    context_classes: Sequence[int] | None = None,
) -> EvaluationResult:
    """Score an attribution on a dataset with a metric suite.

    attribution: images (B, 3, H, W) normalised -> maps (B, C, H, W) (see ``attrsearch.attribution``);
    explanandum: the frozen classifier the maps explain (logits (B, C), multi-label); dataset: the
    sample interface of ``attrsearch.data.base``; cfg: ``EvaluationConfig``; suite: a name of
    ``metrics.suites.SUITES``; panel: other frozen classifiers for the transfer metrics, modules or
    (name, module) pairs (suites with transfer; empty: the Explanandum itself is scored and
    ``transfer/panel_size`` = 0); context_classes: the biased classes of planted context cues
    (default: ``dataset.info.context_classes``).
    """
    spec = SUITES[check_suite(suite)]
    device = torch.device(device)
    info = dataset.info
    chunk = cfg.classify_chunk or auto_chunk(device, info.image_size, info.image_size)
    clf = Classifier(explanandum, chunk, dtype=cfg.classifier_dtype)
    started = time.perf_counter()
    seconds: dict[str, float] = defaultdict(float)
    panel_items = _named_panel(panel, chunk, cfg.classifier_dtype) if spec.uses("transfer") else []
    setup = EvaluationSetup(cfg, info, device, clf, chunk, panel_items, context_classes)
    scorers: list[Scorer] = [f.scorer_class()(setup, **f.options) for f in spec.families]
    needs = set().union(*(s.needs for s in scorers))
    notes = [note for s in scorers for note in s.notes]
    setup_notes = [len(s.notes) for s in scorers]

    kind = output_kind_of(attribution)
    normalized_any = False
    zero_logits = None
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, collate_fn=collate_samples)
    first = 0
    for batch in loader:
        x_all = batch["image"].to(device)
        batch_start, first = first, first + x_all.shape[0]
        y_all = batch["labels"].to(device)
        keep = y_all.bool().any(dim=1)  # images with at least one label
        if not keep.any():
            continue
        x, y = x_all[keep], y_all[keep]
        t0 = time.perf_counter()
        raw = attribution(x)  # only the images that count: a map never depends on its batch
        check_maps(raw, x, info.num_classes)
        maps, flags = normalize_maps(raw.to(device), cfg.attribution_normalization, kind)
        seconds["attribution"] += time.perf_counter() - t0
        normalized_any |= bool(flags.any())
        masks = batch["masks"].to(device)[keep]
        kept = keep.nonzero()[:, 0].tolist()
        m, n = aggregate_masks(maps, y)
        g, valid = ground_truth(masks, y)
        if zero_logits is None:  # the first forward pass: it also picks the classifier's runner
            zero_logits = clf(torch.zeros_like(x[:1]))
        ctx = BatchContext(
            images=x,
            labels=y,
            maps=maps,
            m=m,
            n=n,
            g=g,
            valid=valid,
            masks=masks,
            annotated=batch["has_masks"].to(device)[keep].bool(),
            positions=torch.arange(batch_start, first, device=device)[keep],
            batch_start=batch_start,
            boxes=[batch["boxes"][i] for i in kept],
            box_labels=[batch["box_labels"][i] for i in kept],
            context=batch["context"].to(device)[keep] if "context" in batch else None,
            classifier=clf,
            cfg=cfg,
            info=info,
            zero_logits=zero_logits,
        )
        t0 = time.perf_counter()
        if "masked_logits" in needs:
            ctx.masked_logits = clf(x * m[:, None])
        if "clean_logits" in needs:
            ctx.clean_logits = clf(x)
        seconds["classification"] += time.perf_counter() - t0
        for scorer in scorers:
            t0 = time.perf_counter()
            scorer.update(ctx)
            seconds[scorer.family] += time.perf_counter() - t0

    metrics: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}
    params: dict[str, str] = {}
    per_class = per_class_frame(info.class_names)
    for scorer in scorers:
        values, parts = scorer.compute()
        metrics.update(values)
        part = parts.pop("per_class", None)
        if part is not None:
            per_class = per_class.join(part)
        tables.update(parts)
        params.update(scorer.params)
    if spec.per_class_table:
        tables["per_class"] = per_class
    metrics["attribution/minmax_normalized"] = float(normalized_any)
    if normalized_any:
        why = "score maps" if kind == "score" else "maps outside [0, 1]"
        if cfg.attribution_normalization == "always":
            why = "all maps (attribution_normalization: always)"
        notes.append(f"attribution: {why} were min-max normalised per image and class")
    for scorer, count in zip(scorers, setup_notes):
        notes.extend(scorer.notes[count:])
    missing = sorted(k for k, v in metrics.items() if isinstance(v, float) and math.isnan(v))
    for key in missing:
        del metrics[key]
    if missing:
        notes.append(f"no cases for {', '.join(missing)}: omitted")

    timings = dict(seconds)
    timings["total"] = time.perf_counter() - started
    for name, model in [("explanandum", clf), *panel_items]:
        timings[f"images_classified/{name}"] = float(model.images_seen)
    for note in notes:
        log.warning("attrsearch: note: %s", note)
    return EvaluationResult(metrics, tables, params, notes, timings)
