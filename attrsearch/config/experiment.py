"""The experiment schema: what ``attrsearch train`` takes and what a sweep's ``base`` is.

One experiment = dataset + frozen Explanandum (and the recipe that trains it) + Explainer
architecture + loss (seed 002 objective and its weights) + training loop + evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from attrsearch.config.base import StrictModel, read_yaml, validate
from attrsearch.config.data import DataConfig
from attrsearch.config.evaluation import EvaluationConfig
from attrsearch.config.presets import LOSS_PRESETS, PRESET_LR


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
    def _check(self) -> "OcclusionConfig":
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


class ExplanandumConfig(StrictModel):
    arch: str = Field("small_cnn", description="name in the Explanandum zoo (attrsearch models)")
    weights: str | None = Field(None, description="None (random init), 'imagenet' (from the local torch cache) or a weights file")
    checkpoint: Path | None = Field(None, description="an already trained Explanandum file; skips training")
    seed: int = 0
    recipe: ExplanandumRecipe = Field(default_factory=ExplanandumRecipe)
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments of the architecture")


class ExplainerConfig(StrictModel):
    arch: str = Field("explanandum_encoder", description="name in the Explainer zoo (attrsearch models)")
    weights: str | None = Field(None, description="backbone weights: None, 'imagenet' (local torch cache) or a file")
    freeze_encoder: bool = Field(True, description="encoders copied from the Explanandum stay frozen (CASM's detached features)")
    options: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments of the architecture")


class LossConfig(StrictModel):
    """Seed 002's Explainer objective (REFERENCE.md section 1); every weight is a field.

    loss = BCE(F(m*x), y) + lambda_entropy * negEntropy(F((1-m)*x))
           + lambda_area * mean(m) + lambda_nontarget_area * mean(n)
           + lambda_bound * bound(s_c; min_area, max_area) + lambda_tv * (TV(m) + TV(n))
    """

    name: str = Field("explainer", description="objective in attrsearch.objectives")
    preset: str | None = Field(None, description="published preset: vgg16_voc, resnet50_voc, vgg16_coco, resnet50_coco")
    lambda_entropy: float = Field(1.0, ge=0.0, description="lambda_e: negative entropy on the inverted mask")
    lambda_area: float = Field(0.1, ge=0.0, description="total (target) area weight: mean(m)")
    lambda_nontarget_area: float = Field(0.3, ge=0.0, description="non-target area weight: mean(n)")
    lambda_bound: float = Field(1.0, ge=0.0, description="area-bound term weight")
    lambda_tv: float = Field(1.0, ge=0.0, description="anisotropic TV on m and n")
    min_area: float = Field(0.05, gt=0.0, lt=1.0, description="a: lower area bound per present class")
    max_area: float = Field(0.3, gt=0.0, le=1.0, description="b: upper area bound per present class")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        if name is not None and name not in LOSS_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(sorted(LOSS_PRESETS))}")
        return name

    @model_validator(mode="after")
    def _bounds(self) -> "LossConfig":
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area (a={self.min_area}) must be < max_area (b={self.max_area})")
        return self


class EarlyStoppingConfig(StrictModel):
    metric: str = Field("loss", description="'loss' (val loss, the paper) or a metric name of the fast suite")
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.001, ge=0.0)
    enabled: bool = True


class TrainConfig(StrictModel):
    """The Explainer training loop (identical for ``attrsearch train`` and sweep trials)."""

    epochs: int = Field(20, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0.0)
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
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """A loss preset fills the loss weights and train.lr that the file leaves unset."""
        if not isinstance(data, dict):
            return data
        loss = data.get("loss")
        preset = loss.get("preset") if isinstance(loss, dict) else None
        if not isinstance(preset, str) or preset not in LOSS_PRESETS:
            return data
        data = dict(data)
        data["loss"] = {**LOSS_PRESETS[preset], **loss}
        train = dict(data.get("train") or {})
        train.setdefault("lr", PRESET_LR[preset])
        data["train"] = train
        return data


def load_experiment(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate an experiment YAML file; errors name the file and the field."""
    from attrsearch.config.base import set_dotted

    data = read_yaml(path)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return validate(ExperimentConfig, data, source=str(path))
