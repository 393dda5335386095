"""The experiment schema: what ``attrsearch train`` takes and what a sweep's ``base`` is.

One experiment = dataset + frozen Explanandum (and the recipe that trains it) + Explainer
architecture + training objective (chosen by name, with its weights) + training loop + evaluation.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from attrsearch.config.base import StrictModel, read_yaml, validate
from attrsearch.config.data import DataConfig
from attrsearch.config.evaluation import EvaluationConfig
from attrsearch.config.method import MethodConfig
from attrsearch.config.objectives import ObjectiveConfig, WysiwycObjective, objective_mapping
from attrsearch.config.presets import PRESET_LR

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$ATTRSEARCH_CACHE`` or ``~/.cache/attrsearch``: dataset arrays and trained Explananda."""
    return Path(os.environ.get("ATTRSEARCH_CACHE", Path.home() / ".cache" / "attrsearch"))


class OcclusionConfig(StrictModel):
    """Mask augmentation for the Explanandum recipe: random occlusions set to the mean colour.

    Meant to keep masked images (zero = mean colour in normalised space) in distribution for the
    classifier; uses no ground-truth masks, so it works on VOC/COCO labels. Off by default (``prob``
    0): on the built-in data with the ``explanandum_encoder`` Explainer it lowered both the
    classifier's mAP and the Explainer's IoU (analysis/benchmarks/NOTES.md).
    """

    prob: float = Field(0.0, ge=0.0, le=1.0, description="share of training images that get occluded (0 = off)")
    kind: Literal["blotch", "cutout", "mixed"] = "mixed"
    min_keep: float = Field(0.3, gt=0.0, le=1.0, description="smallest share of the image left visible")
    max_keep: float = Field(0.9, gt=0.0, le=1.0, description="largest share of the image left visible")

    @model_validator(mode="after")
    def _check(self) -> OcclusionConfig:
        if self.min_keep > self.max_keep:
            raise ValueError(f"min_keep ({self.min_keep}) must be <= max_keep ({self.max_keep})")
        return self


class ExplanandumRecipe(StrictModel):
    """How the Explanandum is trained or fine-tuned (BCE, multi-label). Part of its cache key."""

    epochs: int = Field(20, ge=0)
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(1e-4, ge=0.0)
    freeze_backbone: bool = Field(False, description="train only the new head (the paper's public code)")
    occlusion: OcclusionConfig = Field(default_factory=OcclusionConfig)
    augment_flip: bool = True
    shuffle_labels: bool = Field(
        False,
        description="train on a fixed random permutation of the label vectors (Adebayo et al. 2018's data randomisation test)",
    )


class ExplanandumConfig(StrictModel):
    arch: str = Field("small_cnn", description="name in the Explanandum zoo (attrsearch models)")
    weights: str | None = Field(
        None, description="None (random init), 'imagenet' (from the local torch cache) or a weights file"
    )
    checkpoint: Path | None = Field(None, description="an already trained Explanandum file; skips training")
    seed: int = 0
    recipe: ExplanandumRecipe = Field(default_factory=ExplanandumRecipe)
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments of the architecture")


class ExplainerConfig(StrictModel):
    arch: str = Field("explanandum_encoder", description="name in the Explainer zoo (attrsearch models)")
    weights: str | None = Field(None, description="backbone weights: None, 'imagenet' (local torch cache) or a file")
    freeze_encoder: bool = Field(
        True, description="encoders copied from the Explanandum stay frozen (CASM's detached features)"
    )
    initial_mask_area: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="start every mask at this area: the output layer's bias set to logit(area) (Lin et al. "
        "2017's prior initialisation); None: zero bias, masks start near 0.5. Explainers with a `classifier` conv",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments of the architecture")


class EarlyStoppingConfig(StrictModel):
    metric: str = Field("loss", description="'loss' (val loss, the paper) or a metric name of the fast suite")
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.001, ge=0.0)
    enabled: bool = True


class LRScheduleConfig(StrictModel):
    """The Explainer's learning rate over training, set per optimiser step: ``constant`` (the paper), or a
    linear warm-up over ``warmup_epochs`` then a cosine decay to ``lr * final_lr_ratio`` at the last
    planned epoch (``train.epochs``; Loshchilov & Hutter 2017, SGDR; Goyal et al. 2017's warm-up)."""

    name: Literal["constant", "cosine"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0.0, description="linear warm-up from lr/100, in epochs (fractions allowed)")
    final_lr_ratio: float = Field(0.01, ge=0.0, le=1.0, description="cosine: the last step's lr as a share of lr")


class TrainConfig(StrictModel):
    """The Explainer training loop (identical for ``attrsearch train`` and sweep trials)."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0.0)
    lr_schedule: LRScheduleConfig = Field(default_factory=LRScheduleConfig)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(0.0, ge=0.0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = Field("auto", description="auto: bf16 autocast on CUDA, off on CPU")
    channels_last: Literal["auto", "on", "off"] = "auto"
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    max_train_batches: int | None = Field(None, ge=1, description="cap on batches per epoch (quick runs)")
    progress: bool = True


class ExperimentConfig(StrictModel):
    name: str = "experiment"
    seed: int = 42
    cache_dir: Path = Field(default_factory=default_cache_dir)
    data: DataConfig = Field(default_factory=DataConfig)
    explanandum: ExplanandumConfig = Field(default_factory=ExplanandumConfig)
    explainer: ExplainerConfig = Field(default_factory=ExplainerConfig)
    objective: ObjectiveConfig = Field(
        default_factory=WysiwycObjective,
        validation_alias=AliasChoices("objective", "loss"),
        description="the Explainer's training objective, chosen by name (``loss:`` is the old spelling)",
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    method: MethodConfig | None = Field(
        None, description="score this attribution method instead of training an Explainer (config/method.py)"
    )

    @model_validator(mode="before")
    @classmethod
    def _objective_and_preset(cls, data: Any) -> Any:
        """``loss`` and ``objective`` are one field; a published preset also sets train.lr if unset."""
        if not isinstance(data, dict):
            return data
        if "loss" in data and "objective" in data:
            raise ValueError("give objective (or its old name loss), not both")
        key = "objective" if "objective" in data else "loss"
        objective = data.get(key)
        preset = objective.get("preset") if isinstance(objective, dict) else None
        if not isinstance(preset, str) or preset not in PRESET_LR:
            return data
        data = dict(data)
        train = dict(data.get("train") or {})
        train.setdefault("lr", PRESET_LR[preset])
        data["train"] = train
        return data

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_name(cls, value: Any) -> Any:
        return objective_mapping(value)

    @model_validator(mode="after")
    def _objective_fits_data(self) -> ExperimentConfig:
        """Objective options that depend on the data (the rank objective's grid sides <= the image side)."""
        too_big = [g for g in getattr(self.objective, "grid", []) if g > self.data.image_size]
        if too_big:
            raise ValueError(
                f"objective.grid: side {too_big[0]} is larger than data.image_size ({self.data.image_size})"
            )
        if self.evaluation.dependence.enabled and self.data.dataset != "shapes":
            raise ValueError(
                f"evaluation.dependence: needs the built-in shapes data (counterfactual twins), not {self.data.dataset!r}"
            )
        return self


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate an experiment YAML file; errors name the file and the field."""
    from attrsearch.config.base import set_dotted

    data = read_yaml(path)
    if isinstance(data, dict) and "loss" in data and "objective" not in data:
        log.warning(f"{path}: the key 'loss:' is the old spelling of 'objective:' (read as objective; rename it)")
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return validate(ExperimentConfig, data, source=str(path))
