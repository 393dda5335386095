"""Registry of training objectives: ``objective(explanandum, images, labels, mask_logits, cfg) -> LossOutput``."""

from attrsearch.registry import Registry

OBJECTIVES: Registry = Registry("objective")
