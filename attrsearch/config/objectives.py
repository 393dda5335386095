"""Training objectives of an Explainer: a union of configs told apart by ``name``.

``objective: {name: wysiwyc, ...}`` is the objective of Stalder et al. 2022 ("What You See is What
You Classify", eq. 1). Files written before objectives had names use ``loss:`` with the same
fields; that spelling is still read (``loss.name: explainer`` means ``wysiwyc``) and errors then
name ``loss.<field>``, the key the file used.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from attrsearch.config.base import StrictModel, register_union_tags
from attrsearch.config.presets import LOSS_PRESETS

# Old objective names (the ``loss.name`` of earlier files) -> current names.
LEGACY_NAMES = {"explainer": "wysiwyc"}
DEFAULT_OBJECTIVE = "wysiwyc"


class AreaBounds(StrictModel):
    """Area bounds a < b: each present class's mask should cover at least a and at most b of the image."""

    ORDERED_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (("min_area", "max_area"),)

    min_area: float = Field(0.05, gt=0.0, lt=1.0, description="a: lower area bound per present class")
    max_area: float = Field(0.3, gt=0.0, le=1.0, description="b: upper area bound per present class")

    @model_validator(mode="after")
    def _bounds(self) -> AreaBounds:
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area (a={self.min_area}) must be < max_area (b={self.max_area})")
        return self


class WysiwycObjective(AreaBounds):
    """Stalder et al. 2022, eq. 1; every weight is a field (the paper's single lambda_a is split into
    the three area weights as in the authors' public code).

    loss = BCE(F(m*x), y) + lambda_entropy * negEntropy(F((1-m)*x))
           + lambda_area * mean(m) + lambda_nontarget_area * mean(n)
           + lambda_bound * bound(s_c; min_area, max_area) + lambda_tv * (TV(m) + TV(n))
    """

    name: Literal["wysiwyc"] = "wysiwyc"
    preset: str | None = Field(None, description="published preset: vgg16_voc, resnet50_voc, vgg16_coco, resnet50_coco")
    lambda_entropy: float = Field(1.0, ge=0.0, description="lambda_e: negative entropy on the inverted mask")
    lambda_area: float = Field(0.1, ge=0.0, description="total (target) area weight: mean(m)")
    lambda_nontarget_area: float = Field(0.3, ge=0.0, description="non-target area weight: mean(n)")
    lambda_bound: float = Field(1.0, ge=0.0, description="area-bound term weight")
    lambda_tv: float = Field(1.0, ge=0.0, description="anisotropic TV on m and n")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        if name is not None and name not in LOSS_PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(sorted(LOSS_PRESETS))}")
        return name


# Zolna et al. 2020, section 3.2 / Table 2: the lambda_r tuned for each thinning strategy (entropy score).
CASM_LAMBDA_R = {"F": 2.5, "L": 14.0, "FL": 7.5, "L100": 10.0, "L1000": 10.0}


class CasmObjective(StrictModel):
    """Classifier-agnostic saliency (Zolna, Geras & Cho 2020, eqs. 5-8, Alg. 1).

    The classifier (started from the trained Explanandum) is trained with the masker:
    SGD on 0.5 * (BCE(F(x), y) + BCE(F((1-m)*x), y)) (eq. 8, multi-label BCE here). The masker
    minimises negEntropy(F((1-m)*x)) over the images F classifies correctly + lambda_r * mean(m)
    (eq. 7), where F is the current classifier with probability ``current_probability``, otherwise
    a snapshot drawn uniformly from the pool the thinning strategy keeps. The mask is
    class-agnostic: one map, broadcast to every class.
    """

    name: Literal["casm"] = "casm"
    thinning: Literal["F", "L", "FL", "L100", "L1000"] = Field(
        "L100", description="snapshot pool: F (fixed first classifier, not trained), L (latest), FL, L100, L1000"
    )
    lambda_r: float | None = Field(
        None, ge=0.0, description="area weight; default: the paper's tuned value for the thinning"
    )
    current_probability: float = Field(
        0.5, ge=0.0, le=1.0, description="chance of scoring against the current classifier"
    )
    max_snapshots: int = Field(
        30, ge=1, description="L100 / L1000: at most this many snapshots (a random one is dropped)"
    )
    classifier_lr: float = Field(1e-3, gt=0.0, description="the classifier's SGD learning rate")
    classifier_momentum: float = Field(0.9, ge=0.0, lt=1.0)
    classifier_weight_decay: float = Field(1e-4, ge=0.0)
    classifier_in_panel: bool = Field(False, description="add the co-trained classifier to the transfer panel")

    @model_validator(mode="after")
    def _default_lambda_r(self) -> CasmObjective:
        if self.lambda_r is None:
            object.__setattr__(self, "lambda_r", CASM_LAMBDA_R[self.thinning])
        return self

    @property
    def class_agnostic(self) -> bool:
        """One mask for every class (the Explainer has one output map, broadcast to C)."""
        return True

    @property
    def snapshot_every(self) -> int | None:
        """Classifier steps between snapshots (None: F / L / FL keep fixed slots)."""
        return {"L100": 100, "L1000": 1000}.get(self.thinning)


class RtisObjective(StrictModel):
    """Real-time image saliency (Dabkowski & Gal 2017, eq. 5), with per-class output maps standing
    for the paper's class selector (as adapted by Stalder et al. 2022):

    L = lambda_tv * TV_p(m) + lambda_area * (mean(m) + eps)^area_power - lambda_preserver * log p_c(Phi(x, m))
        + lambda_destroyer * p_c(Phi(x, 1 - m))^destroyer_power

    for the map m of a present class c drawn per image; Phi replaces the masked region by a blurred
    copy (probability ``blur_probability``) or a random colour plus noise. A ``fake_fraction`` of the
    images is given an absent class, whose map must stay empty (area and TV terms only).
    """

    name: Literal["rtis"] = "rtis"
    lambda_tv: float = Field(0.5, ge=0.0, description="smoothness weight (TV with squared differences)")
    tv_power: float = Field(2.0, gt=0.0, description="power of the neighbour differences in TV")
    lambda_area: float = Field(8.0, ge=0.0, description="area weight")
    area_power: float = Field(0.3, gt=0.0, description="power of the mean mask")
    lambda_preserver: float = Field(0.3, ge=0.0, description="weight of -log p_c on the preserved image")
    lambda_destroyer: float = Field(5.0, ge=0.0, description="weight of p_c^power on the destroyed image")
    destroyer_power: float = Field(0.3, gt=0.0)
    blur_probability: float = Field(0.5, ge=0.0, le=1.0, description="chance the alternative image is a blur")
    blur_sigma: float = Field(
        10 / 224, gt=0.0, le=1.0, description="blur sigma as a fraction of the image side (10 px at 224)"
    )
    noise_std: float = Field(0.2, ge=0.0, description="noise on the random colour (normalised units)")
    fake_fraction: float = Field(0.3, ge=0.0, lt=1.0, description="share of images scored on an absent class")


class RankObjective(StrictModel):
    """Learning to rank pixel importance (Schinagl et al. 2025): soft deletion AUC - soft insertion
    AUC of the scored class's sigmoid probability, the importance ranking on a G x G grid relaxed by
    Gumbel-Sinkhorn (Mena et al. 2018), S soft top-k perturbation steps towards a reference image.
    """

    name: Literal["rank"] = "rank"
    grid: list[int] = Field([8], min_length=1, description="grid sides G; one is drawn per training step")
    steps: int = Field(8, ge=1, description="S: perturbation steps of the soft deletion / insertion curves")
    temperature: float = Field(0.1, gt=0.0, description="Gumbel-Sinkhorn temperature tau")
    noise_scale: float = Field(0.1, ge=0.0, description="Gumbel noise scale (0: plain Sinkhorn)")
    sinkhorn_iterations: int = Field(
        5, ge=1, description="differentiable Sinkhorn steps (after converging without a graph)"
    )
    sinkhorn_tolerance: float = Field(
        1e-3, gt=0.0, lt=1.0, description="row/column sums within this of 1 before the differentiable steps"
    )
    sinkhorn_max_iterations: int = Field(200, ge=1, description="cap on the gradient-free Sinkhorn iterations")
    reference: Literal["black", "mean", "blur"] = Field("blur", description="what replaces the removed cells")
    target: Literal["label", "predicted"] = Field(
        "label", description="scored class: a present label or the top prediction"
    )
    lambda_area: float = Field(0.1, ge=0.0, description="mean of every class map (keeps unscored maps empty)")

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: list[int]) -> list[int]:
        if any(g < 1 for g in grid) or len(set(grid)) != len(grid):
            raise ValueError(f"expected distinct grid sides >= 1 (got {grid})")
        return grid


class SegmenterObjective(StrictModel):
    """A model-free reference: the Explainer trained as a segmenter on the per-class ground-truth masks,
    with no classifier (what a mask reaches from the data alone). Pixel-wise BCE of each class map to
    its mask (absent classes to empty), void and unannotated pixels excluded; object pixels weighted
    by ``positive_weight``."""

    name: Literal["segmenter"] = "segmenter"
    positive_weight: float = Field(1.0, gt=0.0, description="weight of object pixels against background pixels")


def objective_name(config: type[StrictModel]) -> str:
    """The ``name`` an objective config class is chosen by: the one value of its ``name: Literal[...]``."""
    return config.model_fields["name"].default


# The objectives' configs; an objective's name is written once, in its config's ``name`` field. Each
# objective's loss (``attrsearch.objectives``) registers itself against its config class.
CONFIG_CLASSES: tuple[type[StrictModel], ...] = (
    WysiwycObjective,
    CasmObjective,
    RtisObjective,
    RankObjective,
    SegmenterObjective,
)
OBJECTIVE_CONFIGS: dict[str, type[StrictModel]] = {objective_name(c): c for c in CONFIG_CLASSES}
register_union_tags(OBJECTIVE_CONFIGS)

ObjectiveConfig = Annotated[Union[CONFIG_CLASSES], Field(discriminator="name")]  # noqa: UP007


def objective_mapping(value: Any) -> Any:
    """Before validation: fill the default name, map old names and apply a published preset (the
    preset fills the weights the file leaves unset; fields given explicitly win)."""
    if not isinstance(value, dict):
        return value
    value = dict(value)
    name = value.get("name", DEFAULT_OBJECTIVE)
    value["name"] = LEGACY_NAMES.get(name, name) if isinstance(name, str) else name
    preset = value.get("preset")
    if isinstance(preset, str) and preset in LOSS_PRESETS:
        value = {**LOSS_PRESETS[preset], **value}
    return value
