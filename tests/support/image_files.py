"""Writers of the odd image files the data tests need: truncated, a forged decompression-bomb header,
16-bit and other non-8-bit modes."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def truncate(path: Path, share: float = 0.6) -> Path:
    """Cut ``path`` to ``share`` of its bytes (a download that stopped)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def forged_png(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose IHDR claims ``width`` x ``height`` (CRC fixed, so only the size is a lie)."""
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def gradient16(height: int = 30, width: int = 40) -> np.ndarray:
    """(H, W) uint16 with a horizontal ramp over the whole 0..65535 range."""
    return np.tile(np.linspace(0, 65535, width).round().astype(np.uint16), (height, 1))


def save_16bit_png(path: Path, values: np.ndarray) -> Path:
    """Greyscale 16-bit PNG (PIL opens it as mode ``I;16``)."""
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def noise_rgb(height: int = 30, width: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
