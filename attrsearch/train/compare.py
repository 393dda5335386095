"""``attrsearch compare``: the Explainer and baseline methods side by side on one Explanandum.

Every entry is scored with the same suite on the same split (``train.evaluate.score_method`` /
``score_explainer``); ``explainer`` is the config's Explainer, trained like ``attrsearch train``
into ``DIR/explainer/`` (an existing checkpoint there is reused) or taken from ``--checkpoint``.
Slow methods may be capped to the first N images (``--max-images rise=64``); the tables say so
and compare each method with the sanity rows of *its own* images.

Writes (Stalder et al. 2022's tables, "What You See is What You Classify"):

- ``DIR/tables/class_specific_<method>.csv``: Table 1, the class-specific matrix of each method;
- ``DIR/comparison.md`` / ``DIR/comparison.csv``: Table 2 (segmentation accuracy, IoU, saliency in
  both variants, MAE, with the constant-mask 0 / 0.5 / 1 and ground-truth sanity rows), Table 3
  (seconds per image), the sanity checks of Adebayo et al. 2018 (cascading randomisation of the
  Explanandum's layers, optionally data randomisation) with pass / fail, and every other metric;
- ``DIR/methods/<method>/metrics.json`` and ``tables/``: each entry's full results;
- ``DIR/tables/sanity_randomization.csv``: Spearman / SSIM per randomised layer and method.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from attrsearch.errors import UserError

EXPLAINER = "explainer"
SHUFFLED_EXPLAINER = (
    "explainer_shuffled_labels"  # compare --sanity-data: the Explainer trained against the shuffled-label Explanandum
)
SEGMENTATION = ("accuracy", "iou", "saliency", "saliency_crop", "mae")
SANITY_ROWS = {"zero": "0", "half": "0.5", "one": "1", "gt": "GT"}
DEFAULT_SANITY_IMAGES = 4


def parse_methods(text: str) -> list[str]:
    """``"explainer,gradcam,rise"`` -> names, in order; one-line errors for an empty or repeated entry."""
    names = [n.strip() for n in str(text).split(",")]
    if not names or any(not n for n in names):
        raise UserError(f"--methods: expected comma-separated method names, got {text!r}")
    seen = [n for i, n in enumerate(names) if n in names[:i]]
    if seen:
        raise UserError(f"--methods: {seen[0]} is listed twice")
    return names


def parse_caps(items: list[str] | None, methods: list[str]) -> dict[str, int]:
    """``["rise=64"]`` -> ``{"rise": 64}``; the method must be one of ``methods``, N >= 1."""
    caps: dict[str, int] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in methods:
            raise UserError(f"--max-images {item}: expected METHOD=N with METHOD one of {', '.join(methods)}")
        try:
            caps[name] = int(raw)
        except ValueError:
            raise UserError(f"--max-images {item}: N must be a whole number") from None
        if caps[name] < 1:
            raise UserError(f"--max-images {item}: N must be at least 1")
    return caps


def parse_method_options(items: list[str] | None, methods: list[str]) -> dict[str, dict[str, Any]]:
    """``["rise.masks=2000"]`` -> ``{"rise": {"masks": 2000}}`` (values parsed as YAML)."""
    from attrsearch.attribution.methods import parse_option_values

    grouped: dict[str, list[str]] = {}
    for item in items or []:
        name, dot, rest = item.partition(".")
        if not dot or name not in methods or name == EXPLAINER:
            raise UserError(f"--option {item}: expected METHOD.KEY=VALUE with METHOD one of the baseline --methods")
        grouped.setdefault(name, []).append(rest)
    return {name: parse_option_values(values) for name, values in grouped.items()}


def _explainer_checkpoint(cfg, out: Path, checkpoint: Path | None, run_name: str = EXPLAINER) -> Path:
    """``--checkpoint``, else ``DIR/<run_name>/checkpoints/best.pt`` if a finished run left it, else
    train the config's Explainer there (``run_training``, resumable) and return its best checkpoint."""
    from attrsearch.train.run import run_training

    if checkpoint is not None:
        return checkpoint
    run_dir = out / run_name
    best = run_dir / "checkpoints" / "best.pt"
    if best.is_file() and (run_dir / "metrics.json").is_file():
        print(f"compare: {run_name}: reusing {best}")
        return best
    print(f"compare: {run_name}: training the config's Explainer into {run_dir}")
    summary = run_training(cfg, run_dir, resume=True)
    return Path(summary["checkpoint_path"])


def sanity_batch(cfg, split: str, count: int) -> tuple[Tensor, Tensor]:
    """The first ``count`` images of the split that have a label: (images (N, 3, H, W), targets (N, C) bool)."""
    from attrsearch.data import build_dataset, collate_samples

    ds = build_dataset(cfg.data, split, cfg.cache_dir)
    samples = []
    for i in range(len(ds)):
        sample = ds[i]
        if torch.as_tensor(sample["labels"]).bool().any():
            samples.append(sample)
        if len(samples) == count:
            break
    if not samples:
        raise UserError(f"compare: the {split} split has no labelled image for the sanity checks")
    batch = collate_samples(samples)
    return batch["image"], batch["labels"].bool()


def _method_fn(name: str, options: dict[str, Any]) -> Callable[[nn.Module, Tensor, Tensor | None], Tensor]:
    from attrsearch.attribution.methods import resolve_method

    fn, opts = resolve_method(name, options)
    kwargs = opts.model_dump()
    return lambda model, images, targets: fn(model, images, targets, **kwargs)


def _explainer_fn(checkpoint: Path, device: torch.device) -> Callable[[nn.Module, Tensor, Tensor | None], Tensor]:
    """The Explainer as a sanity-check method: it never reads the model it is handed (amortised)."""
    from attrsearch.attribution import explainer_attribution
    from attrsearch.train.checkpoint import load_explainer

    _, explainer = load_explainer(checkpoint, device)
    attribute = explainer_attribution(explainer)
    return lambda model, images, targets: attribute(images.to(device))


def compare(
    cfg,
    methods: list[str],
    out: Path,
    *,
    checkpoint: Path | None = None,
    max_images: dict[str, int] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    suite: str = "full",
    split: str | None = None,
    sanity_images: int = DEFAULT_SANITY_IMAGES,
    sanity_data: bool = False,
) -> dict[str, Any]:
    """Score ``methods`` (``explainer`` and/or method names) and write the comparison into ``out``.

    Everything that can be checked is checked first (names, options, CAM layers, LRP rules against
    the untrained architecture, the checkpoint file). Returns ``{"markdown": path, "csv": path,
    "results": {method: metrics}}``.
    """
    from attrsearch.attribution.sanity import SPEARMAN_THRESHOLD, cascading_randomization, compare_maps
    from attrsearch.metrics.registry import check_suite
    from attrsearch.metrics.results import write_results
    from attrsearch.train.checkpoint import load_checkpoint
    from attrsearch.train.evaluate import check_method, score_explainer, score_method, untrained_explanandum
    from attrsearch.train.explanandum import get_explanandum
    from attrsearch.train.runtime import configure_threads, resolve_device

    out = Path(out)
    split = split or cfg.evaluation.split
    max_images, options = dict(max_images or {}), dict(options or {})
    check_suite(suite)
    if sanity_images < 1:
        raise UserError("--sanity-images: must be at least 1")
    model = untrained_explanandum(cfg)
    for name in methods:
        if name != EXPLAINER:
            check_method(cfg, name, options.get(name), model=model)
    if checkpoint is not None:
        if EXPLAINER not in methods:
            raise UserError("--checkpoint: only used by the explainer entry of --methods")
        load_checkpoint(checkpoint)  # a one-line error now, not after the baselines ran

    configure_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device)
    ckpt = _explainer_checkpoint(cfg, out, checkpoint) if EXPLAINER in methods else None
    explanandum = get_explanandum(cfg, device)
    shuffled = shuffled_fn = None
    if sanity_data:
        recipe = cfg.explanandum.recipe.model_copy(update={"shuffle_labels": True})
        shuffled_cfg = cfg.model_copy(update={"explanandum": cfg.explanandum.model_copy(update={"recipe": recipe})})
        shuffled = get_explanandum(shuffled_cfg, device)
        if EXPLAINER in methods:  # amortised: its data randomisation is an Explainer trained against `shuffled`
            shuffled_fn = _explainer_fn(_explainer_checkpoint(shuffled_cfg, out, None, SHUFFLED_EXPLAINER), device)
    images, targets = sanity_batch(cfg, split, sanity_images)
    images, targets = images.to(device), targets.to(device)

    results, notes, sanity_layers = {}, [], {}
    for name in methods:
        print(f"compare: scoring {name}" + (f" on the first {max_images[name]} images" if name in max_images else ""))
        if name == EXPLAINER:
            result = score_explainer(ckpt, suite, split, cfg, device, max_images.get(name))
            fn = _explainer_fn(ckpt, device)
        else:
            result = score_method(cfg, name, options.get(name), suite, split, max_images.get(name), device, explanandum)
            fn = _method_fn(name, options.get(name, {}))
        n = min(len(images), max_images.get(name, len(images)))  # a capped (slow) method: fewer sanity images too
        sanity = cascading_randomization(explanandum, fn, images[:n], targets[:n])
        result.metrics.update(sanity.metrics())
        result.metrics["sanity/randomization/images"] = float(n)
        sanity_layers[name] = sanity
        if shuffled is not None:
            x, t = images[:n], targets[:n]
            randomised = shuffled_fn if name == EXPLAINER else fn
            data = compare_maps(fn(explanandum, x, t), randomised(shuffled, x, t), t)
            result.metrics["sanity/data_randomization/spearman"] = data["spearman"]
            result.metrics["sanity/data_randomization/ssim"] = data["ssim"]
            result.metrics["sanity/data_randomization/passed"] = float(data["spearman"] <= SPEARMAN_THRESHOLD)
        write_results(result, out / "methods" / name)
        results[name] = result
        notes.extend(n for n in result.notes if n.startswith(f"{name}:"))
    if EXPLAINER in methods:
        notes.append(
            "explainer: amortised, its maps are a function of the image alone at inference (the Explanandum is read "
            "only while training), so randomising the Explanandum's layers leaves them unchanged by construction; "
            "the check that applies is data randomisation with an Explainer retrained on the shuffled-label "
            "classifier" + (f" (trained into {SHUFFLED_EXPLAINER}/)" if sanity_data else " (--sanity-data)")
        )
    if sanity_data:
        notes.append(
            "data randomisation: maps for the Explanandum vs for one trained on shuffled labels (same recipe; the "
            "Explainer: one trained against it); **fail** when their Spearman exceeds the threshold"
        )

    tables = out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for name, result in results.items():
        if "class_specific" in result.tables:
            result.tables["class_specific"].to_csv(tables / f"class_specific_{name}.csv")
    layer_rows = []
    for name, s in sanity_layers.items():
        for layer, rho, sim in zip(s.layers, s.spearman, s.ssim):
            layer_rows.append({"method": name, "layer": layer, "spearman": rho, "ssim": sim})
    pd.DataFrame(layer_rows).to_csv(tables / "sanity_randomization.csv", index=False)

    frame = comparison_frame(results)
    frame.to_csv(out / "comparison.csv")
    md = comparison_markdown(cfg, results, frame, split, suite, max_images, notes, SPEARMAN_THRESHOLD)
    (out / "comparison.md").write_text(md)
    metrics = {k: v.metrics for k, v in results.items()}
    return {"markdown": out / "comparison.md", "csv": out / "comparison.csv", "results": metrics}


def comparison_frame(results: dict[str, Any]) -> pd.DataFrame:
    """One row per method, every numeric metric and text record as columns (union over methods)."""
    rows = {}
    for name, result in results.items():
        row: dict[str, Any] = dict(result.metrics)
        row.update(result.params)
        rows[name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "method"
    return frame


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** (-digits):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table (numbers to 3 decimals, NaN as ``-``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_markdown(cfg, results, frame, split, suite, caps, notes, threshold) -> str:
    m = {name: r.metrics for name, r in results.items()}
    first = next(iter(m.values()))
    total = max(v.get("attribution/images", 0.0) for v in m.values())
    out = [f"# Attribution comparison: {cfg.name}", ""]
    out.append(
        f"Explanandum `{cfg.explanandum.arch}` (seed {cfg.explanandum.seed}) on `{cfg.data.dataset}` "
        f"{cfg.data.image_size} px, {split} split, suite `{suite}`; every method scored by the same code."
    )
    if caps:
        capped = ", ".join(f"{k} on the first {v} images" for k, v in caps.items())
        out.append(
            f"**Capped image counts** (slow methods): {capped}; their rows (and their own 0.5 row) use those "
            "images, their sanity checks at most as many."
        )
    out += ["", "## Table 2: segmentation (Stalder et al. 2022, Tab. 2) and cost (Tab. 3)", ""]
    header = [
        "method",
        "images",
        "accuracy",
        "IoU",
        "saliency",
        "saliency (crop)",
        "MAE",
        "IoU - IoU(0.5)",
        "beats 0.5 on IoU",
        "s / image",
    ]
    rows = []
    for name, v in m.items():
        gain = v.get("segmentation/iou", math.nan) - v.get("sanity/half/iou", math.nan)
        rows.append(
            [
                name,
                int(v.get("attribution/images", 0)),
                *[v.get(f"segmentation/{k}") for k in SEGMENTATION],
                gain,
                "yes" if gain > 0 else "NO",
                v.get("attribution/seconds_per_image"),
            ]
        )
    reference = next((v for v in m.values() if v.get("attribution/images") == total), first)
    for row, label in SANITY_ROWS.items():
        rows.append(
            [
                f"*sanity {label}*",
                int(total),
                *[reference.get(f"sanity/{row}/{k}") for k in SEGMENTATION],
                None,
                "",
                None,
            ]
        )
    out += [markdown_table(header, rows), ""]
    out.append(
        "Accuracy, IoU: higher is better; saliency (both variants), MAE: lower. Sanity rows: constant masks "
        "0 / 0.5 / 1 and the ground truth, on all images."
    )

    out += ["", "## Sanity checks (Adebayo et al. 2018)", ""]
    out.append(
        f"Cascading randomisation of the Explanandum's parametrised layers from the top; Spearman / SSIM "
        f"between original and randomised maps of the present classes. **fail**: Spearman > {threshold} once "
        "every layer is random (the maps do not depend on the model)."
    )
    out.append("")
    header = ["method", "images", "Spearman (top layer)", "Spearman (all layers)", "SSIM (all layers)", "check"]
    has_data = any("sanity/data_randomization/spearman" in v for v in m.values())
    if has_data:
        header += ["data rand. Spearman", "data rand. SSIM", "data rand. check"]
    rows = []
    for name, r in results.items():
        keys = [k for k in r.metrics if k.startswith("sanity/randomization/") and k.endswith("/spearman")]
        top = r.metrics[keys[0]] if keys else None
        last_ssim = [r.metrics[k] for k in r.metrics if k.startswith("sanity/randomization/") and k.endswith("/ssim")]
        row = [
            name,
            int(r.metrics.get("sanity/randomization/images", 0)),
            top,
            r.metrics.get("sanity/randomization/final_spearman"),
            last_ssim[-1] if last_ssim else None,
            "pass" if r.metrics.get("sanity/randomization/passed") else "**fail**",
        ]
        if has_data:
            row += [r.metrics.get(f"sanity/data_randomization/{k}") for k in ("spearman", "ssim")]
            passed = r.metrics.get("sanity/data_randomization/passed")
            row.append("-" if passed is None else "pass" if passed else "**fail**")
        rows.append(row)
    out += [markdown_table(header, rows), "", "Per layer: `tables/sanity_randomization.csv`."]

    out += ["", "## Table 1: class-specific masks (Stalder et al. 2022, Tab. 1)", ""]
    header = ["method", "diagonal", "off-diagonal", "selectivity", "images"]
    rows = [
        [
            n,
            v.get("class_specific/diagonal"),
            v.get("class_specific/off_diagonal"),
            v.get("class_specific/selectivity"),
            v.get("class_specific/images"),
        ]
        for n, v in m.items()
    ]
    out += [
        markdown_table(header, rows),
        "",
        "Matrices: `tables/class_specific_<method>.csv` (x100 softmax of the "
        "target class with each class's thresholded mask).",
    ]

    shown = {f"segmentation/{k}" for k in SEGMENTATION} | {"attribution/seconds_per_image", "attribution/images"}
    shown |= {"class_specific/diagonal", "class_specific/off_diagonal", "class_specific/selectivity"}
    others = [
        c
        for c in frame.columns
        if c not in shown
        and not c.startswith("sanity/")
        and not c.endswith("_std")
        and pd.api.types.is_numeric_dtype(frame[c])
    ]
    out += ["", "## Every other metric", ""]
    rows = [[c, *[frame.at[n, c] if c in frame.columns else None for n in frame.index]] for c in others]
    out += [markdown_table(["metric", *frame.index], rows)]

    out += ["", "## Methods", ""]
    for name, r in results.items():
        desc = r.params.get("attribution/description", "")
        opts = r.params.get("attribution/options")
        out.append(f"- **{name}**: {desc}" + (f"; options `{opts}`" if opts and not re.match(r"^\s*$", opts) else ""))
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def comparison_summary(results: dict[str, dict[str, float]]) -> str:
    """One line per method for the terminal: IoU, the 0.5 row, seconds per image, sanity."""
    lines = []
    for name, v in results.items():
        lines.append(
            f"  {name:24s} IoU {_fmt(v.get('segmentation/iou'))} (0.5 row {_fmt(v.get('sanity/half/iou'))}), "
            f"{_fmt(v.get('attribution/seconds_per_image'), 4)} s/image on "
            f"{int(v.get('attribution/images', 0))} images, "
            f"sanity {'pass' if v.get('sanity/randomization/passed') else 'FAIL'}"
        )
    return "\n".join(lines)
