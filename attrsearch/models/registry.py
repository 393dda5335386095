"""The two model registries (kept apart from the builders so configs can import them cheaply)."""

from attrsearch.registry import Registry

EXPLANANDA: Registry = Registry("explanandum")
EXPLAINERS: Registry = Registry("explainer")
