"""The attribution-method registry: name -> ``MethodSpec`` (batched tensor function, pydantic options model).

A method registers itself in its own file, above its function::

    @register_method("rise", RISEOptions, doc="RISE (Petsiuk et al. 2018): ...")
    @attribution_method
    def rise(model, images, targets=None, **options) -> Tensor: ...

``attrsearch.attribution.methods.registry`` imports the built-in method modules (so importing it, or
the package, registers them) and resolves user input against ``METHODS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from attrsearch.attribution.base import OutputKind
from attrsearch.config.base import StrictModel
from attrsearch.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: ``fn(model, images, targets=None, **options) -> maps (B, C, H, W)``, its
    options and what its maps are: ``output`` ``"score"`` (the default: on the method's own scale,
    min-max normalised per image and class by the metrics) or ``"mask"`` (in [0, 1] by construction,
    scored as they are); see ``attrsearch.attribution.base``."""

    fn: Callable[..., Tensor]
    options: type[StrictModel]
    output: OutputKind = "score"

    def __call__(self, model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: Any) -> Tensor:
        return self.fn(model, images, targets, **options)


METHODS: Registry[MethodSpec] = Registry("attribution method", MethodSpec)


def register_method(
    name: str, options: type[StrictModel], doc: str | None = None, output: OutputKind = "score"
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: register the method function under ``name`` with its options model and output kind."""
    return METHODS.register(name, doc, options=options, output=output)
