"""Attribution methods as plain batched tensor functions: ``method(model, images, targets=None, **options) -> maps``.

images (B, 3, H, W) normalised -> maps (B, C, H, W), C = the model's output width; ``targets``
(B, C) bool restricts the work to the selected (image, class) pairs (others are zero maps).
``resolve_method`` / ``method_attribution`` turn a name and options into a callable; see registry.
A method registers itself where it is defined, with ``@register_method(name, Options)`` (``base``).
"""

from attrsearch.attribution.methods.base import METHODS, MethodSpec, register_method
from attrsearch.attribution.methods.registry import (
    method_attribution,
    method_spec,
    parse_option_values,
    resolve_method,
)

__all__ = [
    "METHODS",
    "MethodSpec",
    "method_attribution",
    "method_spec",
    "parse_option_values",
    "register_method",
    "resolve_method",
]
