"""Apply a trained Explainer to image files: one forward pass gives every class mask.

Images of any size are resized to the Explainer's training size (as in training, aspect not kept),
explained, and the masks are resized back to the original size. Outputs per image: an overlay PNG
for each of the top-k classes (ranked by the Explainer's own mask score, no classifier needed) and
a ``.npz`` with all class masks.

``refine`` T > 0 (a training checkpoint only: it needs the Explanandum, built from the checkpoint's
config and loaded from the cache) follows the Explainer by T Adam steps of the ranking objective
(Schinagl et al. 2025) on each image's maps at the training size (``attrsearch.objectives.rank.refine_maps``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from attrsearch.attribution import explainer_attribution
from attrsearch.data.base import normalize
from attrsearch.data.images import read_rgb
from attrsearch.errors import UserError


def class_scores(masks: torch.Tensor) -> torch.Tensor:
    """Presence score per class: mean of the top 1% mask values. masks: (B, C, H, W) -> (B, C).

    Absent classes' masks are pushed to zero by the non-target area term (Stalder et al. 2022, eq. 1), so a class
    whose strongest pixels are on is one the Explainer attributes.
    """
    flat = masks.flatten(2)
    k = max(1, flat.shape[-1] // 100)
    return flat.topk(k, dim=-1).values.mean(-1)


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] mask, coloured with OpenCV's JET map, over an RGB uint8 image."""
    import cv2

    heat = cv2.applyColorMap((mask.clip(0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (rgb.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).clip(0, 255).astype(np.uint8)


def label(image: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` (class name and mask score) in a dark band at the top of an RGB uint8 image."""
    import cv2

    out = image.copy()
    scale = max(0.35, min(1.0, image.shape[1] / 400))
    band = int(22 * scale) + 4
    out[:band] = (out[:band].astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, band - 6), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def output_stems(images: list[Path]) -> list[Path]:
    """Where each image's outputs go below ``--out``, without suffix: its path relative to the folder all
    inputs share, so ``a/x.png`` and ``b/x.jpg`` write ``a/x.*`` and ``b/x.*`` (inputs of one folder keep
    their bare stems). Two inputs that would still share outputs (one file given twice, or ``x.png`` next
    to ``x.jpg``) are refused up front with one line naming both: outputs never overwrite each other."""
    resolved = [Path(os.path.abspath(p)) for p in images]
    common = Path(os.path.commonpath([p.parent for p in resolved])) if resolved else Path()
    stems = [p.relative_to(common).with_suffix("") for p in resolved]
    seen: dict[Path, Path] = {}
    for image, stem in zip(images, stems):
        if stem in seen:
            raise UserError(
                f"{image}: its outputs ({stem}.npz, overlays) would overwrite those of {seen[stem]}; "
                "give each image once, with distinct names"
            )
        seen[stem] = image
    return stems


def refining(attribute, checkpoint: Path, device: str, steps: int, lr: float | None):
    """``attribute`` followed by ``steps`` of test-time refinement against the checkpoint's Explanandum
    (``get_explanandum`` of its config, as ``attrsearch evaluate``: the cached one)."""
    from attrsearch.data.scan import scan_dataset
    from attrsearch.evaluate.refine import refined_attribution
    from attrsearch.train.checkpoint import checkpoint_config, load_checkpoint
    from attrsearch.train.explanandum import get_explanandum

    cfg = checkpoint_config(load_checkpoint(checkpoint))
    scan_dataset(cfg.data, cfg.cache_dir)  # the Explanandum is trained here if it is not cached
    return refined_attribution(attribute, get_explanandum(cfg, device), cfg, steps, lr)


@torch.no_grad()
def explain_images(
    checkpoint: Path | None,
    images: list[Path],
    out: Path,
    top_k: int = 3,
    device: str = "cpu",
    model_dir: Path | None = None,
    refine: int = 0,
    refine_lr: float | None = None,
) -> list[Path]:
    """Write ``<stem>.npz`` (masks (C, H, W) float16, scores, class names, refine_steps) and top-k overlays
    per image, each labelled with its class name and mask score (``<stem>``: ``output_stems``). The Explainer comes from a training
    ``checkpoint`` or from an exported ``model_dir`` (``attrsearch export``; no training config or cache
    needed). ``refine``: T steps of test-time refinement of the masks (needs ``checkpoint``)."""
    from attrsearch.evaluate.refine import check_refine
    from attrsearch.export import load_checkpoint_explainer, load_exported

    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    if (checkpoint is None) == (model_dir is None):
        raise UserError("explain: give --checkpoint CKPT or --model DIR (an exported Explainer), not both")
    if refine and model_dir is not None:
        raise UserError("--refine needs --checkpoint: an exported Explainer (--model) has no classifier to refine on")
    check_refine(refine, refine_lr)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} is a file, not a folder")
    stems = output_stems(images)  # before any work: no two inputs share an output file
    pictures = [(path, read_rgb(path)[0]) for path in images]  # every file is checked before any work
    bundle = (
        load_exported(model_dir, device) if model_dir is not None else load_checkpoint_explainer(checkpoint, device)
    )
    size, names = bundle.image_size, bundle.class_names
    attribute = explainer_attribution(bundle.module)
    if refine:
        attribute = refining(attribute, Path(checkpoint), device, refine, refine_lr)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for (_, rgb), rel in zip(pictures, stems):
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        masks = attribute(normalize(x, bundle.mean, bundle.std).to(device))
        scores = class_scores(masks)[0].cpu()
        full = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)[0].cpu().numpy()
        stem = out / rel
        stem.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            stem.with_suffix(".npz"),
            masks=full.astype(np.float16),
            scores=scores.numpy(),
            class_names=np.array(names),
            refine_steps=np.int64(refine),
        )
        written.append(stem.with_suffix(".npz"))
        for rank, c in enumerate(scores.argsort(descending=True)[: min(top_k, len(names))].tolist(), start=1):
            target = stem.parent / f"{stem.name}_top{rank}_{names[c]}.png"
            Image.fromarray(label(overlay(rgb, full[c]), f"{names[c]}  {scores[c]:.2f}")).save(target)
            written.append(target)
    return written
