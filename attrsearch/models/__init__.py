"""Model zoos: Explananda (frozen classifiers) and Explainers (mask generators), each a registry.

``create_explanandum(name, num_classes, ...)`` -> nn.Module, logits (B, C) from images (B, 3, H, W).
``create_explainer(name, num_classes, ...)`` -> nn.Module, mask logits (B, C, H, W) at input size.
"""

from attrsearch.models import explainers, explananda  # noqa: F401  (registers the builders)
from attrsearch.models.explainers import create_explainer
from attrsearch.models.explananda import create_explanandum
from attrsearch.models.registry import EXPLAINERS, EXPLANANDA

__all__ = ["EXPLAINERS", "EXPLANANDA", "create_explainer", "create_explanandum"]
