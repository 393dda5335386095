"""Python-defined Explananda: ``explanandum.arch: "python:package.module:function"``.

The function is imported because the user named it (the working directory is importable, as for
``python -m``), and called as ``function(num_classes, **explanandum.options)``; it must return an
``nn.Module`` mapping images (B, 3, H, W) to logits (B, C). A timm model it returns is wrapped like a
``timm:`` Explanandum (its feature pyramid, CAM layers and normalisation). Trained weights come from
``explanandum.checkpoint`` (a state dict read with ``weights_only=True``; ``load_classifier_file``) or
``explanandum.weights`` (initial weights, matched by name and shape).

A target that does not import, is not callable, rejects the options or does not return a module is
a one-line ``UserError`` when the config is resolved, before any work: the check calls the function
once with two classes.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import partial
from typing import Any

from torch import nn

from attrsearch.errors import UserError
from attrsearch.models.registry import EXPLANANDA, ModelSpec, WeightsSpec
from attrsearch.registry import first_line

PREFIX = "python"


def import_target(target: str, field: str) -> Any:
    """The object ``package.module:attr.path`` names; one-line UserError if it does not import."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"{field}: expected python:package.module:function (got python:{target})")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)  # like ``python -m``: modules next to the config are importable
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as err:  # the user's module: ImportError, SyntaxError, anything it raises
        raise UserError(
            f"{field}: cannot import {module_name!r} for python:{target}: {type(err).__name__}: {first_line(str(err))[:160]}"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UserError(f"{field}: {module_name} has no {attr!r} (python:{target})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{field}: python:{target} is a {type(obj).__name__}, not a function returning a module")
    return obj


def _is_timm_model(module: nn.Module) -> bool:
    return isinstance(getattr(module, "pretrained_cfg", None), dict) and hasattr(module, "feature_info")


def build_python_explanandum(
    target: str, function: Any, num_classes: int, image_size: int = 224, **options: Any
) -> nn.Module:
    """``function(num_classes, **options)``, checked to be an ``nn.Module`` (a timm model is wrapped)."""
    try:
        model = function(num_classes, **options)
    except TypeError as err:
        raise UserError(
            f"explanandum.options: python:{target} rejects {sorted(options)}: {first_line(str(err))[:200]}"
        ) from None
    if not isinstance(model, nn.Module):
        raise UserError(f"explanandum.arch: python:{target} returned a {type(model).__name__}, not a torch.nn.Module")
    if _is_timm_model(model):
        from attrsearch.models.timm_models import TimmExplanandum

        return TimmExplanandum(model, f"{PREFIX}:{target}")
    return model


def _check_options(target: str, function: Any, options: dict[str, Any], field: str) -> None:
    """Call the function once (two classes) so a bad target fails before any work."""
    for key in ("num_classes", "image_size"):
        if key in options:
            raise UserError(f"{field}.{key}: set by attrsearch (the dataset's classes), not an option")
    build_python_explanandum(target, function, 2, **options)


def _resolve(target: str, field: str) -> ModelSpec:
    function = import_target(target, field)
    return ModelSpec(
        partial(build_python_explanandum, target, function),
        WeightsSpec(label=f"{PREFIX}:{target}"),
        check_options=partial(_check_options, target, function),
    )


EXPLANANDA.add_family(
    PREFIX,
    _resolve,
    "python:<module>:<function>",
    "your own classifier: function(num_classes, **options) -> nn.Module; trained weights from explanandum.checkpoint",
)
