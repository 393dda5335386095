"""The metric registry: every name the evaluation writes, its direction, family and meaning.

Sweeps take Ray Tune's ``mode`` from ``metric_mode(name)``; ``attrsearch metrics`` prints
``format_registry()``. Entries without a direction are records (counts, parameters, flags) that
are written next to the scores but are not something to optimise.
Suites (declared in ``metrics.suites``): ``full`` (everything) and ``fast`` (cheap, reported after every
epoch of a sweep trial); ``fast=True`` below marks the names the fast suite writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attrsearch.errors import UserError
from attrsearch.metrics.suites import SUITES as _SUITES

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    direction: Direction | None  # None: a record (count, parameter, flag), not a score
    family: str
    meaning: str
    fast: bool = False  # also part of the fast suite
    method_only: bool = False  # written only when a baseline method (not an Explainer) is scored


_SPECS: dict[str, MetricSpec] = {}


def _add(name: str, direction: Direction | None, meaning: str, fast: bool = False, method_only: bool = False) -> None:
    if name in _SPECS:
        raise ValueError(f"metric {name!r} is registered twice")
    _SPECS[name] = MetricSpec(name, direction, name.split("/")[0], meaning, fast, method_only)


_SEG = {
    "accuracy": (
        "max",
        "soft pixel accuracy of the target mask vs the ground truth union (Stalder et al. 2022 Tab. 2)",
    ),
    "iou": ("max", "continuous IoU sum(min(m,g))/sum(max(m,g)) of the target mask (Stalder et al. 2022 Tab. 2)"),
    "saliency": (
        "min",
        "log(max(area,0.05)) - log(sum softmax_Y(F(m*x))), in-place variant (Stalder et al. 2022 eq. 9)",
    ),
    "saliency_crop": ("min", "Dabkowski & Gal saliency: tightest box of m>0.5, rescaled keeping aspect, classified"),
    "mae": ("min", "mean |m - g| over valid pixels (Stalder et al. 2022 Tab. 2)"),
}
for _metric, (_dir, _meaning) in _SEG.items():
    _add(f"segmentation/{_metric}", _dir, _meaning, fast=_metric == "iou")  # type: ignore[arg-type]
_add("segmentation/images", None, "annotated images with at least one label used by segmentation/* and sanity/*")

_ROWS = {"zero": "mask 0", "half": "mask 0.5", "one": "mask 1", "gt": "ground-truth mask"}
for _row, _what in _ROWS.items():
    for _metric, (_dir, _meaning) in _SEG.items():
        _meaning = f"segmentation/{_metric} of the constant {_what} (reference row)"
        _add(f"sanity/{_row}/{_metric}", _dir, _meaning)  # type: ignore[arg-type]

_add(
    "class_specific/diagonal",
    "max",
    "mean softmax x100 of the target class with its own thresholded mask (Stalder et al. 2022 Tab. 1)",
    fast=True,
)
_add(
    "class_specific/off_diagonal",
    "min",
    "mean softmax x100 of the target class with other classes' masks (Stalder et al. 2022 Tab. 1)",
    fast=True,
)
_add("class_specific/selectivity", "max", "class_specific/diagonal - class_specific/off_diagonal", fast=True)
_add("class_specific/images", None, "images scored by the class-specific table (fast suite: a subsample)", fast=True)

_add("classification/clean_f1", None, "Explanandum F1 on the unmasked images (reference)")
_add("classification/masked_f1", "max", "Explanandum F1 on m*x (continuous target mask, as in training)", fast=True)
_add("classification/inverted_f1", "min", "Explanandum F1 on (1-m)*x")

_add("transfer/masked_in", "max", "panel mean F1 on binarised masked-in images m*x (CASM)")
_add("transfer/masked_out", "min", "panel mean F1 on masked-out images (1-m)*x (CASM)")
_add("transfer/inpainted_out", "min", "panel mean F1 on Telea-inpainted masked-out images (CASM)")
_add("transfer/clean", None, "panel mean F1 on the unmasked images (reference)")
_add("transfer/masked_in_entropy", "min", "panel mean softmax entropy / log C on masked-in images")
_add("transfer/masked_out_entropy", "max", "panel mean softmax entropy / log C on masked-out images")
_add("transfer/inpainted_out_entropy", "max", "panel mean softmax entropy / log C on inpainted masked-out images")
_add("transfer/panel_size", None, "classifiers in the panel (0: none given, the Explanandum itself was scored)")
_add("transfer/threshold", None, "masks are binarised at m > threshold")

_add("localization/le", "min", "localisation error: no GT box of the class with IoU > 0.5 (CASM)")
_add("localization/om", "min", "official metric error: LE or the class not predicted (CASM)")
_add("localization/f1", "max", "continuous F1 of the class mask vs its best GT box (CASM)")
_add("localization/cases", None, "(image, present class) cases with a GT box")

_add("faithfulness/deletion_auc", "min", "RISE deletion AUC of the scored class's sigmoid probability")
_add("faithfulness/insertion_auc", "max", "RISE insertion AUC of the scored class's sigmoid probability")
_add("faithfulness/pixels_per_step", None, "pixels changed per deletion/insertion step")
_add("faithfulness/steps", None, "steps per curve (the curve has steps + 1 points)")
_add("faithfulness/images", None, "images with deletion/insertion curves")

_add(
    "pointing_game/accuracy",
    "max",
    "mean over classes of hits/(hits+misses); hit: a GT pixel strictly closer than the tolerance to the map's max "
    "(Zhang et al. 2018, TorchRay's benchmark)",
)
_add(
    "pointing_game/difficult",
    "max",
    "pointing_game/accuracy on the difficult cases of Zhang et al. 2018: GT < 1/4 of the image and another class present",
)
_add("pointing_game/cases", None, "(image, present class) cases")
_add("pointing_game/difficult_cases", None, "cases in the difficult subset")
_add("pointing_game/tolerance", None, "hit radius in pixels (default 15 px at 224 px, scaled to the image side)")

_add("context/reliance", "min", "share of a biased class's attribution on its planted context cue (built-in data)")
_add(
    "context/riw",
    "min",
    "relative importance of the cue: context/reliance divided by the cue's share of the image area "
    "(Clark, Oliveira, Wilming & Haufe 2026)",
)
_add("context/object_mass", "max", "share of a biased class's attribution on the object itself (built-in data)")
_add("context/cases", None, "(image, biased class) cases with the cue present")

_add("mask/area", "min", "mean of the target mask m (share of the image kept)", fast=True)
_add("mask/nontarget_area", "min", "mean of the non-target mask n (max over absent classes)")
_add("mask/entropy", "min", "mean binary entropy (bits) of the target mask values: 0 = binary")

_add(
    "attribution/minmax_normalized",
    None,
    "1 if some maps left [0,1] and were min-max normalised per image and class",
    fast=True,
)

_add(
    "attribution/seconds_per_image",
    None,
    "wall seconds per image of a baseline method's maps (all classes)",
    method_only=True,
)
_add(
    "attribution/images",
    None,
    "images a baseline method was scored on (a cap may make it fewer than the split)",
    method_only=True,
)
_add(
    "attribution/refine_steps",
    None,
    "test-time refinement steps of the ranking objective after the Explainer (attrsearch evaluate --refine; 0: none)",
    method_only=True,
)
_add("attribution/class_agnostic", None, "1 if one mask serves every class (CASM's masker), 0 for per-class masks")

SUITES: dict[str, str] = {name: suite.description for name, suite in _SUITES.items()}

# Parameters written as text next to the scores (metrics.json), not registered as metrics.
TEXT_RECORDS = {
    "faithfulness/deletion_substrate": "mean (zero in normalised space) or blur",
    "faithfulness/insertion_substrate": "blur (Gaussian kernel 11, sigma 5) or mean",
    "faithfulness/scored_class": "label (the present class scored highest) or predicted (top-1)",
    "faithfulness/probability": "sigmoid (multi-label Explanandum)",
    "attribution/method": "the baseline method scored (attrsearch evaluate --method)",
    "attribution/options": "its validated options, as JSON text",
    "attribution/description": "the method in words (LRP: the zennit composite and canonizers used)",
    "segmentation/ground_truth": "what segmentation/* and sanity/* are scored against: masks, boxes (box masks:"
    " the data has no segmentation), masks+boxes, or none (those metrics omitted)",
    "pointing_game/ground_truth": "boxes, or the dataset's pixel ground truth (masks, or boxes drawn as masks)",
}


def get_spec(name: str) -> MetricSpec:
    if name not in _SPECS:
        raise UserError(f"unknown metric {name!r}; run 'attrsearch metrics' for the list")
    return _SPECS[name]


def is_score(name: str) -> bool:
    """True for a registered metric with a direction (not a count, parameter or flag)."""
    spec = _SPECS.get(name)
    return spec is not None and spec.direction is not None


def metric_names(suite: str = "full", methods: bool = False) -> list[str]:
    """Registered names of a suite (``UserError`` for an unknown suite); ``methods`` adds the records
    written only when a baseline method is scored."""
    check_suite(suite)
    return [n for n, s in _SPECS.items() if (suite == "full" or s.fast) and (methods or not s.method_only)]


def check_suite(suite: str) -> str:
    if suite not in SUITES:
        raise UserError(f"unknown metric suite {suite!r}; choose one of {', '.join(SUITES)}")
    return suite


def metric_mode(name: str) -> Direction:
    """Ray Tune's mode for a metric: "max" or "min". Unknown names and records are a ``UserError``."""
    spec = get_spec(name)
    if spec.direction is None:
        raise UserError(f"metric {name!r} is a record ({spec.meaning}), not a score to optimise")
    return spec.direction


def format_registry() -> str:
    """The registry as text: one line per metric, grouped by family, then the suites."""
    lines = [f"{'name':34s} {'mode':5s} {'suite':9s} meaning"]
    family = None
    for spec in _SPECS.values():
        if spec.family != family:
            family = spec.family
            lines.append(f"[{family}]")
        suites = "full,fast" if spec.fast else "full"
        lines.append(f"  {spec.name:32s} {spec.direction or '-':5s} {suites:9s} {spec.meaning}")
    lines.append("[text records in metrics.json]")
    for name, meaning in TEXT_RECORDS.items():
        lines.append(f"  {name:32s} {'-':5s} {'full':9s} {meaning}")
    lines.append("suites:")
    for name, meaning in SUITES.items():
        lines.append(f"  {name:8s} {meaning}")
    lines.append("mode '-': a count, parameter or flag written next to the scores, not a score to optimise")
    return "\n".join(lines)
