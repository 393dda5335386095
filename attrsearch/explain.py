"""Apply a trained Explainer to image files: one forward pass gives every class mask.

Images of any size are resized to the Explainer's training size (as in training, aspect not kept),
explained, and the masks are resized back to the original size. Outputs per image: an overlay PNG
for each of the top-k classes (ranked by the Explainer's own mask score, no classifier needed) and
a ``.npz`` with all class masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from attrsearch.attribution import explainer_attribution
from attrsearch.data.base import normalize
from attrsearch.data.images import read_rgb
from attrsearch.errors import UserError
from attrsearch.train.checkpoint import explainer_from_state, load_checkpoint


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


@torch.no_grad()
def explain_images(checkpoint: Path, images: list[Path], out: Path, top_k: int = 3, device: str = "cpu") -> list[Path]:
    """Write ``<stem>.npz`` (masks (C, H, W) float16, scores, class names) and top-k overlays per image."""
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    pictures = [(path, read_rgb(path)[0]) for path in images]  # every file is checked before any work
    state = load_checkpoint(checkpoint)
    model = explainer_from_state(state, device)
    size = state["image_size"]
    names = list(state["class_names"])
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path, rgb in pictures:
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = normalize(x, state["mean"], state["std"]).to(device)
        masks = explainer_attribution(model)(x)
        scores = class_scores(masks)[0].cpu()
        full = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)[0].cpu().numpy()
        stem = out / path.stem
        np.savez_compressed(
            stem.with_suffix(".npz"), masks=full.astype(np.float16), scores=scores.numpy(), class_names=np.array(names)
        )
        written.append(stem.with_suffix(".npz"))
        for rank, c in enumerate(scores.argsort(descending=True)[: min(top_k, len(names))].tolist(), start=1):
            target = out / f"{path.stem}_top{rank}_{names[c]}.png"
            Image.fromarray(overlay(rgb, full[c])).save(target)
            written.append(target)
    return written
