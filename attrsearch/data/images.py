"""Reading and resizing images and label maps for the file-based datasets (VOC, COCO) and ``explain``.

Images are resized to ``size x size`` without keeping the aspect ratio (Stalder et al., 2022,
resize to 224 x 224), bilinear with antialiasing (PIL); label maps and masks with nearest neighbour so that
class indices and void (255) survive.

Every file is opened through ``open_image``: a missing file, a file PIL cannot read, or a header that
claims more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb: PIL warns above it and
raises above twice it; both are refused here, before any pixel is decoded) raises ``UserError`` naming
the file. ``rgb_array`` turns every mode into 8-bit RGB by its meaning, not by clipping: 16-bit
greyscale (``I;16*``, and ``I`` holding 0..65535) is scaled 0..65535 -> 0..255 (PIL's own
``convert("RGB")`` clips it, which turns a typical 16-bit photo white), transparency (``RGBA``,
``LA``, ``PA``, ``P``/``L``/``RGB`` with a ``transparency`` colour) is composited over white, CMYK,
YCbCr, LAB, HSV and 1-bit go through PIL's conversions. Floating-point images (``F``) have no agreed
range and are refused with one line.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from attrsearch.data.base import DatasetInfo, normalize
from attrsearch.errors import UserError

# PIL only warns between MAX_IMAGE_PIXELS and twice that; ``open_image`` refuses those itself, so the
# warning (a second stderr line, or a traceback under ``-W error``) is silenced.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

WHITE = (255, 255, 255)
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Modes with an alpha channel (premultiplied ``La``/``RGBa`` included).
ALPHA = ("RGBA", "LA", "PA", "La", "RGBa")
# Modes PIL converts to RGB by their meaning.
CONVERTIBLE = ("RGB", "L", "P", "1", "CMYK", "YCbCr", "LAB", "HSV")
SUPPORTED_MODES = CONVERTIBLE + ALPHA + SIXTEEN_BIT


def open_image(path: Path | str) -> Image.Image:
    """Open ``path`` lazily (the header only); ``UserError`` naming the file if it is missing, not an
    image PIL reads, or claims more than ``Image.MAX_IMAGE_PIXELS`` pixels."""
    path = Path(path)
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not an image file") from None
    except Image.DecompressionBombError as err:
        raise UserError(f"{path}: refused, a possible decompression bomb: {err}") from None
    except Exception as err:  # noqa: BLE001 - PIL raises many kinds (OSError, SyntaxError, struct.error, ...)
        raise UserError(f"{path}: unreadable image ({_why(err)})") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.size[0] * img.size[1] > limit:
        img.close()
        w, h = img.size
        raise UserError(
            f"{path}: refused, a possible decompression bomb: its header claims {w} x {h} pixels,"
            f" above PIL's limit of {limit} (PIL.Image.MAX_IMAGE_PIXELS)"
        )
    return img


def decode(img: Image.Image, path: Path | str) -> Image.Image:
    """Decode every pixel of an opened image (``img.load()``); a truncated or corrupt file raises
    ``UserError`` naming it (PIL refuses truncated data unless ``ImageFile.LOAD_TRUNCATED_IMAGES``)."""
    try:
        img.load()
    except Exception as err:  # noqa: BLE001
        raise UserError(f"{path}: unreadable image ({_why(err)})") from None
    return img


def _why(err: Exception) -> str:
    """``truncated`` for PIL's truncation errors (header or pixel data cut short), else the error's type."""
    return "truncated" if "truncated" in str(err).lower() else type(err).__name__


def _open(path: Path) -> Image.Image:
    return decode(open_image(path), path)


def check_rgb_mode(img: Image.Image, path: Path | str) -> None:
    """``UserError`` naming the file if ``rgb_array`` has no meaningful conversion of ``img.mode``."""
    if img.mode == "F":
        raise UserError(
            f"{path}: a 32-bit floating-point image (mode F) has no standard range; save it as 8- or 16-bit"
        )
    if img.mode not in SUPPORTED_MODES:
        raise UserError(f"{path}: unsupported image mode {img.mode}; save it as 8- or 16-bit RGB or greyscale")


def rgb_array(img: Image.Image, path: Path | str) -> np.ndarray:
    """An opened image as (H, W, 3) uint8 RGB (see the module docstring for each mode)."""
    check_rgb_mode(img, path)
    decode(img, path)
    if img.mode in SIXTEEN_BIT:
        arr = np.asarray(img).astype(np.int64)
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise UserError(
                f"{path}: mode {img.mode} values {lo}..{hi} are outside 16 bits (0..65535); save it as 8- or 16-bit"
            )
        grey = ((arr * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ALPHA or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return np.array(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    return np.array(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def read_rgb(path: Path, size: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """An image file as (size, size, 3) uint8 RGB (its own size when ``size`` is None), and its
    original (width, height). Every mode is converted by ``rgb_array``."""
    path = Path(path)
    img = open_image(path)
    original = img.size
    rgb = rgb_array(img, path)
    if size is not None and original != (size, size):
        rgb = np.array(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return rgb, original


def check_label_image(img: Image.Image, path: Path | str, image_size: tuple[int, int] | None = None) -> None:
    """A label map must be a palette or greyscale image of class indices (an RGB rendering of the colours
    is not), of its image's (width, height) when given: a label map of another size would only line up
    with its image after a silent, misaligning resize, so it is refused."""
    if img.mode not in ("P", "L"):
        raise UserError(f"{path}: expected a palette or greyscale PNG of class indices, got mode {img.mode}")
    if image_size is not None and tuple(img.size) != tuple(image_size):
        w, h = img.size
        raise UserError(
            f"{path}: segmentation is {w} x {h} but its image is {image_size[0]} x {image_size[1]}"
            " (masks are never resized to fit)"
        )


def read_label_png(path: Path, size: int, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """A palette (or greyscale) PNG of class indices as (size, size) uint8, nearest-neighbour resized.

    The indices are the palette indices (VOC: 0 background, 1..C classes, 255 void), never RGB;
    ``image_size`` (the image's original width, height) is checked by ``check_label_image``.
    """
    path = Path(path)
    img = open_image(path)
    check_label_image(img, path, image_size)
    arr = np.array(decode(img, path), dtype=np.uint8)
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


def box_class_masks(boxes: torch.Tensor, box_labels: np.ndarray, num_classes: int, size: int) -> np.ndarray:
    """Per-class masks of boxes: 1 on the pixels whose centre lies inside a box of the class, 0 elsewhere.

    boxes: (N, 4) ``x0, y0, x1, y1`` in pixels of the resized image (x1/y1 exclusive); box_labels: (N,)
    class indices. Returns (num_classes, size, size) uint8 in {0, 1}. The same pixel-centre rule as
    ``attrsearch.metrics.common.box_masks`` (tests/data/test_folder_coco.py checks they agree).
    """
    centres = np.arange(size, dtype=np.float32) + 0.5
    masks = np.zeros((num_classes, size, size), np.uint8)
    for (x0, y0, x1, y1), k in zip(np.asarray(boxes, np.float32).reshape(-1, 4), box_labels):
        rows = (centres >= y0) & (centres < y1)
        cols = (centres >= x0) & (centres < x1)
        masks[int(k)][np.ix_(rows, cols)] = 1
    return masks


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
