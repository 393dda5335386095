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


def _png(array: np.ndarray, scale: int) -> str:
    from PIL import Image

    img = Image.fromarray(array)
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image darkened where the mask is low, tinted red where it is high."""
    m = np.clip(mask.astype(np.float32), 0, 1)[..., None]
    red = np.array([255, 40, 40], dtype=np.float32)
    out = image.astype(np.float32) * (0.35 + 0.65 * m) * (1 - 0.45 * m) + red * 0.45 * m
    return np.clip(out, 0, 255).astype(np.uint8)


def _gallery_html(trial: Trial, gallery: dict[str, Any], images: int = 4, classes: int = 3) -> str:
    names = [str(c) for c in gallery.get("class_names", [])]
    imgs, masks, labels = gallery["images"], gallery["masks"], gallery.get("labels")
    size = imgs.shape[1]
    scale = max(1, 128 // max(size, 1))
    figs = []
    for i in range(min(images, len(imgs))):
        present = [c for c in range(masks.shape[1]) if labels is not None and labels[i][c] > 0.5]
        order = present or list(np.argsort(-masks[i].reshape(masks.shape[1], -1).mean(1))[:1])
        figs.append(
            f'<figure><img src="{_png(imgs[i], scale)}" alt="image {i}"><figcaption>image {i}<br>'
            f"{_esc(', '.join(names[c] for c in present) or 'no labelled class')}</figcaption></figure>"
        )
        for c in order[:classes]:
            name = names[c] if c < len(names) else f"class {c}"
            figs.append(
                f'<figure><img src="{_png(_overlay(imgs[i], masks[i][c]), scale)}" alt="mask {name}">'
                f"<figcaption>mask: {_esc(name)}<br>mean {float(masks[i][c].mean()):.2f}</figcaption></figure>"
            )
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
        "each image, then the Explainer's mask for each class present in it (bright red = kept, dark = removed), "
        "upscaled with nearest-neighbour pixels."
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
