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

from attrsearch.errors import UserError
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
    """A registered architecture: its constructor and how it takes weights.

    check_options: ``(options, field) -> None`` for constructors that take free keyword arguments
    (a timm model's, a user's function's); None checks the option keys against the signature.
    loads_weights: ``construct(num_classes, image_size=..., weights=..., **options)`` loads the
    weights itself (timm's pretrained loader); else ``build_model`` does.
    """

    construct: Callable[..., nn.Module]
    weights: WeightsSpec = WeightsSpec()
    check_options: Callable[[dict[str, Any], str], None] | None = None
    loads_weights: bool = False  # construct(..., weights=...) reads its own weights (timm's loader)


def _model_spec(construct: Callable[..., nn.Module], **weights: Any) -> ModelSpec:
    return ModelSpec(construct, WeightsSpec(**weights))


# A family of names resolved at use: ``prefix:rest`` -> (ModelSpec, field) (timm's models, a user's function).
FamilyResolver = Callable[[str, str], ModelSpec]


class ModelRegistry(Registry[ModelSpec]):
    """A model ``Registry`` that also resolves ``prefix:rest`` names through a registered family
    (``timm:<model name>``, ``python:<module>:<function>``), like the attribution methods'
    ``captum:<Class>``. A family's spec is built on each ``get``; the resolver raises the one-line
    ``UserError`` for a bad name."""

    def __init__(self, kind: str, spec: Callable[..., ModelSpec] | None = None):
        super().__init__(kind, spec)
        self._families: dict[str, tuple[FamilyResolver, str, str]] = {}

    def add_family(self, prefix: str, resolve: FamilyResolver, usage: str, doc: str) -> None:
        """Resolve ``prefix:rest`` names with ``resolve(rest, field)``; ``usage`` shows how to name one
        (``timm:<model name>``), ``doc`` says what it is."""
        if prefix in self._families:
            raise ValueError(f"{self.kind} family {prefix!r} is registered twice")
        self._families[prefix] = (resolve, usage, doc)

    def families(self) -> dict[str, str]:
        """``{"timm:<model name>": "any timm model ...", ...}`` for listings and messages."""
        return {usage: doc for _, usage, doc in self._families.values()}

    def family_of(self, name: str) -> str | None:
        """The family prefix of ``name`` ("timm", "python") or None for a registered name."""
        prefix, sep, _ = str(name).partition(":")
        return prefix if sep and prefix in self._families else None

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and self.family_of(name) is not None)

    def get(self, name: str, field: str | None = None) -> ModelSpec:
        family = self.family_of(name) if isinstance(name, str) else None
        if family is not None:
            return self._families[family][0](name.split(":", 1)[1], field or f"{self.kind}.arch")
        if name not in self._entries and self._families:
            where = f"{field}: " if field else ""
            named = ", ".join(self.families())
            raise UserError(f"{where}unknown {self.kind} {name!r}; choose one of {', '.join(self.names())} or {named}")
        return super().get(name, field)


EXPLANANDA = ModelRegistry("explanandum", _model_spec)
EXPLAINERS = ModelRegistry("explainer", _model_spec)


def register(
    registry: Registry[ModelSpec], name: str, doc: str | None = None, **weights: Any
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``construct`` under ``name`` in ``registry`` with its ``WeightsSpec(**weights)``."""
    return registry.register(name, doc, **weights)


def weights_spec(registry: Registry[ModelSpec], name: str, field: str | None = None) -> WeightsSpec:
    return registry.get(name, field).weights


def check_entry(
    registry: Registry, field: str, name: str, options: dict[str, Any], reserved: Iterable[str]
) -> Callable[..., nn.Module]:
    """The registered constructor of ``name`` after checking the name and the option keys (``UserError``
    naming ``field.arch`` or ``field.options``)."""
    spec = registry.get(name, field=f"{field}.arch")
    if spec.check_options is not None:
        spec.check_options(options, f"{field}.options")
    else:
        check_options(spec.construct, options, reserved, f"{field}.options", name)
    return spec.construct


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
    spec = weights_spec(registry, name, f"{field}.arch")
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
