"""Model zoos: Explananda (frozen classifiers) and Explainers (mask generators), each a registry.

``create_explanandum(name, num_classes, ...)`` -> nn.Module, logits (B, C) from images (B, 3, H, W);
``name`` is a zoo name, ``timm:<model name>`` or ``python:<module>:<function>``.
``create_explainer(name, num_classes, ...)`` -> nn.Module, mask logits (B, C, H, W) at input size.
"""

from attrsearch.models import explainers, explananda, python_models, timm_models  # noqa: F401  (registers the builders)
from attrsearch.models.explainers import create_explainer
from attrsearch.models.explananda import create_explanandum, model_card, set_data_normalization
from attrsearch.models.registry import EXPLAINERS, EXPLANANDA
from attrsearch.models.weights import load_classifier_file

__all__ = [
    "EXPLAINERS",
    "EXPLANANDA",
    "create_explainer",
    "create_explanandum",
    "load_classifier_file",
    "model_card",
    "set_data_normalization",
]
