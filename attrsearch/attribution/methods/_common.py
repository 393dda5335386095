"""Pieces shared by the attribution methods: input checks, the gradient context, targets, layers, blur.

Every method takes ``(model, images, targets=None, **options)``:

- ``model``: a frozen multi-label classifier in eval mode, images -> logits (B, C); its
  parameters may have ``requires_grad=False`` (methods differentiate w.r.t. inputs or
  activations, never parameters);
- ``images``: (B, 3, H, W) float, normalised (zero = the dataset's mean colour);
- ``targets``: None (every class of every image) or (B, C) bool / multi-hot: only the selected
  (image, class) pairs are computed, the others are zero maps.

and returns ``maps`` (B, C, H, W) float32 on the model's device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attrsearch.errors import UserError


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a parameter-less model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def check_images(images: Any) -> Tensor:
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise UserError(f"images: expected a (batch, 3, height, width) tensor, got {shape}")
    return images


def check_targets(targets: Any, batch: int, num_classes: int, device: torch.device) -> Tensor:
    """(B, C) bool selection of (image, class) pairs; None selects every pair."""
    if targets is None:
        return torch.ones(batch, num_classes, dtype=torch.bool, device=device)
    if not isinstance(targets, Tensor) or tuple(targets.shape) != (batch, num_classes):
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise UserError(f"targets: expected a ({batch}, {num_classes}) bool/multi-hot tensor, got {shape}")
    return targets.to(device=device).bool()


def attribution_method(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Decorator: checks ``images``, moves them to the model's device and runs ``fn`` with autograd on.

    Works inside ``torch.inference_mode()`` / ``torch.no_grad()`` (the evaluation loop): the
    images are copied out of inference mode so they can enter an autograd graph.
    """

    @functools.wraps(fn)
    def wrapper(model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: Any) -> Tensor:
        check_images(images)
        with torch.inference_mode(False), torch.enable_grad():
            x = images.to(model_device(model))
            if x.is_inference():
                x = x.clone()
            x = x.detach().float()
            return fn(model, x, targets, **options)

    return wrapper


@torch.no_grad()
def num_classes_of(model: nn.Module, images: Tensor) -> tuple[int, Tensor]:
    """(C, logits (B, C)) from one forward pass without a graph."""
    logits = model(images)
    if logits.dim() != 2:
        raise UserError(f"model: expected logits of shape (batch, classes), got {tuple(logits.shape)}")
    return logits.shape[1], logits


def scatter_rows(values: Tensor, index: Tensor, batch: int, num_classes: int) -> Tensor:
    """Rows (N, H, W) for the (image, class) pairs ``index`` (N, 2) -> maps (B, C, H, W), zeros elsewhere."""
    out = values.new_zeros(batch, num_classes, *values.shape[1:])
    out[index[:, 0], index[:, 1]] = values
    return out


def gaussian_kernel1d(sigma: float, device: torch.device, radius: int | None = None) -> Tensor:
    """Normalised 1-D Gaussian (2r+1,), r = ceil(3 sigma) unless given; a delta for sigma <= 0."""
    if sigma <= 0:
        return torch.ones(1, device=device)
    r = math.ceil(3 * sigma) if radius is None else radius
    t = torch.arange(-r, r + 1, device=device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, K, H, W) with reflect padding (radius capped below the size)."""
    if sigma <= 0:
        return x
    h, w = x.shape[-2:]
    r = min(math.ceil(3 * sigma), h - 1, w - 1)
    if r < 1:
        return x
    k = gaussian_kernel1d(sigma, x.device, r).to(x.dtype)
    n, c = x.shape[:2]
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear (align_corners=False) resize of (N, K, h, w) to (N, K, *size)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def validate_options(model_cls: type, options: dict[str, Any], method: str) -> Any:
    """``model_cls(**options)``; a one-line UserError ``--option NAME: ...`` naming the method on bad input."""
    from pydantic import ValidationError

    try:
        return model_cls.model_validate(options)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "options"
        if first.get("type") == "extra_forbidden":
            known = ", ".join(model_cls.model_fields) or "none"
            raise UserError(f"--option {loc}: unknown option for method {method} (options: {known})") from None
        msg = first.get("msg", "invalid value").removeprefix("Value error, ")
        raise UserError(f"--option {loc}: {msg} for method {method} (got {first.get('input')!r})") from None
