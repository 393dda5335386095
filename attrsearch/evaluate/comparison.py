"""The rendering of ``attrsearch compare``: its tables, ``comparison.csv`` and ``comparison.md``.

Stalder et al. 2022's tables ("What You See is What You Classify"): Table 2 (segmentation accuracy,
IoU, saliency in both variants, MAE, with the constant-mask 0 / 0.5 / 1 and ground-truth sanity
rows) and Table 3 (seconds per image), the sanity checks of Adebayo et al. 2018 with pass / fail,
Table 1 (class-specific masks), every other metric, the methods and the notes. Pure functions of
the scored results (``EvaluationResult`` per method, in order); ``compare`` writes them.
``comparison.md`` states how the maps were normalised (``evaluation.attribution_normalization``;
the rule: ``attrsearch.attribution.base``) and, per method, whether its maps were.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

SEGMENTATION = ("accuracy", "iou", "saliency", "saliency_crop", "mae")
SANITY_ROWS = {"zero": "0", "half": "0.5", "one": "1", "gt": "GT"}


def write_tables(out: Path, results: dict[str, Any], sanity_layers: dict[str, Any]) -> None:
    """``out/tables/class_specific_<method>.csv`` (Table 1 per method) and ``sanity_randomization.csv``
    (Spearman / SSIM per randomised layer and method)."""
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


def _normalisation_rule(mode: str) -> str:
    """How the maps were brought to [0, 1] before scoring (``evaluation.attribution_normalization``)."""
    if mode == "always":
        return "**Map normalisation** (`attribution_normalization: always`): every map, masks included, was min-max normalised per (image, class) before scoring."
    return (
        "**Map normalisation** (`attribution_normalization: auto`): masks in [0, 1] by construction (the Explainer's "
        "sigmoid masks, extremal perturbation, iGOS++) are scored as they are; score maps (Grad-CAM, Grad-CAM++, "
        "RISE, gradients, LRP, the captum / pytorch-grad-cam / zennit adapters, the centre baseline) are min-max "
        "normalised per (image, class), as pytorch-grad-cam and TorchRay present them, so no method is scored "
        "below its full scale. The Methods section says which maps were normalised."
    )


def _title(cfg, split: str, suite: str, caps: dict[str, int]) -> list[str]:
    out = [f"# Attribution comparison: {cfg.name}", ""]
    out.append(
        f"Explanandum `{cfg.explanandum.arch}` (seed {cfg.explanandum.seed}) on `{cfg.data.dataset}` "
        f"{cfg.data.image_size} px, {split} split, suite `{suite}`; every method scored by the same code."
    )
    out += ["", _normalisation_rule(cfg.evaluation.attribution_normalization)]
    if caps:
        capped = ", ".join(f"{k} on the first {v} images" for k, v in caps.items())
        out.append(
            f"**Capped image counts** (slow methods): {capped}; their rows (and their own 0.5 row) use those "
            "images, their sanity checks at most as many."
        )
    return out


def _segmentation(m: dict[str, dict[str, float]]) -> list[str]:
    """Table 2 and 3: one row per method, then the sanity rows of the method scored on every image."""
    first = next(iter(m.values()))
    total = max(v.get("attribution/images", 0.0) for v in m.values())
    out = ["", "## Table 2: segmentation (Stalder et al. 2022, Tab. 2) and cost (Tab. 3)", ""]
    header = ["method", "images", "accuracy", "IoU", "saliency", "saliency (crop)", "MAE"]
    header += ["IoU - IoU(0.5)", "beats 0.5 on IoU", "s / image"]
    rows = []
    for name, v in m.items():
        gain = v.get("segmentation/iou", math.nan) - v.get("sanity/half/iou", math.nan)
        segmentation = [v.get(f"segmentation/{k}") for k in SEGMENTATION]
        rows.append(
            [name, int(v.get("attribution/images", 0)), *segmentation, gain, "yes" if gain > 0 else "NO"]
            + [v.get("attribution/seconds_per_image")]
        )
    reference = next((v for v in m.values() if v.get("attribution/images") == total), first)
    for row, label in SANITY_ROWS.items():
        sanity = [reference.get(f"sanity/{row}/{k}") for k in SEGMENTATION]
        rows.append([f"*sanity {label}*", int(total), *sanity, None, "", None])
    out += [markdown_table(header, rows), ""]
    out.append(
        "Accuracy, IoU: higher is better; saliency (both variants), MAE: lower. Sanity rows: constant masks "
        "0 / 0.5 / 1 and the ground truth, on all images."
    )
    return out


def _sanity_row(name: str, metrics: dict[str, float], has_data: bool) -> list[Any]:
    keys = [k for k in metrics if k.startswith("sanity/randomization/") and k.endswith("/spearman")]
    top = metrics[keys[0]] if keys else None
    last_ssim = [metrics[k] for k in metrics if k.startswith("sanity/randomization/") and k.endswith("/ssim")]
    row = [
        name,
        int(metrics.get("sanity/randomization/images", 0)),
        top,
        metrics.get("sanity/randomization/final_spearman"),
        last_ssim[-1] if last_ssim else None,
        "pass" if metrics.get("sanity/randomization/passed") else "**fail**",
    ]
    if has_data:
        row += [metrics.get(f"sanity/data_randomization/{k}") for k in ("spearman", "ssim")]
        passed = metrics.get("sanity/data_randomization/passed")
        row.append("-" if passed is None else "pass" if passed else "**fail**")
    return row


def _sanity(m: dict[str, dict[str, float]], threshold: float) -> list[str]:
    """The sanity checks of Adebayo et al. 2018: model randomisation, optionally data randomisation."""
    out = ["", "## Sanity checks (Adebayo et al. 2018)", ""]
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
    rows = [_sanity_row(name, metrics, has_data) for name, metrics in m.items()]
    return out + [markdown_table(header, rows), "", "Per layer: `tables/sanity_randomization.csv`."]


def _class_specific(m: dict[str, dict[str, float]]) -> list[str]:
    out = ["", "## Table 1: class-specific masks (Stalder et al. 2022, Tab. 1)", ""]
    header = ["method", "diagonal", "off-diagonal", "selectivity", "images"]
    keys = ("diagonal", "off_diagonal", "selectivity", "images")
    rows = [[n, *[v.get(f"class_specific/{k}") for k in keys]] for n, v in m.items()]
    return out + [
        markdown_table(header, rows),
        "",
        "Matrices: `tables/class_specific_<method>.csv` (x100 softmax of the "
        "target class with each class's thresholded mask).",
    ]


def _other_metrics(frame: pd.DataFrame) -> list[str]:
    """Every numeric metric not shown above (no sanity rows, no ``_std``), one row each."""
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
    rows = [[c, *[frame.at[n, c] if c in frame.columns else None for n in frame.index]] for c in others]
    return ["", "## Every other metric", "", markdown_table(["metric", *frame.index], rows)]


def _methods(results: dict[str, Any], notes: list[str]) -> list[str]:
    out = ["", "## Methods", ""]
    for name, r in results.items():
        desc = r.params.get("attribution/description", "")
        opts = r.params.get("attribution/options")
        line = f"- **{name}**: {desc}" + (f"; options `{opts}`" if opts and not re.match(r"^\s*$", opts) else "")
        normalised = r.metrics.get("attribution/minmax_normalized")
        if normalised is not None:
            line += "; maps min-max normalised" if normalised else "; maps scored as they are"
        out.append(line)
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return out


def comparison_markdown(cfg, results, frame, split, suite, caps, notes, threshold) -> str:
    """``comparison.md``: the title, Tables 2 / 3, the sanity checks, Table 1, every other metric, the
    methods and the notes."""
    m = {name: r.metrics for name, r in results.items()}
    out = _title(cfg, split, suite, caps)
    out += _segmentation(m) + _sanity(m, threshold) + _class_specific(m) + _other_metrics(frame)
    out += _methods(results, notes)
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
