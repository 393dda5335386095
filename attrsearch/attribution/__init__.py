"""Every producer of per-class maps ``images (B, 3, H, W) normalised -> maps (B, C, H, W)``.

- ``base``: the ``Attribution`` protocol, the declared ``output_kind`` (``"mask"`` kept as is, ``"score"``
  min-max normalised per image and class), ``normalize_maps`` (to [0, 1]) and ``check_maps`` (shape check).
- ``explainer``: ``explainer_attribution``, a trained Explainer's masks sigmoid(E(x)), and ``masks_from_logits``
  (the same sigmoid with autograd, for the objectives): the only sigmoid(E(x)) in the code base.
- ``per_class``: ``per_class_attribution``, a per-target method (TorchRay style) over all C classes.
- ``methods``: baseline methods ``method(model, images, targets=None, **options) -> maps`` by name (Grad-CAM,
  Grad-CAM++, RISE, extremal perturbation, iGOS++, LRP, the centre baseline, captum / pytorch-grad-cam / zennit
  adapters), their validated options and ``method_attribution`` (a method as an Attribution).

Metrics consume attributions; nothing here imports ``attrsearch.metrics``.
"""

from attrsearch.attribution.base import (
    OUTPUT_KINDS,
    Attribution,
    OutputKind,
    check_maps,
    normalize_maps,
    output_kind_of,
)
from attrsearch.attribution.explainer import explainer_attribution, masks_from_logits
from attrsearch.attribution.per_class import PerTargetMethod, per_class_attribution

__all__ = [
    "OUTPUT_KINDS",
    "Attribution",
    "OutputKind",
    "output_kind_of",
    "PerTargetMethod",
    "check_maps",
    "explainer_attribution",
    "masks_from_logits",
    "normalize_maps",
    "per_class_attribution",
]
