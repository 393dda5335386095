"""Mask galleries: the masks of the best, median and worst completed trial as inlined PNGs, and the best
trial's class-specific matrix.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np

from attrsearch.analysis import stats
from attrsearch.analysis.report.fragments import _caption, _esc, _num, _why
from attrsearch.analysis.report.page import Page
from attrsearch.analysis.results import Results, Trial, metric_direction, read_gallery, read_table

PANEL = 192  # pixels of each PNG panel (shown at 128 px, at 384 px when clicked)


def _png(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _resized(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)


def heatmap(image: np.ndarray, mask: np.ndarray, gt: np.ndarray | None) -> np.ndarray:
    """``image`` (H, W, 3) uint8 under the mask (H, W) in [0, 1] as a colour map (matplotlib's ``inferno``:
    dark = removed, yellow = kept), with the outline of the ground truth ``gt`` (H, W; 1 = object,
    255 = void) in cyan; (PANEL, PANEL, 3) uint8."""
    import cv2
    from matplotlib import colormaps

    m = cv2.resize(np.clip(mask.astype(np.float32), 0, 1), (PANEL, PANEL), interpolation=cv2.INTER_LINEAR)
    colour = colormaps["inferno"](m)[..., :3] * 255.0
    out = (0.45 * _resized(image).astype(np.float32) + 0.55 * colour).clip(0, 255).astype(np.uint8)
    if gt is not None:
        obj = cv2.resize((gt == 1).astype(np.uint8), (PANEL, PANEL), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(obj, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (0, 255, 255), 2)
    return out


def mask_score(mask: np.ndarray, gt: np.ndarray | None) -> str:
    """``IoU 0.62 (mask > 0.5 vs ground truth, void left out), kept 18%`` (kept only without a ground truth)."""
    kept = f"kept {float(mask.astype(np.float32).mean()):.0%}"
    if gt is None:
        return kept
    valid = gt != 255
    pred, true = (mask > 0.5) & valid, (gt == 1) & valid
    union = int((pred | true).sum())
    iou = int((pred & true).sum()) / union if union else float("nan")
    return f"IoU {_num(iou, 2)}, {kept}"


def _panel(src: str, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{src}" alt="{_esc(alt)}" width="128" height="128" title="click to enlarge" '
        f"onclick=\"this.classList.toggle('big')\"><figcaption>{caption}</figcaption></figure>"
    )


def _gallery_html(trial: Trial, gallery: dict[str, Any], images: int = 4, classes: int = 3) -> str:
    names = [str(c) for c in gallery.get("class_names", [])]
    imgs, masks, labels = gallery["images"], gallery["masks"], gallery.get("labels")
    gts = gallery.get("gt")
    figs = []
    for i in range(min(images, len(imgs))):
        present = [c for c in range(masks.shape[1]) if labels is not None and labels[i][c] > 0.5]
        order = present or list(np.argsort(-masks[i].reshape(masks.shape[1], -1).mean(1))[:1])
        classes_text = _esc(", ".join(names[c] for c in present) or "no labelled class")
        figs.append(_panel(_png(_resized(imgs[i])), f"image {i}", f"image {i}<br>{classes_text}"))
        for c in order[:classes]:
            name = names[c] if c < len(names) else f"class {c}"
            gt = gts[i][c] if gts is not None and gts.ndim == 4 else None
            src = _png(heatmap(imgs[i], masks[i][c], gt))
            figs.append(_panel(src, f"mask {name}", f"<b>{_esc(name)}</b><br>{_esc(mask_score(masks[i][c], gt))}"))
    return '<div class="gallery">' + "".join(figs) + "</div>"


def section_galleries(r: Results, page: Page) -> str:
    """Masks of the best, median and worst completed trial, and the best trial's class-specific matrix."""
    import plotly.graph_objects as go

    o = r.sweep.objectives[0]
    ranked = stats.ranked(r.by_status("completed"), o, metric_direction(o) or "max")
    if not ranked:
        return _why("No completed trial yet.")
    picks = {"best": ranked[0], "median": ranked[len(ranked) // 2], "worst": ranked[-1]}
    out = _caption(
        "What do the masks look like? The same validation images for the best, median and worst completed trial by "
        f"{_esc(o)}: "
        "each image, then the Explainer's mask for each class present in it as a colour map over the image "
        "(yellow = kept, dark purple = removed) with the ground truth's outline in cyan; under each: the class, the "
        "IoU of the mask above 0.5 with the ground truth and the share of the image kept. Click a panel to enlarge "
        "it."
    )
    shown = set()
    for label, t in picks.items():
        if t.trial_id in shown:
            continue
        shown.add(t.trial_id)
        gallery = read_gallery(t)
        out += f"<h3>{label}: trial {_esc(t.trial_id)} ({_esc(o)} = {_num(t.metrics[o])})</h3>"
        out += (
            _gallery_html(t, gallery)
            if gallery
            else _why(
                "This trial's folder has no run/gallery.npz (galleries are written only when W&B logging is not "
                "disabled)."
            )
        )
    table = read_table(ranked[0], "class_specific")
    if table and len(table) > 1:
        header, body = table[0], table[1:]
        cols = [c for c in header[1:] if c != "images"]
        idx = [header.index(c) for c in cols]
        z = [[float(row[k]) if row[k] not in ("", None) else math.nan for k in idx] for row in body]
        fig = go.Figure(
            go.Heatmap(
                z=z,
                x=[c if c != "none" else "none (unmasked)" for c in cols],
                y=[row[0] for row in body],
                colorscale="Viridis",
                text=[[_num(v, 3) for v in row] for row in z],
                texttemplate="%{text}",
                colorbar={"title": "softmax x100"},
            )
        )
        fig.update_layout(
            title=f"Class-specific matrix of trial {ranked[0].trial_id}",
            xaxis_title="mask of class",
            yaxis_title="target class",
            yaxis_autorange="reversed",
            height=300 + 28 * len(body),
        )
        out += _caption(
            "Does each class's mask keep only that class's evidence? Row: the class whose score is read; column: the "
            "class whose "
            "mask was applied (last column: no mask). A strong diagonal and weak off-diagonal mean class-specific "
            "masks."
        ) + page.figure(fig)
    else:
        out += _why("The best trial has no run/tables/class_specific.csv.")
    return out
