"""Name -> builder registries (timm's ``create_model`` style) for models, datasets, objectives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from attrsearch.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders; ``create`` fails with a one-line ``UserError`` on unknown names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}
        self._docs: dict[str, str] = {}

    def register(self, name: str, doc: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = fn
            self._docs[name] = doc if doc is not None else ((fn.__doc__ or "").strip().splitlines() or [""])[0]
            return fn

        return decorator

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def describe(self) -> dict[str, str]:
        return {n: self._docs[n] for n in self.names()}

    def get(self, name: str, field: str | None = None) -> Callable[..., T]:
        if name not in self._builders:
            where = f"{field}: " if field else ""
            raise UserError(f"{where}unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        return self._builders[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)
