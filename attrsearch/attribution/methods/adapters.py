"""Library methods behind the same interface: ``captum:<Class>``, ``gradcam_lib:<CAMClass>``, ``zennit:<Attributor>``.

These explain one class per call, so all C classes cost C passes (or C copies of each image);
they are here for breadth and as independent references, not for speed.

- ``captum:<Class>``: any ``captum.attr`` Attribution (Kokhlikyan et al. 2020). Captum takes
  one target per example, so each image is repeated once per class with one target each (the
  captum maintainers' advice, captum issue #612), in chunks of ``batch`` copies. Input
  attributions (n, 3, H, W) are summed over the colour channels (signed; ``abs: true`` sums
  absolute values); layer attributions (``Layer*`` classes, ``layer`` option, default the CAM
  layer) are summed over channels and upsampled bilinearly to the image.
- ``gradcam_lib:<CAMClass>``: a pytorch-grad-cam CAM (Gildenblat et al.), one target per image,
  looped over classes; its maps are min-max normalised per image by the library and resized with
  OpenCV, values in [0, 1].
- ``zennit:<Attributor>``: a zennit attributor (Gradient, SmoothGrad, IntegratedGradients,
  Occlusion) with an optional LRP composite (``composite``), relevance summed over colour channels.
  What the backward pass starts from (zennit's ``attr_output``) depends on what is computed
  (``zennit_seed``): the gradient attributors without a composite start from the one-hot class
  vector, so they return the gradient of the class logit (Gradient = captum's Saliency without
  ``abs``, IntegratedGradients = captum's with ``method=riemann_right``, completeness
  sum IG = f(x) - f(0) up to the Riemann error); with a composite the relevance starts at the class
  logit (one-hot x logit, LRP's convention: Bach et al. 2015, eq. 2, so relevance sums to about the
  logit); Occlusion has no backward pass: its score per window is the class logit of the image
  with only that window kept (one-hot x logit again).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from attrsearch.attribution.methods._common import (
    attribution_method,
    check_targets,
    num_classes_of,
    upsample,
    validate_options,
)
from attrsearch.attribution.methods.layers import find_layer, to_feature_map
from attrsearch.attribution.methods.lrp import LRPOptions, build_composite, check_supported
from attrsearch.config.base import StrictModel
from attrsearch.errors import UserError

PREFIXES = ("captum", "gradcam_lib", "zennit")


def _tuples(value: Any) -> Any:
    """YAML lists -> tuples (captum wants tuples for shapes and strides)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


class CaptumOptions(StrictModel):
    """layer: for Layer* classes (default: the CAM layer); abs: sum |attribution| over channels;
    batch: image copies per call; init / attribute: extra keyword arguments of the class's
    constructor / ``attribute`` (e.g. ``attribute={sliding_window_shapes: [3, 8, 8]}`` for Occlusion)."""

    layer: str | None = None
    abs: bool = False
    batch: int = Field(64, ge=1)
    init: dict[str, Any] = Field(default_factory=dict)
    attribute: dict[str, Any] = Field(default_factory=dict)


class GradCAMLibOptions(StrictModel):
    """layer: target layer (default: the CAM layer); init: extra keyword arguments of the CAM class."""

    layer: str | None = None
    init: dict[str, Any] = Field(default_factory=dict)


class ZennitOptions(StrictModel):
    """composite: an LRP composite (see ``lrp``) or ``none`` (plain gradients); canonizers: as for lrp;
    init: extra keyword arguments of the attributor (``n_iter``, ``noise_level``, ...); batch: image copies per call."""

    composite: Literal["none", "epsilon_plus_flat", "epsilon_gamma_box", "alpha2_beta1"] = "none"
    canonizers: Literal["auto", "none"] = "auto"
    init: dict[str, Any] = Field(default_factory=dict)
    batch: int = Field(64, ge=1)


def zennit_seed(cls: type, composite: str) -> Literal["onehot", "logit"]:
    """What zennit's backward pass starts from for attributor ``cls`` with ``composite`` (see the module docs)."""
    from zennit.attribution import Gradient

    if issubclass(cls, Gradient) and composite == "none":
        return "onehot"
    return "logit"


def describe_zennit(cls: type, kwargs: dict[str, Any]) -> str:
    """The seed in words, appended to the method description."""
    from zennit.attribution import Gradient

    if not issubclass(cls, Gradient):
        return "score per window: the class logit with only the window kept (one-hot x logit)"
    if zennit_seed(cls, kwargs.get("composite", "none")) == "onehot":
        return "backward seeded with the one-hot class vector: gradients of the class logit"
    return "relevance seeded with the class logit (one-hot x logit, the LRP convention)"


def _rows_to_maps(values: Tensor, rows: Tensor, maps: Tensor) -> None:
    maps[rows[:, 0], rows[:, 1]] = values.float()


def _captum_call(
    cls: type, name: str, model: nn.Module, images: Tensor, targets: Tensor | None, **options: Any
) -> Tensor:
    from captum.attr import LayerAttribution

    opts = validate_options(CaptumOptions, options, name)
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images)
    pairs = check_targets(targets, b, num_classes, images.device).nonzero()
    is_layer = issubclass(cls, LayerAttribution)
    init = _tuples(opts.init)
    try:
        method = cls(model, find_layer(model, opts.layer)[1], **init) if is_layer else cls(model, **init)
    except TypeError as err:
        raise UserError(f"--option init: {name} rejects {sorted(init)}: {err}") from None
    maps = images.new_zeros(b, num_classes, h, w)
    for start in range(0, len(pairs), opts.batch):
        rows = pairs[start : start + opts.batch]
        x = images[rows[:, 0]].clone().requires_grad_(True)
        try:
            attr = method.attribute(x, target=rows[:, 1].tolist(), **_tuples(opts.attribute))
        except TypeError as err:
            raise UserError(f"--option attribute: {name}.attribute rejects {sorted(opts.attribute)}: {err}") from None
        if isinstance(attr, tuple):
            attr = attr[0]
        attr = attr.detach()
        if is_layer or attr.dim() == 3:
            attr = to_feature_map(model, attr, (h, w))
        attr = attr.abs() if opts.abs else attr
        _rows_to_maps(upsample(attr.sum(1, keepdim=True), (h, w))[:, 0], rows, maps)
    return maps


def _gradcam_lib_call(
    cls: type, name: str, model: nn.Module, images: Tensor, targets: Tensor | None, **options: Any
) -> Tensor:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    opts = validate_options(GradCAMLibOptions, options, name)
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images)
    selected = check_targets(targets, b, num_classes, images.device)
    _, layer = find_layer(model, opts.layer)

    def reshape(t: Tensor) -> Tensor:
        return to_feature_map(model, t, (h, w))

    try:
        cam = cls(model=model, target_layers=[layer], reshape_transform=reshape, **_tuples(opts.init))
    except TypeError as err:
        raise UserError(f"--option init: {name} rejects {sorted(opts.init)}: {err}") from None
    maps = images.new_zeros(b, num_classes, h, w)
    with cam:
        for c in selected.any(0).nonzero()[:, 0].tolist():
            x = images.clone().requires_grad_(True)  # the library needs a graph; our parameters are frozen
            out = cam(input_tensor=x, targets=[ClassifierOutputTarget(c)] * b)  # numpy (B, H, W)
            maps[:, c] = torch.from_numpy(np.ascontiguousarray(out)).to(maps)
    return maps * selected[:, :, None, None]


def _zennit_call(
    cls: type, name: str, model: nn.Module, images: Tensor, targets: Tensor | None, **options: Any
) -> Tensor:
    opts = validate_options(ZennitOptions, options, name)
    b, _, h, w = images.shape
    num_classes, _ = num_classes_of(model, images)
    pairs = check_targets(targets, b, num_classes, images.device).nonzero()
    lrp_opts = None if opts.composite == "none" else LRPOptions(composite=opts.composite, canonizers=opts.canonizers)
    if lrp_opts is not None:
        check_supported(model, lrp_opts)
    maps = images.new_zeros(b, num_classes, h, w)
    for start in range(0, len(pairs), opts.batch):
        rows = pairs[start : start + opts.batch]
        x = images[rows[:, 0]].clone().requires_grad_(True)
        onehot = torch.nn.functional.one_hot(rows[:, 1], num_classes).to(x.dtype)
        seed = onehot if zennit_seed(cls, opts.composite) == "onehot" else (lambda out, oh=onehot: out * oh)
        composite = None if lrp_opts is None else build_composite(lrp_opts, model, x)
        try:
            attributor = cls(model=model, composite=composite, **_tuples(opts.init))
        except TypeError as err:
            raise UserError(f"--option init: {name} rejects {sorted(opts.init)}: {err}") from None
        with attributor:
            _, relevance = attributor(x, seed)
        _rows_to_maps(relevance.detach().sum(1), rows, maps)
    return maps


def _library_class(prefix: str, cls_name: str) -> type:
    if prefix == "captum":
        import captum.attr as lib
        from captum.attr import Attribution as base
        from captum.attr._utils.attribution import NeuronAttribution

        cls = getattr(lib, cls_name, None)
        if isinstance(cls, type) and issubclass(cls, NeuronAttribution):
            raise UserError(f"--method captum:{cls_name}: neuron attributions explain a unit, not a class")
    elif prefix == "gradcam_lib":
        import pytorch_grad_cam as lib
        from pytorch_grad_cam.base_cam import BaseCAM as base

        cls = getattr(lib, cls_name, None)
    else:
        import zennit.attribution as lib
        from zennit.attribution import Attributor as base

        cls = getattr(lib, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)) or cls is base:
        names = sorted(n for n, v in vars(lib).items() if isinstance(v, type) and issubclass(v, base) and v is not base)
        raise UserError(f"--method {prefix}:{cls_name}: unknown class; choose one of {', '.join(names)}")
    return cls


def describe_library_method(name: str, kwargs: dict[str, Any]) -> str:
    """``prefix:Class`` with its options in words (zennit's: also what the backward pass starts from)."""
    text = f"{name} " + ", ".join(f"{k}={v}" for k, v in kwargs.items())
    prefix, _, cls_name = name.partition(":")
    if prefix == "zennit":
        text += "; " + describe_zennit(_library_class(prefix, cls_name), kwargs)
    return text


def resolve_library_method(name: str) -> tuple[Callable[..., Tensor], type[StrictModel]]:
    """``prefix:Class`` -> (attribution function, options model); a one-line UserError for an unknown one."""
    prefix, _, cls_name = name.partition(":")
    if prefix not in PREFIXES or not cls_name:
        raise UserError(
            f"--method {name}: unknown library prefix; use one of {', '.join(p + ':<Class>' for p in PREFIXES)}"
        )
    cls = _library_class(prefix, cls_name)
    call, options = {
        "captum": (_captum_call, CaptumOptions),
        "gradcam_lib": (_gradcam_lib_call, GradCAMLibOptions),
        "zennit": (_zennit_call, ZennitOptions),
    }[prefix]
    fn = attribution_method(functools.update_wrapper(functools.partial(call, cls, name), call))
    return fn, options
