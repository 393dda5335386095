"""Explainer training objectives, one file each (pure tensor code), chosen by ``objective.name``."""

from attrsearch.objectives import casm, rank, rtis, segmenter, wysiwyc  # noqa: F401  (each registers its name)
from attrsearch.objectives.base import OBJECTIVES, LossOutput, Objective, StepHook, register_objective

__all__ = ["OBJECTIVES", "LossOutput", "Objective", "StepHook", "register_objective"]
