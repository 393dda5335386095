"""Name -> spec registries (timm's ``register_model`` style), the one plugin convention of the package.

Every plugin kind (datasets, Explananda and Explainers, objectives, attribution methods, metric
families) keeps one ``Registry``: one entry per name, and each entry is one spec that holds
everything about it (a dataset's builder, fingerprint and scanner; a model's constructor and
weights; an objective's loss, step hook and config class; a method's function and options model).
An entry is registered by one decorator in the plugin's own file::

    DATASETS = Registry("dataset", DatasetSpec)     # spec(decorated object, **fields) -> entry

    @DATASETS.register("voc2007", fingerprint=fingerprint, scan=scan_targets)
    def build_voc(cfg, split, cache_dir): ...

Each package imports its built-in plugin modules (see its ``__init__``), so importing the registry
registers them. ``get`` fails with a one-line ``UserError`` on unknown names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from attrsearch.errors import UserError

T = TypeVar("T")


def first_line(doc: str | None) -> str:
    """The first line of a docstring ('' for none)."""
    return ((doc or "").strip().splitlines() or [""])[0]


class Registry(Generic[T]):
    """Named specs; ``spec(obj, **fields)`` turns a decorated object into its entry (None: the object itself)."""

    def __init__(self, kind: str, spec: Callable[..., T] | None = None):
        self.kind = kind
        self._spec = spec
        self._entries: dict[str, T] = {}
        self._docs: dict[str, str] = {}

    def add(self, name: str, entry: T, doc: str = "") -> T:
        """Register ``entry`` under ``name`` (``ValueError`` when the name is taken)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        self._docs[name] = doc
        return entry

    def register(self, name: str, doc: str | None = None, **fields: Any) -> Callable[[Any], Any]:
        """Decorator: register the spec of the decorated object (and ``fields``) under ``name``; the
        object is returned unchanged. ``doc`` defaults to the first line of its docstring."""
        if self._spec is None and fields:
            raise TypeError(f"{self.kind} entries take no fields (got {sorted(fields)})")

        def decorator(obj: Any) -> Any:
            entry = self._spec(obj, **fields) if self._spec is not None else obj
            self.add(name, entry, doc if doc is not None else first_line(obj.__doc__))
            return obj

        return decorator

    def remove(self, name: str) -> T:
        """Unregister ``name`` (a plugin registered for a test, for example) and return its entry."""
        self._docs.pop(name, None)
        return self._entries.pop(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def describe(self) -> dict[str, str]:
        return {n: self._docs[n] for n in self.names()}

    def get(self, name: str, field: str | None = None) -> T:
        if name not in self._entries:
            where = f"{field}: " if field else ""
            raise UserError(f"{where}unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry of ``name`` (for registries whose entries are builders)."""
        return self.get(name)(*args, **kwargs)
