"""Device, precision and reproducibility settings shared by every training loop."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU. Asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from attrsearch.errors import UserError

        raise UserError("train.device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, amp: str):
    """Mixed precision context: bf16 autocast on CUDA for 'auto'/'bf16', fp16 for 'fp16', else none."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device_type="cuda", dtype=dtype)


def use_channels_last(device: torch.device, setting: str) -> bool:
    """channels_last memory format: on for CUDA under 'auto' (faster convolutions with tensor cores)."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def configure_threads(num_threads: int | None) -> None:
    if num_threads:
        torch.set_num_threads(num_threads)
