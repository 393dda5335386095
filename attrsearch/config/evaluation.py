"""Evaluation settings: which metric suite runs when, and the parameters each metric family takes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from attrsearch.config.base import StrictModel


class PanelMember(StrictModel):
    """One classifier of the classifier-agnostic transfer panel (seed 004): an Explanandum zoo entry."""

    arch: str
    seed: int = 0


class TransferConfig(StrictModel):
    panel: list[PanelMember] = Field(
        default_factory=lambda: [PanelMember(arch="small_cnn", seed=1), PanelMember(arch="small_resnet", seed=0)],
        description="other classifiers (architectures / seeds) trained with the Explanandum's recipe",
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="masks are binarised at this value")
    inpaint_radius: int = Field(3, ge=1, description="OpenCV Telea inpainting radius")


class FaithfulnessConfig(StrictModel):
    pixels_per_step: int | None = Field(None, ge=1, description="pixels replaced per step (default: image side, 224 at 224 px)")
    deletion_substrate: Literal["mean", "blur"] = "mean"
    insertion_substrate: Literal["blur", "mean"] = "blur"
    scored_class: Literal["label", "predicted"] = "label"
    max_images: int | None = Field(None, ge=1, description="evaluate deletion/insertion on the first N test images")


class EvaluationConfig(StrictModel):
    epoch_suite: str = Field("fast", description="suite reported after every epoch")
    final_suite: str = Field("full", description="suite run at the end of training")
    split: Literal["val", "test"] = "test"
    batch_size: int = Field(64, ge=1)
    fast_subsample: int = Field(256, ge=1, description="images of the val split scored by the fast suite")
    class_specific_thresholds: list[float] = Field(default_factory=lambda: [round(0.1 * k, 1) for k in range(1, 10)])
    pointing_tolerance: int = Field(15, ge=0, description="pixels (TorchRay's pointing game)")
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    faithfulness: FaithfulnessConfig = Field(default_factory=FaithfulnessConfig)
