"""What every training loop shares: device, precision, reproducibility, data loaders, optimisers."""

from __future__ import annotations

import contextlib
import math
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


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory instead of returning it to the OS after every step.

    By default glibc unmaps large freed blocks and trims the heap, so each training step faults
    the same activation memory in again (page faults and kernel time on every step);
    ``analysis/benchmarks/bench_malloc.py`` measures faults and CPU time per step with and without
    these settings. Blocks of 32 MiB and more are still mmapped (glibc's ceiling for the
    threshold). No effect (and False) off glibc.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    except (OSError, AttributeError):
        return False
    return bool(ok_trim and ok_mmap)


def make_loader(ds, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0, drop_last: bool = False):
    """A DataLoader of collated samples whose shuffling order depends only on ``seed`` (exact resume)."""
    from attrsearch.data import collate_samples

    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collate_samples,
        num_workers=num_workers,
        drop_last=drop_last,
    )


def lr_factor(step: int, *, name: str, warmup_steps: int, total_steps: int, final_ratio: float) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based): 1 for ``constant``; for
    ``cosine`` a linear warm-up from 0.01 over ``warmup_steps``, then a half cosine from 1 down to
    ``final_ratio`` at ``total_steps - 1`` (held there beyond)."""
    if name == "constant":
        return 1.0
    if step < warmup_steps:
        return 0.01 + 0.99 * step / warmup_steps
    span = max(total_steps - 1 - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_lr_scheduler(optimizer, schedule, steps_per_epoch: int, epochs: int):
    """``torch.optim.lr_scheduler.LambdaLR`` stepping ``lr_factor`` once per optimiser step; None for a
    constant rate (so the constant default trains exactly as before)."""
    if schedule.name == "constant":
        return None
    from functools import partial

    factor = partial(
        lr_factor,
        name=schedule.name,
        warmup_steps=round(schedule.warmup_epochs * steps_per_epoch),
        total_steps=steps_per_epoch * epochs,
        final_ratio=schedule.final_lr_ratio,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_optimizer(params, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam (the paper), AdamW or SGD with momentum 0.9 over the trainable ``params``."""
    params = [p for p in params if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=weight_decay)
