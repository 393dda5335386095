"""The two model registries and their one builder path: read weights -> construct -> load.

A registry entry is one ``ModelSpec``, registered by ``@register(registry, name, **weights)`` on its
constructor in the architecture's own file. It only constructs the module (``construct(num_classes, ..., **options) -> nn.Module``)
and declares how it takes weights (``WeightsSpec``: its torchvision ImageNet checkpoint, the new head
never loaded from ImageNet, a state-dict transform, the submodules a file may match). ``build_model``
does the rest the same way for every architecture, like timm's ``build_model_with_cfg``: weights are
read before the module is built (a missing file fails at once), then loaded by name and shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from attrsearch.models.layers import check_options
from attrsearch.models.weights import check_weights, load_into_best, resolve_weights
from attrsearch.registry import Registry

Transform = Callable[[nn.Module, dict[str, Tensor]], dict[str, Tensor]]


@dataclass(frozen=True)
class WeightsSpec:
    """How one architecture takes ``weights``.

    imagenet: the torchvision weights enum member of ``weights="imagenet"`` (None: it has none).
    head: name prefixes of the new head, never taken from an ImageNet checkpoint.
    transform: rewrites a state dict for a candidate submodule before matching (key prefixes, a
    resampled position embedding).
    targets: ``(model, imagenet) -> {readable name: submodule}`` the weights may go into; the one with
    the most matching tensors wins (default: the whole model).
    label: the architecture as named in messages (default: its registry name).
    """

    imagenet: Any = None
    head: tuple[str, ...] = ()
    transform: Transform | None = None
    targets: Callable[[nn.Module, bool], dict[str, nn.Module]] | None = None
    label: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its constructor and how it takes weights."""

    construct: Callable[..., nn.Module]
    weights: WeightsSpec = WeightsSpec()


def _model_spec(construct: Callable[..., nn.Module], **weights: Any) -> ModelSpec:
    return ModelSpec(construct, WeightsSpec(**weights))


EXPLANANDA: Registry[ModelSpec] = Registry("explanandum", _model_spec)
EXPLAINERS: Registry[ModelSpec] = Registry("explainer", _model_spec)


def register(
    registry: Registry[ModelSpec], name: str, doc: str | None = None, **weights: Any
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``construct`` under ``name`` in ``registry`` with its ``WeightsSpec(**weights)``."""
    return registry.register(name, doc, **weights)


def weights_spec(registry: Registry[ModelSpec], name: str) -> WeightsSpec:
    return registry.get(name).weights


def check_entry(
    registry: Registry, field: str, name: str, options: dict[str, Any], reserved: Iterable[str]
) -> Callable[..., nn.Module]:
    """The registered constructor of ``name`` after checking the name and the option keys (``UserError``
    naming ``field.arch`` or ``field.options``)."""
    construct = registry.get(name, field=f"{field}.arch").construct
    check_options(construct, options, reserved, f"{field}.options", name)
    return construct


def check_model_weights(
    registry: Registry, field: str, name: str, weights: str | Path | None, *, read: bool = True
) -> None:
    """``field.weights`` of architecture ``name`` checked before any work (``check_weights``): its
    ImageNet checkpoint in the torch hub cache, or a readable weights file (``read`` False: an existing one)."""
    spec = weights_spec(registry, name)
    check_weights(weights, f"{field}.weights", spec.label or name, spec.imagenet, read=read)


def build_model(
    registry: Registry,
    field: str,
    name: str,
    weights: str | Path | None,
    construct: Callable[[], nn.Module],
) -> nn.Module:
    """Read ``weights`` for ``name``, call ``construct()`` and load the weights into the result.

    weights: None (construct's own init), "imagenet" (the spec's torchvision checkpoint from the
    local torch hub cache; the head stays new) or a weights file (into whichever target it matches best).
    """
    spec = weights_spec(registry, name)
    label = spec.label or name
    state = resolve_weights(weights, f"{field}.weights", label, spec.imagenet)
    model = construct()
    if state is not None:
        targets = spec.targets(model, state.imagenet) if spec.targets is not None else {field: model}
        exclude = spec.head if state.imagenet else ()
        load_into_best(
            targets, state, field_name=f"{field}.weights", arch=label, exclude=exclude, transform=spec.transform
        )
    return model
