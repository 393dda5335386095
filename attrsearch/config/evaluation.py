"""Evaluation settings: which metric suite runs when, and the parameters each metric family takes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from attrsearch.config.base import StrictModel


class PanelMember(StrictModel):
    """One classifier of the classifier-agnostic transfer panel (Zolna, Geras & Cho, 2020): an
    Explanandum zoo entry, trained with the Explanandum's recipe (``epochs`` and ``options`` may
    differ) and cached. ``arch`` and ``options`` are checked against the zoo by ``attrsearch.resolve``."""

    arch: str
    seed: int = 0
    epochs: int | None = Field(None, ge=0, description="training epochs (default: the Explanandum recipe's)")
    options: dict = Field(default_factory=dict, description="architecture keyword arguments (e.g. width)")


class TransferConfig(StrictModel):
    panel: list[PanelMember] = Field(
        default_factory=lambda: [PanelMember(arch="small_cnn", seed=1), PanelMember(arch="small_resnet", seed=0)],
        description="other classifiers (architectures / seeds) trained with the Explanandum's recipe",
    )
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="masks are binarised at m > threshold")
    inpaint_radius: int = Field(3, ge=1, description="OpenCV Telea inpainting radius")


class FaithfulnessConfig(StrictModel):
    pixels_per_step: int | None = Field(
        None, ge=1, description="pixels replaced per step (default: image side, 224 at 224 px as RISE)"
    )
    deletion_substrate: Literal["mean", "blur"] = "mean"
    insertion_substrate: Literal["blur", "mean"] = "blur"
    scored_class: Literal["label", "predicted"] = Field(
        "label", description="label: the present class the Explanandum scores highest; predicted: its top-1 class"
    )
    max_images: int | None = Field(
        None,
        ge=1,
        description="deletion/insertion on the first N images (None: all); each image costs 2 x (steps + 1) forward passes",
    )


class DependenceConfig(StrictModel):
    """The dependence study's per-run measurement (``attrsearch.evaluate.dependence``): on the built-in
    data, the Explanandum's true cue effect on counterfactual twins and the maps' attributed reliance
    on the cue, per case, written to ``tables/dependence.csv``."""

    enabled: bool = Field(
        False, description="measure true cue effects and attributed reliance (built-in shapes data only)"
    )
    images: int = Field(
        200, ge=1, description="the first N images of the evaluation split (their cue cases are scored)"
    )
    p_test: float = Field(
        1.0, gt=0.0, le=1.0, description="cue probability next to a biased object in the scored images (1: every one)"
    )


class EvaluationConfig(StrictModel):
    """Metric suites and parameters; the suite names are checked against the metric registry by
    ``attrsearch.resolve``."""

    epoch_suite: str = Field("fast", description="suite reported after every epoch")
    final_suite: str = Field("full", description="suite run at the end of training")
    split: Literal["val", "test"] = "test"
    batch_size: int = Field(64, ge=1, description="images per attribution call")
    classify_chunk: int | None = Field(
        None,
        ge=1,
        description="images per classifier forward pass; None: 32 at 64 px on CPU (cache-sized), 256 on CUDA",
    )
    classifier_dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="precision of the frozen classifiers' forward passes during evaluation (masked, perturbed, "
        "deletion / insertion images); bfloat16 is opt-in: 1.75x faster on a CPU with native bfloat16, the natural "
        "choice on CUDA, logits within about 1e-3 and deletion / insertion AUCs per image 5e-4 on average (at most 5e-3) from float32",
    )
    fast_subsample: int = Field(
        64, ge=1, description="images of the val split scored by the fast suite's class-specific table"
    )
    class_specific_thresholds: list[float] = Field(default_factory=lambda: [round(0.1 * k, 1) for k in range(1, 10)])
    class_specific_max_images: int | None = Field(
        None,
        ge=1,
        description="full suite: class-specific table on the first N images (None: all); up to C x thresholds forward passes each",
    )
    saliency_crop_threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="salient region of segmentation/saliency_crop: m > threshold"
    )
    pointing_tolerance: int | None = Field(
        None,
        ge=0,
        description="pointing-game hit radius in pixels (strict <); None: 15 px at 224 px scaled to the image side (TorchRay)",
    )
    pointing_ground_truth: Literal["auto", "boxes", "masks"] = Field(
        "auto",
        description="pointing-game ground truth: auto = union of the class's boxes on VOC (TorchRay), else pixel masks "
        "where annotated and boxes elsewhere",
    )
    attribution_normalization: Literal["auto", "always"] = Field(
        "auto",
        description="auto: each method's declared output decides: masks in [0, 1] by construction (the Explainer's "
        "sigmoid masks, extremal perturbation, iGOS++) are kept as they are, score maps (Grad-CAM, RISE, gradients, "
        "LRP, library adapters) are min-max normalised per (image, class), undeclared maps only where they leave "
        "[0, 1]; always: every map is min-max normalised",
    )
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    faithfulness: FaithfulnessConfig = Field(default_factory=FaithfulnessConfig)
    dependence: DependenceConfig = Field(default_factory=DependenceConfig)

    @field_validator("class_specific_thresholds")
    @classmethod
    def _thresholds(cls, values: list[float]) -> list[float]:
        if not values:
            raise ValueError("needs at least one threshold")
        bad = [v for v in values if not 0.0 < v < 1.0]
        if bad:
            raise ValueError(f"thresholds must lie in (0, 1), got {bad}")
        if len(set(values)) != len(values):
            raise ValueError("thresholds must be distinct")
        return sorted(values)
