"""Checks of a baseline method before any work: against the Explanandum architecture built untrained.

Bad input (unknown method or option, a Grad-CAM layer the model lacks, LRP on a layer zennit has
no rule for) is a one-line ``UserError`` raised by ``check_method`` before any data is built or
any model is trained or loaded.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from attrsearch.attribution.methods import parse_option_values, resolve_method
from attrsearch.attribution.methods.layers import find_layer
from attrsearch.attribution.methods.lrp import LRPOptions, check_supported
from attrsearch.errors import UserError
from attrsearch.models import create_explanandum


def num_classes_hint(cfg) -> int:
    """The class count a config implies without building its data (only the head's width depends on it)."""
    data = cfg.data
    if data.dataset == "shapes":
        return data.shapes.num_classes
    classes = getattr(getattr(data, data.dataset, None), "classes", None)
    return len(classes) if classes else {"voc": 20, "coco": 80}.get(data.dataset, 2)


def untrained_explanandum(cfg) -> nn.Module:
    """The config's Explanandum architecture with random weights, in eval mode (cheap: for checks)."""
    model = create_explanandum(
        cfg.explanandum.arch, num_classes_hint(cfg), image_size=cfg.data.image_size, **cfg.explanandum.options
    )
    return model.eval()


def check_method(cfg, name: str, options: dict[str, Any] | None = None, model: nn.Module | None = None):
    """Validate a method and its options against the config's Explanandum architecture; returns the
    validated options. One-line ``UserError`` for an unknown method or option, a CAM layer the model
    lacks (listing the valid ones) and LRP on a module zennit has no rule for. No data, no training."""
    _, opts = resolve_method(name, options)
    model = untrained_explanandum(cfg) if model is None else model
    if "layer" in type(opts).model_fields:
        find_layer(model, opts.layer)
    if isinstance(opts, LRPOptions):
        check_supported(model, opts)
    return opts


def method_from_options(name: str, items: list[str] | None) -> dict[str, Any]:
    """``--option K=V`` strings -> an options mapping (values parsed as YAML); one-line errors."""
    if not name:
        raise UserError("--method: expected a method name")
    return parse_option_values(items or [])
