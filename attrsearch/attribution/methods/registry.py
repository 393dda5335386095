"""The attribution methods resolved by name: the registry (``methods.base.METHODS``) with the
built-in methods, which register themselves where they are defined, and the library adapters.

``resolve_method(name, options)`` is the one entry point for user input: built-in names come from
``METHODS``; ``captum:<Class>``, ``gradcam_lib:<CAMClass>`` and ``zennit:<Attributor>`` are
resolved against the library at call time. Every failure is a one-line ``UserError`` naming the
method or the option.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from torch import Tensor, nn

# Importing the built-in method modules registers their specs in METHODS.
from attrsearch.attribution.methods import adapters, center, extremal, gradcam, igos, lrp, rise, sobel  # noqa: F401
from attrsearch.attribution.methods._common import validate_options
from attrsearch.attribution.methods.base import METHODS, MethodSpec
from attrsearch.attribution.methods.layers import find_layer
from attrsearch.config.base import StrictModel
from attrsearch.errors import UserError

# The names the tables of Stalder et al. 2022 use for the two optimisation methods.
ALIASES = {"extremal_perturbation": "extremal", "igos_pp": "igos"}


def canonical_method(name: str) -> str:
    """``extremal_perturbation`` -> ``extremal``, ``igos_pp`` -> ``igos``; other names unchanged."""
    return ALIASES.get(name, name)


def method_spec(name: str) -> MethodSpec:
    """The spec of ``name`` (built-in, an alias of ``ALIASES`` or ``prefix:Class``); a one-line UserError when unknown."""
    if not isinstance(name, str) or not name:
        raise UserError(f"--method: expected a method name (got {name!r})")
    name = canonical_method(name)
    if ":" in name:
        fn, options = adapters.resolve_library_method(name)
        return MethodSpec(fn, options)
    if name not in METHODS:
        libs = ", ".join(p + ":<Class>" for p in adapters.PREFIXES)
        raise UserError(
            f"--method: unknown attribution method {name!r}; choose one of {', '.join(METHODS.names())} or {libs}"
        )
    return METHODS.get(name)


def resolve_method(name: str, options: dict[str, Any] | None = None) -> tuple[Callable[..., Tensor], StrictModel]:
    """(fn, validated options) for method ``name``; call ``fn(model, images, targets, **opts.model_dump())``.

    A one-line UserError for an unknown method, an unknown option or a bad value, e.g.
    ``--option cells: Input should be greater than or equal to 1 for method rise (got 0)``.
    """
    spec = method_spec(name)
    if options is not None and not isinstance(options, dict):
        raise UserError(f"--option: expected KEY=VALUE options for method {name} (got {options!r})")
    return spec.fn, validate_options(spec.options, dict(options or {}), name)


def parse_option_values(items: Iterable[str]) -> dict[str, Any]:
    """``["cells=7", "areas=[0.1, 0.2]"]`` -> ``{"cells": 7, "areas": [0.1, 0.2]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--option {item}: expected KEY=VALUE")
        if key in out:
            raise UserError(f"--option {key}: given twice")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise UserError(f"--option {key}: invalid value {raw!r}: {problem}") from None
    return out


def _reads_a_layer(name: str) -> bool:
    """Whether the method's ``layer`` option picks the layer it attributes (Grad-CAM and CAM classes,
    captum's Layer* classes); other captum classes ignore it."""
    name = canonical_method(name)
    if name in ("gradcam", "gradcam_pp") or name.startswith("gradcam_lib:"):
        return True
    return name.startswith("captum:") and name.split(":", 1)[1].startswith("Layer")


def method_attribution(
    model: nn.Module, name: str, options: dict[str, Any] | None = None
) -> Callable[[Tensor], Tensor]:
    """A registered method as an attribution ``images (B, 3, H, W) -> maps (B, C, H, W)`` for the evaluation loop.

    Options are validated now (before any work). The callable records its cost: ``seconds``,
    ``images`` and ``seconds_per_image`` (wall time, synchronised on CUDA) over all calls so far;
    ``method`` and ``options`` name what it runs, ``description`` says it in words and
    ``output_kind`` is the spec's ``output`` (how the metrics normalise its maps).
    """
    import torch

    fn, opts = resolve_method(name, options)
    kwargs = opts.model_dump()
    if kwargs.get("layer", "") is None and _reads_a_layer(name):
        # The default layer, resolved for this model: the options and the description name it.
        kwargs["layer"] = find_layer(model, None)[0]
    if canonical_method(name) == "lrp":
        description = lrp.describe(opts, model)
    elif ":" in name:
        description = adapters.describe_library_method(name, kwargs)
    else:
        description = f"{name} " + ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def attribute(images: Tensor) -> Tensor:
        sync = torch.cuda.synchronize if images.is_cuda and torch.cuda.is_available() else (lambda: None)
        sync()
        start = time.perf_counter()
        maps = fn(model, images, None, **kwargs)
        sync()
        attribute.seconds += time.perf_counter() - start  # type: ignore[attr-defined]
        attribute.images += images.shape[0]  # type: ignore[attr-defined]
        attribute.seconds_per_image = attribute.seconds / max(attribute.images, 1)  # type: ignore[attr-defined]
        return maps

    attribute.method = name  # type: ignore[attr-defined]
    attribute.output_kind = method_spec(name).output  # type: ignore[attr-defined]
    attribute.options = kwargs  # type: ignore[attr-defined]
    attribute.description = description.strip()  # type: ignore[attr-defined]
    attribute.seconds = 0.0  # type: ignore[attr-defined]
    attribute.images = 0  # type: ignore[attr-defined]
    attribute.seconds_per_image = float("nan")  # type: ignore[attr-defined]
    return attribute
