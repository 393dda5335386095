"""Reading and resizing images and label maps for the file-based datasets (VOC, COCO).

Images are resized to ``size x size`` without keeping the aspect ratio (Stalder et al., 2022,
resize to 224 x 224), bilinear with antialiasing (PIL); label maps and masks with nearest neighbour so that
class indices and void (255) survive. Unreadable files raise ``UserError`` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from attrsearch.data.base import DatasetInfo, normalize
from attrsearch.errors import UserError


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise UserError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path}: unreadable image ({type(err).__name__})") from None


def read_rgb(path: Path, size: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """An image file as (size, size, 3) uint8 RGB (its own size when ``size`` is None), and its
    original (width, height)."""
    img = _open(Path(path))
    original = img.size
    img = img.convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.array(img, dtype=np.uint8), original


def read_label_png(path: Path, size: int) -> np.ndarray:
    """A palette (or greyscale) PNG of class indices as (size, size) uint8, nearest-neighbour resized.

    The indices are the palette indices (VOC: 0 background, 1..C classes, 255 void), never RGB.
    """
    img = _open(Path(path))
    if img.mode not in ("P", "L"):
        raise UserError(f"{path}: expected a palette or greyscale PNG of class indices, got mode {img.mode}")
    arr = np.asarray(img, dtype=np.uint8)
    return resize_nearest(arr, size)


def resize_nearest(arr: np.ndarray, size: int) -> np.ndarray:
    """(h, w) uint8 -> (size, size) with nearest neighbour (label maps, binary masks)."""
    if arr.shape[:2] == (size, size):
        return np.ascontiguousarray(arr)
    return cv2.resize(arr, (size, size), interpolation=cv2.INTER_NEAREST_EXACT)  # pixel-centre aligned, like PIL


def to_image_tensor(rgb: np.ndarray, info: DatasetInfo) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 normalised with ``info.mean`` / ``info.std``."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
    return normalize(x[None], info.mean, info.std)[0]


def scale_boxes(boxes: np.ndarray, original: tuple[int, int], size: int) -> torch.Tensor:
    """(N, 4) xyxy boxes in original pixels (width, height = ``original``) -> resized image, float32."""
    w, h = original
    scale = np.array([size / w, size / h, size / w, size / h], dtype=np.float32)
    return torch.from_numpy(np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale)


def file_sample(
    index: int,
    rgb: np.ndarray,
    original: tuple[int, int],
    labels: np.ndarray,
    masks: np.ndarray,
    has_masks: bool,
    boxes: np.ndarray,
    box_labels: np.ndarray,
    info: DatasetInfo,
) -> dict:
    """The sample dict (``attrsearch.data.base``) of a file-based dataset image (VOC, COCO): no context cue.

    rgb: (S, S, 3) uint8 already resized; original: its (width, height) before resizing, to scale
    ``boxes`` (N, 4) xyxy; masks: (C, S, S) uint8 with 255 = void.
    """
    size = info.image_size
    return {
        "image": to_image_tensor(rgb, info),
        "labels": torch.from_numpy(labels.copy()),
        "masks": torch.from_numpy(masks),
        "has_masks": has_masks,
        "boxes": scale_boxes(boxes, original, size),
        "box_labels": torch.from_numpy(box_labels.copy()),
        "context": torch.zeros((size, size), dtype=torch.uint8),
        "index": index,
    }
