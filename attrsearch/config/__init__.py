"""Validated configuration (pydantic) loaded from YAML."""

from attrsearch.config.base import StrictModel, read_yaml, stable_hash, validate
from attrsearch.config.data import DataConfig, ShapesConfig
from attrsearch.config.evaluation import EvaluationConfig
from attrsearch.config.experiment import (
    ExperimentConfig,
    ExplainerConfig,
    ExplanandumConfig,
    TrainConfig,
    default_cache_dir,
    load_experiment,
)
from attrsearch.config.objectives import OBJECTIVE_CONFIGS, ObjectiveConfig, WysiwycObjective

__all__ = [
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "ExplainerConfig",
    "ExplanandumConfig",
    "OBJECTIVE_CONFIGS",
    "ObjectiveConfig",
    "WysiwycObjective",
    "ShapesConfig",
    "StrictModel",
    "TrainConfig",
    "default_cache_dir",
    "load_experiment",
    "read_yaml",
    "stable_hash",
    "validate",
]
