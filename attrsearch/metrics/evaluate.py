"""The one evaluation entry point, used by single runs, sweep trials and ``attrsearch evaluate``.

``evaluate`` streams the dataset in batches: each batch's maps are computed once and every metric
family takes what it needs from them; the frozen classifiers see every derived image set
(masked, cropped, thresholded, perturbed, inpainted) in chunks of ``cfg.classify_chunk`` images
(default: cache-sized chunks on CPU, large ones on CUDA; see ``common.auto_chunk``).
Per-image (or per-case) values are collected and averaged at the end, so a result never depends
on the batch size.

Which images count:
- images without any label are skipped everywhere (their target mask is undefined);
- pixel metrics (segmentation/*, sanity/*) use annotated images (``has_masks``) only and never
  count void pixels; ``segmentation/images`` says how many;
- localisation / pointing / context use (image, present class) cases, see their modules;
- the class-specific table and deletion/insertion can be capped to the first N images
  (``class_specific_max_images``, ``faithfulness.max_images``); the fast suite scores its
  class-specific table on the first ``fast_subsample`` images.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from attrsearch.data.base import AttributionDataset, collate_samples
from attrsearch.errors import UserError
from attrsearch.metrics import class_specific as cs
from attrsearch.metrics import faithfulness as ff
from attrsearch.metrics import segmentation as seg
from attrsearch.attribution import Attribution, check_maps, normalize_maps
from attrsearch.metrics.classification import f1_per_image
from attrsearch.masks import aggregate_masks, ground_truth
from attrsearch.metrics.common import Classifier, auto_chunk, box_masks, class_boxes, class_pairs
from attrsearch.metrics.context import attribution_shares
from attrsearch.metrics.localization import localization_scores
from attrsearch.metrics.mask_stats import mask_area, mask_entropy
from attrsearch.metrics.pointing import pointing_accuracy, pointing_hits
from attrsearch.metrics.registry import check_suite
from attrsearch.metrics.transfer import VARIANTS, normalized_entropy, transfer_images


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


class _Collector:
    """Per-item values under a name (concatenated at the end) and wall time per family."""

    def __init__(self) -> None:
        self.values: dict[str, list[Tensor]] = defaultdict(list)
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, name: str, values: Tensor) -> None:
        self.values[name].append(values.detach().double().flatten().cpu())

    def all(self, name: str) -> Tensor:
        parts = self.values.get(name)
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)

    def mean(self, name: str) -> float:
        v = self.all(name)
        return v.mean().item() if v.numel() else math.nan

    def timed(self, family: str):
        collector = self

        class _Timer:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                collector.seconds[family] += time.perf_counter() - self.t0

        return _Timer()


def _named_panel(panel: Sequence[Any], chunk: int) -> list[tuple[str, Classifier]]:
    out = []
    for i, item in enumerate(panel):
        name, model = item if isinstance(item, tuple) else (f"panel{i}", item)
        out.append((str(name), Classifier(model, chunk)))
    return out


def _logits_or_zero(clf: Classifier, images: Tensor, empty: Tensor, zero_logits: Tensor) -> Tensor:
    """Classify images, except those flagged empty (all mean colour), which take ``zero_logits``."""
    out = zero_logits.expand(images.shape[0], -1).clone()
    if (~empty).any():
        out[~empty] = clf(images[~empty])
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

    attribution: images (B, 3, H, W) normalised -> maps (B, C, H, W) (see ``attribution``);
    explanandum: the frozen classifier the maps explain (logits (B, C), multi-label); dataset: the
    sample interface of ``attrsearch.data.base``; cfg: ``EvaluationConfig``; suite: ``full`` or
    ``fast``; panel: other frozen classifiers for the transfer metrics, modules or (name, module)
    pairs (full suite; empty: the Explanandum itself is scored and ``transfer/panel_size`` = 0);
    context_classes: the biased classes of planted context cues (default: ``dataset.info.context_classes``).
    """
    check_suite(suite)
    full = suite == "full"
    device = torch.device(device)
    info = dataset.info
    num_classes = info.num_classes
    chunk = cfg.classify_chunk or auto_chunk(device, info.image_size, info.image_size)
    clf = Classifier(explanandum, chunk)
    notes: list[str] = []
    params: dict[str, str] = {}
    col = _Collector()
    started = time.perf_counter()

    panel_items = _named_panel(panel, chunk) if full else []
    if full and not panel_items:
        notes.append("transfer: no panel given, the Explanandum itself is scored (not classifier-agnostic)")
    transfer_clfs = [("explanandum", clf)] + panel_items

    ctx_classes: list[int] = []
    if full and info.has_context:
        if context_classes is None:
            context_classes = getattr(info, "context_classes", None) or None
        if context_classes is None:
            context_classes = range(num_classes)
            notes.append("context: the dataset does not name its biased classes; every present class is scored")
        ctx_classes = sorted(set(int(c) for c in context_classes))
    ctx_selector = torch.zeros(num_classes, dtype=torch.bool, device=device)
    if ctx_classes:
        ctx_selector[ctx_classes] = True

    cs_limit = cfg.fast_subsample if not full else cfg.class_specific_max_images
    fcfg = cfg.faithfulness
    faith_limit = fcfg.max_images
    pixels_per_step = fcfg.pixels_per_step or info.image_size
    cs_sums = torch.zeros(num_classes, num_classes + 1, dtype=torch.float64)
    cs_counts = torch.zeros(num_classes, dtype=torch.float64)
    cs_images = 0
    normalized_any = False
    zero_logits: Tensor | None = None
    mean, std = info.mean, info.std

    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=False, collate_fn=collate_samples)
    offset = 0
    for batch in loader:
        x_all = batch["image"].to(device)
        b_all = x_all.shape[0]
        first = offset
        offset += b_all
        with col.timed("attribution"):
            raw = attribution(x_all)
            check_maps(raw, x_all, num_classes)
            maps_all, flags = normalize_maps(raw.to(device), cfg.attribution_normalization)
        normalized_any |= bool(flags.any())

        y_all = batch["labels"].to(device)
        keep = y_all.bool().any(dim=1)  # images with at least one label
        if not keep.any():
            continue
        x, y, maps = x_all[keep], y_all[keep], maps_all[keep]
        masks = batch["masks"].to(device)[keep]
        has_masks = batch["has_masks"].to(device)[keep]
        gidx = torch.arange(first, first + b_all, device=device)[keep]  # position in the dataset
        kept = keep.nonzero()[:, 0].tolist()
        boxes = [batch["boxes"][i] for i in kept]
        box_labels = [batch["box_labels"][i] for i in kept]
        m, n = aggregate_masks(maps, y)
        g, valid = ground_truth(masks, y)
        if zero_logits is None:
            zero_logits = clf(torch.zeros_like(x[:1]))

        with col.timed("classification"):
            masked_logits = clf(x * m[:, None])
            col.add("classification/masked_f1", f1_per_image(torch.sigmoid(masked_logits), y))
        with col.timed("mask"):
            col.add("mask/area", mask_area(m))
        with col.timed("segmentation"):
            annotated = has_masks.bool()
            col.add("segmentation/iou", seg.continuous_iou(m[annotated], g[annotated], valid[annotated]))

        cs_sel = gidx < cs_limit if cs_limit is not None else torch.ones_like(keep[keep])
        clean_logits = clf(x) if full else None

        if cs_sel.any():
            with col.timed("class_specific"):
                probs = cs.class_specific_probs(clf, x[cs_sel], maps[cs_sel], cfg.class_specific_thresholds)
                clean_cs = clean_logits[cs_sel] if full else clf(x[cs_sel])
                sums, counts = cs.class_specific_sums(probs, clean_cs, y[cs_sel])
                cs_sums += sums.double().cpu()
                cs_counts += counts.double().cpu()
                cs_images += int(cs_sel.sum())

        if not full:
            continue

        with col.timed("classification"):
            col.add("classification/clean_f1", f1_per_image(torch.sigmoid(clean_logits), y))
            col.add("classification/inverted_f1", f1_per_image(torch.sigmoid(clf(x * (1.0 - m[:, None]))), y))

        with col.timed("mask"):
            col.add("mask/nontarget_area", mask_area(n))
            col.add("mask/entropy", mask_entropy(m))

        with col.timed("segmentation"):
            _segmentation_batch(col, clf, x, y, m, g, valid, annotated, masked_logits, clean_logits, zero_logits, cfg)

        with col.timed("transfer"):
            variants = transfer_images(x, m, cfg.transfer.threshold, mean, std, cfg.transfer.inpaint_radius)
            for name, model in transfer_clfs:
                sets = {"clean": clean_logits if model is clf else model(x)}
                sets.update({v: model(variants[v]) for v in VARIANTS})
                for v, logits in sets.items():
                    col.add(f"_transfer/{name}/{v}/f1", f1_per_image(torch.sigmoid(logits), y))
                    col.add(f"_transfer/{name}/{v}/entropy", normalized_entropy(logits))

        pi, pc = class_pairs(y)
        with col.timed("localization"):
            gt_boxes, box_case = class_boxes(boxes, box_labels, pi.cpu(), pc.cpu())
            with_box = torch.zeros(pi.numel(), dtype=torch.bool)
            with_box[box_case] = True
            if with_box.any():
                sel = with_box.to(device)
                remap = torch.cumsum(with_box.long(), 0) - 1  # case index among the cases with boxes
                predicted = torch.sigmoid(clean_logits[pi, pc]) >= 0.5
                scores = localization_scores(
                    maps[pi, pc][sel], gt_boxes.to(device), remap[box_case].to(device), predicted[sel]
                )
                for k, v in scores.items():
                    col.add(f"localization/{k}", v)
                col.add("_loc/class", pc[sel])

        with col.timed("pointing_game"):
            h, w = x.shape[-2:]
            gt_pix = masks[pi, pc] == 1
            if gt_boxes.numel():
                from_boxes = torch.zeros(pi.numel(), h, w, device=device)
                from_boxes.index_add_(0, box_case.to(device), box_masks(gt_boxes.to(device), h, w).float())
                gt_pix = torch.where(has_masks[pi][:, None, None], gt_pix, from_boxes > 0)
            else:
                gt_pix = gt_pix & has_masks[pi][:, None, None]
            nonempty = gt_pix.flatten(1).any(dim=1)
            hits = pointing_hits(maps[pi, pc][nonempty], gt_pix[nonempty], cfg.pointing_tolerance)
            col.add("_pointing/hit", hits.float())
            col.add("_pointing/class", pc[nonempty])

        if ctx_classes:
            with col.timed("context"):
                context = batch["context"].to(device)[keep].bool()
                case = ctx_selector[pc] & context[pi].flatten(1).any(dim=1) & has_masks[pi].bool()
                if case.any():
                    ci, cc = pi[case], pc[case]
                    cmaps = maps[ci, cc]
                    col.add("context/reliance", attribution_shares(cmaps, context[ci]))
                    col.add("context/object_mass", attribution_shares(cmaps, masks[ci, cc] == 1))
                    col.add("_context/class", cc)

        if faith_limit is None or first < faith_limit:
            with col.timed("faithfulness"):
                classes, use = ff.scored_classes(clean_logits, y, fcfg.scored_class)
                if faith_limit is not None:
                    use = use & (gidx < faith_limit)
                if use.any():
                    xi, ci = x[use], classes[use]
                    sal = maps[use].gather(1, ci.view(-1, 1, 1, 1).expand(-1, 1, *maps.shape[-2:]))[:, 0]
                    for mode, kind in (("deletion", fcfg.deletion_substrate), ("insertion", fcfg.insertion_substrate)):
                        curves = ff.causal_curves(clf, xi, sal, ci, mode, ff.substrate(xi, kind), pixels_per_step, chunk)
                        col.add(f"faithfulness/{mode}_auc", ff.curve_auc(curves))

    result = _summarise(col, full, num_classes, info, cs_sums, cs_counts, cs_images, transfer_clfs, panel_items, cfg)
    result.metrics["attribution/minmax_normalized"] = float(normalized_any)
    if normalized_any:
        notes.append("attribution: maps outside [0, 1] were min-max normalised per image and class")
    if full:
        steps = ff.num_steps(info.image_size**2, pixels_per_step)
        result.metrics.update(
            {
                "faithfulness/pixels_per_step": float(pixels_per_step),
                "faithfulness/steps": float(steps),
                "pointing_game/tolerance": float(cfg.pointing_tolerance),
                "transfer/threshold": float(cfg.transfer.threshold),
            }
        )
        params.update(
            {
                "faithfulness/deletion_substrate": fcfg.deletion_substrate,
                "faithfulness/insertion_substrate": fcfg.insertion_substrate,
                "faithfulness/scored_class": fcfg.scored_class,
                "faithfulness/probability": "sigmoid",
            }
        )
        if not ctx_classes:
            notes.append("context: the dataset has no planted context cues; context/* omitted")
    missing = sorted(k for k, v in result.metrics.items() if isinstance(v, float) and math.isnan(v))
    for key in missing:
        del result.metrics[key]
    if missing:
        notes.append(f"no cases for {', '.join(missing)}: omitted")
    result.params = params
    result.notes = notes + result.notes
    result.timings = dict(col.seconds)
    result.timings["total"] = time.perf_counter() - started
    for name, model in transfer_clfs:
        result.timings[f"images_classified/{name}"] = float(model.images_seen)
    for note in result.notes:
        print(f"attrsearch: note: {note}", file=sys.stderr)
    return result


def _segmentation_batch(col, clf, x, y, m, g, valid, annotated, masked_logits, clean_logits, zero_logits, cfg) -> None:
    """segmentation/* and sanity/* of one batch, on its annotated images."""
    if not annotated.any():
        return
    xa, ya, ma, ga, va = x[annotated], y[annotated], m[annotated], g[annotated], valid[annotated]
    col.add("segmentation/images", torch.ones(xa.shape[0]))
    thr = cfg.saliency_crop_threshold

    def crop_logits(mask: Tensor) -> tuple[Tensor, Tensor]:
        crops, area = seg.crop_salient(xa, mask > thr)
        empty = ~(mask > thr).flatten(1).any(dim=1)
        return _logits_or_zero(clf, crops, empty, zero_logits), area

    rows: dict[str, tuple[Tensor, Tensor]] = {"": (ma, masked_logits[annotated])}
    for row in seg.SANITY_ROWS:
        mask = seg.constant_mask(row, ga)
        if row == "zero":
            logits = zero_logits.expand(xa.shape[0], -1)
        elif row == "one":
            logits = clean_logits[annotated]
        else:
            logits = clf(xa * mask[:, None])
        rows[row] = (mask, logits)
    for row, (mask, logits) in rows.items():
        prefix = f"sanity/{row}" if row else "segmentation"
        if row:  # the main row's IoU is collected with the fast metrics
            col.add(f"{prefix}/iou", seg.continuous_iou(mask, ga, va))
        col.add(f"{prefix}/accuracy", seg.soft_accuracy(mask, ga, va))
        col.add(f"{prefix}/mae", seg.mean_absolute_error(mask, ga, va))
        col.add(f"{prefix}/saliency", seg.saliency_from_logits(logits, ya, mask.mean(dim=(1, 2))))
        if row == "one":  # the crop of the whole image is the image (tests/metrics/test_segmentation.py)
            c_logits, c_area = logits, torch.ones_like(mask[:, 0, 0])
        else:
            c_logits, c_area = crop_logits(mask)
        col.add(f"{prefix}/saliency_crop", seg.saliency_from_logits(c_logits, ya, c_area))


def _per_class(col: _Collector, name: str, key: str, num_classes: int) -> Tensor:
    """Mean of per-case values ``name`` grouped by the class list ``key``: (num_classes,), NaN if none."""
    values, classes = col.all(name), col.all(key).long()
    counts = torch.bincount(classes, minlength=num_classes).double()
    sums = torch.bincount(classes, weights=values, minlength=num_classes)
    return torch.where(counts > 0, sums / counts.clamp_min(1.0), torch.full_like(sums, math.nan))


def _summarise(col, full, num_classes, info, cs_sums, cs_counts, cs_images, transfer_clfs, panel_items, cfg) -> EvaluationResult:
    metrics: dict[str, float] = {}
    tables: dict[str, pd.DataFrame] = {}
    names = [n for n in col.values if not n.startswith("_")]
    for name in names:
        if name == "segmentation/images":
            metrics[name] = float(col.all(name).numel())
        else:
            metrics[name] = col.mean(name)
    if full and "segmentation/images" not in metrics:
        metrics["segmentation/images"] = 0.0

    class_names = list(info.class_names)
    if cs_images:
        table = cs.class_specific_table(cs_sums, cs_counts, class_names)
        tables["class_specific"] = table
        metrics.update(cs.class_specific_summary(table))
        metrics["class_specific/images"] = float(cs_images)

    if not full:
        return EvaluationResult(metrics, tables)

    # Transfer: one row per classifier, panel means as the headline numbers.
    rows = {}
    for name, _ in transfer_clfs:
        rows[name] = {f"{v}_{s}": col.mean(f"_transfer/{name}/{v}/{s}") for v in ("clean", *VARIANTS) for s in ("f1", "entropy")}
    if rows and not math.isnan(rows["explanandum"]["clean_f1"]):
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "classifier"
        table["role"] = ["explanandum"] + ["panel"] * len(panel_items)
        tables["transfer"] = table
        scored = [n for n, _ in panel_items] or ["explanandum"]
        for v in ("clean", *VARIANTS):
            metrics[f"transfer/{v}"] = float(table.loc[scored, f"{v}_f1"].mean())
        for v in VARIANTS:
            metrics[f"transfer/{v}_entropy"] = float(table.loc[scored, f"{v}_entropy"].mean())
        metrics["transfer/panel_size"] = float(len(panel_items))

    # Pointing game: mean over classes.
    hits, pclasses = col.all("_pointing/hit"), col.all("_pointing/class").long()
    if hits.numel():
        score, per_class_pg = pointing_accuracy(hits.bool(), pclasses, num_classes)
        metrics["pointing_game/accuracy"] = score
        metrics["pointing_game/cases"] = float(hits.numel())
    else:
        per_class_pg = torch.full((num_classes,), math.nan, dtype=torch.float64)
    if col.all("localization/le").numel():
        metrics["localization/cases"] = float(col.all("localization/le").numel())
    if col.all("context/reliance").numel():
        metrics["context/cases"] = float(col.all("context/reliance").numel())
    if col.all("faithfulness/deletion_auc").numel():
        metrics["faithfulness/images"] = float(col.all("faithfulness/deletion_auc").numel())

    per_class = pd.DataFrame(index=pd.Index(class_names, name="class"))
    per_class["pointing_game"] = per_class_pg.numpy()
    for k in ("le", "om", "f1"):
        per_class[f"localization_{k}"] = _per_class(col, f"localization/{k}", "_loc/class", num_classes).numpy()
    for k in ("reliance", "object_mass"):
        if col.all(f"context/{k}").numel():
            per_class[f"context_{k}"] = _per_class(col, f"context/{k}", "_context/class", num_classes).numpy()
    if "class_specific" in tables:
        t = tables["class_specific"]
        per_class["class_specific_diagonal"] = [t.loc[c, c] for c in class_names]
        per_class["class_specific_images"] = t["images"].to_numpy()
    tables["per_class"] = per_class
    return EvaluationResult(metrics, tables)


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


def evaluate_checkpoint(checkpoint: Path, out: Path, suite: str = "full", split: str = "test") -> dict[str, float]:
    """``attrsearch evaluate``: load an Explainer checkpoint (a file, or a run folder holding
    ``checkpoints/best.pt``) and its config, rebuild the dataset split, the Explanandum and (full
    suite) the transfer panel from that config, evaluate, write ``out``; returns the metrics."""
    from attrsearch.data import build_dataset
    from attrsearch.attribution import explainer_attribution
    from attrsearch.train.checkpoint import load_explainer
    from attrsearch.train.explanandum import get_explanandum, get_panel
    from attrsearch.train.runtime import configure_threads, resolve_device

    check_suite(suite)
    cfg, explainer = load_explainer(checkpoint, "cpu")
    configure_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device)
    explainer.to(device)
    dataset = build_dataset(cfg.data, split, cfg.cache_dir)
    explanandum = get_explanandum(cfg, device)
    panel = get_panel(cfg, device) if suite == "full" else []
    result = evaluate(
        explainer_attribution(explainer), explanandum, dataset, cfg.evaluation,
        suite=suite, panel=panel, device=device,
    )
    write_results(result, out)
    return result.metrics
