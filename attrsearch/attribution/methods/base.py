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

from attrsearch.config.base import StrictModel
from attrsearch.registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: ``fn(model, images, targets=None, **options) -> maps (B, C, H, W)`` and its options."""

    fn: Callable[..., Tensor]
    options: type[StrictModel]

    def __call__(self, model: nn.Module, images: Tensor, targets: Tensor | None = None, **options: Any) -> Tensor:
        return self.fn(model, images, targets, **options)


METHODS: Registry[MethodSpec] = Registry("attribution method", MethodSpec)


def register_method(
    name: str, options: type[StrictModel], doc: str | None = None
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: register the method function under ``name`` with its options model."""
    return METHODS.register(name, doc, options=options)
