"""Explainer training objectives, one file each (pure tensor code); chosen by ``loss.name``."""

from attrsearch.objectives.registry import OBJECTIVES
from attrsearch.objectives import explainer  # noqa: F401  (registers "explainer")
from attrsearch.objectives.explainer import LossOutput, explainer_objective

__all__ = ["OBJECTIVES", "LossOutput", "explainer_objective"]
