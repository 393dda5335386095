"""The attribution interface: anything that maps images to one map per class can be scored.

An attribution is a callable ``images (B, 3, H, W) normalised -> maps (B, C, H, W)``. It declares
what its maps are in the attribute ``output_kind`` (``output_kind_of`` reads it):

- ``"mask"``: masks in [0, 1] by construction (an Explainer's sigmoid(E(x)), extremal
  perturbation's and iGOS++'s optimised masks, test-time refined masks): scored as they are;
- ``"score"``: scores on the method's own scale (Grad-CAM, Grad-CAM++, RISE, gradients, LRP, the
  captum / pytorch-grad-cam / zennit adapters, per-target methods): min-max normalised per
  (image, class), as pytorch-grad-cam and TorchRay present them and as Stalder et al. 2022
  ("What You See is What You Classify", section 4) compare the baselines with their masks.
  A score map whose peak stays below 1 (Grad-CAM reaches about 0.5 on the built-in data) is
  thereby scored at its full scale, not handicapped by its units.

This is ``evaluation.attribution_normalization: auto`` (the default). ``always`` min-max normalises
every map whatever its kind. A callable without ``output_kind`` is treated by range: a map that
leaves [0, 1] is min-max normalised, one inside is kept. The evaluation reports
``attribution/minmax_normalized`` = 1 when any map was normalised and prints a note.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from attrsearch.errors import UserError

OutputKind = Literal["mask", "score"]
OUTPUT_KINDS: tuple[str, ...] = ("mask", "score")


@runtime_checkable
class Attribution(Protocol):
    """images: (B, 3, H, W) normalised -> maps: (B, C, H, W), one map per class, any real scale
    (the metrics bring them to [0, 1] with ``normalize_maps``); optionally ``output_kind``."""

    def __call__(self, images: Tensor) -> Tensor: ...


def output_kind_of(attribution: Any) -> OutputKind | None:
    """The ``output_kind`` an attribution declares (``"mask"`` or ``"score"``), None when it declares none."""
    kind = getattr(attribution, "output_kind", None)
    if kind is not None and kind not in OUTPUT_KINDS:
        raise ValueError(f"attribution: output_kind must be one of {OUTPUT_KINDS}, got {kind!r}")
    return kind


def normalize_maps(
    maps: Tensor, mode: Literal["auto", "always"] = "auto", kind: OutputKind | None = None
) -> tuple[Tensor, Tensor]:
    """Bring attribution maps to [0, 1] by the rule of the module docs.

    maps: (B, C, H, W) any real values; kind: what the attribution declares (None: undeclared).
    ``auto``: ``score`` maps are min-max normalised per (image, class); ``mask`` maps and undeclared
    maps are kept where they lie in [0, 1] and min-max normalised where they leave it (so a mask is
    untouched and the result of an image never depends on the rest of its batch); ``always``: every
    map is min-max normalised. A constant map normalises to zeros.
    Returns (maps in [0, 1] float32, normalised: (B, C) bool).
    """
    maps = maps.float()
    if not torch.isfinite(maps).all():
        raise UserError("attribution: the maps contain NaN or infinite values")
    lo = maps.amin(dim=(2, 3), keepdim=True)
    hi = maps.amax(dim=(2, 3), keepdim=True)
    if mode == "always" or kind == "score":
        flag = torch.ones_like(lo, dtype=torch.bool)
    else:
        flag = (lo < 0.0) | (hi > 1.0)
    scaled = (maps - lo) / (hi - lo).clamp_min(1e-12)
    return torch.where(flag, scaled, maps), flag[:, :, 0, 0]


def check_maps(maps: Tensor, images: Tensor, num_classes: int) -> None:
    """A one-line ``UserError`` unless maps is (B, num_classes, H, W) for images (B, 3, H, W)."""
    b, _, h, w = images.shape
    if maps.dim() != 4 or tuple(maps.shape) != (b, num_classes, h, w):
        raise UserError(
            f"attribution: expected maps of shape {(b, num_classes, h, w)} (batch, classes, height, width), "
            f"got {tuple(maps.shape)}"
        )
