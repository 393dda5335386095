"""Shared building blocks of the model zoos, and the checks on builder options.

Blocks are plain ``nn.Sequential`` stacks so their parameter names stay short and stable
(weights files keep loading when a builder is refactored).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.errors import UserError


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias: BN follows) + BatchNorm + ReLU; 'same' padding for odd kernels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv + BN + ReLU blocks (the U-Net level block)."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


def resize(x: Tensor, size: tuple[int, ...] | torch.Size) -> Tensor:
    """Bilinear resize of (B, K, h, w) to (B, K, *size); a no-op when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ClassifierHead(nn.Sequential):
    """Global average pool + dropout + Linear: (B, K, h, w) -> multi-label logits (B, C)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float):
        super().__init__(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout), nn.Linear(in_channels, num_classes)
        )


def init_from_scratch(module: nn.Module) -> None:
    """He init for convs (fan_out, as torchvision's ResNets), unit BN, small Linear weights, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store 4-D weights channels-last (NHWC); returns ``module``.

    PyTorch's CPU convolutions then run NHWC even for NCHW inputs (the format follows the input
    or the weight), which is faster for the small models on CPU (timings: analysis/benchmarks/NOTES.md).
    Outputs keep NHWC strides; shapes are unchanged.
    """
    return module.to(memory_format=torch.channels_last)


# --- checks on builder arguments (options come from YAML, so they are user input) -------------


def check_options(
    builder: Callable[..., Any], options: dict[str, Any], reserved: Iterable[str], field: str, name: str
) -> None:
    """UserError naming the first option that ``builder`` does not take (or that is not an option)."""
    reserved = set(reserved)
    params = inspect.signature(builder).parameters
    known = [p for p in params if p not in reserved and params[p].kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key in reserved:
            raise UserError(f"{field}.{key}: {key!r} is set by its own config field, not as an option of {name}")
        if key not in known:
            choices = ", ".join(known) if known else "none"
            raise UserError(f"{field}: unknown option {key!r} for {name} (options: {choices})")


def int_option(field: str, value: Any, minimum: int = 1) -> int:
    """An integer option >= minimum, else a one-line UserError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{field}: expected an integer >= {minimum} (got {value!r})")
    return value


def fraction_option(field: str, value: Any) -> float:
    """A probability-like option in [0, 1), else a one-line UserError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise UserError(f"{field}: expected a number in [0, 1) (got {value!r})")
    return float(value)


def bool_option(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{field}: expected true or false (got {value!r})")
    return value
