"""Retraining against a randomised Explanandum: the model-randomisation test for an amortized Explainer.

An Explainer reads only the image at inference, so randomising the classifier after training
changes nothing (Adebayo et al. 2018's cascading test passes it by construction). The test that
means something retrains the same Explainer configuration against a randomised Explanandum and
compares its maps with the real-model Explainer's (``attrsearch.metrics.randomisation``):

- ``random_init``: the Explanandum as constructed, never trained (``explanandum.weights: null``,
  ``explanandum.recipe.epochs: 0``: a config can name it directly; cached like any Explanandum);
- ``shuffled_labels``: trained on a fixed permutation of the label vectors
  (``explanandum.recipe.shuffle_labels: true``; Adebayo et al.'s data randomisation).

The reseed floor is the same configuration retrained with ``seed + 1``; the randomised variants are
trained with that seed too, so a variant and the reseed run differ from the real run in the same
Explainer seed and from each other only in the Explanandum (with the real run's seed, an Explainer
that training moves little would look close to the real one through its shared initialisation
alone: on the tiny built-in setting that gave indices below -0.8). Each Explainer is trained
by ``run_experiment`` into ``out/<name>/`` (resumable: a finished run is reused), and the maps
of the first ``images`` labelled images of ``split`` are compared on their labelled classes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from attrsearch.attribution import explainer_attribution
from attrsearch.config import ExperimentConfig
from attrsearch.errors import UserError
from attrsearch.evaluate.compare import sanity_batch
from attrsearch.evaluate.experiment import run_experiment
from attrsearch.metrics.randomisation import randomisation_scores
from attrsearch.train.checkpoint import load_explainer
from attrsearch.train.runtime import resolve_device

log = logging.getLogger(__name__)

VARIANTS = ("random_init", "shuffled_labels")
RESULTS_FILE = "randomisation.json"


def randomised_config(cfg: ExperimentConfig, variant: str) -> ExperimentConfig:
    """``cfg`` with its Explanandum replaced by the randomised ``variant`` (``VARIANTS``); the Explainer
    configuration is unchanged. A given ``explanandum.checkpoint`` is dropped: the variant is trained."""
    e = cfg.explanandum
    if variant == "random_init":
        recipe = e.recipe.model_copy(update={"epochs": 0})
        explanandum = e.model_copy(update={"weights": None, "checkpoint": None, "recipe": recipe})
    elif variant == "shuffled_labels":
        recipe = e.recipe.model_copy(update={"shuffle_labels": True})
        explanandum = e.model_copy(update={"checkpoint": None, "recipe": recipe})
    else:
        raise UserError(f"randomisation variant: unknown {variant!r}; choose one of {', '.join(VARIANTS)}")
    return cfg.model_copy(update={"explanandum": explanandum, "name": f"{cfg.name.removesuffix('-reseed')}-{variant}"})


def reseed_config(cfg: ExperimentConfig, offset: int = 1) -> ExperimentConfig:
    """``cfg`` with the Explainer's seed moved by ``offset`` (the same Explanandum): the reseed floor."""
    return cfg.model_copy(update={"seed": cfg.seed + offset, "name": f"{cfg.name}-reseed"})


def _maps(checkpoint: Path, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    _, explainer = load_explainer(checkpoint, device)
    with torch.inference_mode():
        return explainer_attribution(explainer)(images.to(device)).float().cpu()


def retrain_study(
    cfg: ExperimentConfig,
    out: Path,
    *,
    variants: tuple[str, ...] = VARIANTS,
    images: int = 32,
    split: str = "test",
    n_resamples: int = 2000,
    seed_offset: int = 1,
) -> dict[str, float]:
    """Train the real-model Explainer, its reseed (``seed + seed_offset``) and one Explainer per randomised
    variant (with the reseed's seed) into
    ``out/{real,reseed,<variant>}``, compare their maps on ``images`` labelled images of ``split``
    and write ``out/randomisation.json``; returns the flat scores of ``randomisation_scores``."""
    configs = {"real": cfg, "reseed": reseed_config(cfg, seed_offset)}
    # the variants share the reseed run's Explainer seed; unknown variants fail before any training
    configs.update({v: randomised_config(reseed_config(cfg, seed_offset), v) for v in variants})
    out = Path(out)
    checkpoints = {}
    for name, run_cfg in configs.items():
        log.info("randomisation: training the %s Explainer into %s", name, out / name)
        checkpoints[name] = Path(run_experiment(run_cfg, out / name, resume=True)["checkpoint_path"])
    batch, targets = sanity_batch(cfg, split, images)
    device = resolve_device(cfg.train.device)
    maps = {name: _maps(path, batch, device) for name, path in checkpoints.items()}
    scores = randomisation_scores(
        maps["real"], maps["reseed"], {v: maps[v] for v in variants}, targets, n_resamples=n_resamples, seed=cfg.seed
    )
    scores["randomisation/pairs"] = float(targets.sum())
    record: dict[str, Any] = {
        "split": split,
        "images": int(batch.shape[0]),
        "seeds": {name: c.seed for name, c in configs.items()},
        "metrics": scores,
    }
    (out / RESULTS_FILE).write_text(json.dumps(record, indent=2, allow_nan=True))
    return scores


def method_randomisation(
    cfg: ExperimentConfig,
    *,
    variants: tuple[str, ...] = VARIANTS,
    images: int = 32,
    split: str = "test",
    n_resamples: int = 2000,
    seed_offset: int = 1,
) -> dict[str, Any]:
    """The model-randomisation test of a baseline method (``cfg.method``; Adebayo et al. 2018): a method
    trains nothing, so its maps on the randomised Explananda (``randomised_config``: never trained,
    shuffled labels) are compared directly with its maps on the real one, on the labelled classes of
    ``images`` labelled images of ``split``, by the same measures and index as ``retrain_study``. The
    floor is the method run again with its own ``seed`` option moved by ``seed_offset`` (RISE's masks); a
    method without a seed gives the same maps again (similarity 1, index = 1 - similarity); the variants
    run with the floor's seed. Maps are
    normalised per class as the evaluation normalises them. Returns the record ``retrain_study`` writes."""
    from attrsearch.attribution import normalize_maps, output_kind_of
    from attrsearch.attribution.methods.registry import method_attribution
    from attrsearch.evaluate.checks import check_method
    from attrsearch.train.explanandum import get_explanandum

    if cfg.method is None:
        raise UserError("method randomisation: the config names no method (method.name)")
    options = check_method(cfg, cfg.method.name, cfg.method.options)
    seeded = "seed" in type(options).model_fields
    reseeded = options.model_copy(update={"seed": options.seed + seed_offset}) if seeded else options
    device = resolve_device(cfg.train.device)
    batch, targets = sanity_batch(cfg, split, images)

    def maps(run_cfg: ExperimentConfig, opts: Any) -> torch.Tensor:
        model = get_explanandum(run_cfg, device, progress=False)
        attribute = method_attribution(model, cfg.method.name, opts.model_dump())
        raw = attribute(batch.to(device)).detach().float().cpu()
        return normalize_maps(raw, cfg.evaluation.attribution_normalization, output_kind_of(attribute))[0]

    real = maps(cfg, options)
    reseed = maps(cfg, reseeded) if seeded else real
    # The variants run with the floor's seed, as retrain_study's variants train with the reseed's: with the
    # real run's seed, RISE's maps on any model share its mask noise and look closer than a reseed does.
    randomised = {v: maps(randomised_config(cfg, v), reseeded) for v in variants}
    scores = randomisation_scores(real, reseed, randomised, targets, n_resamples=n_resamples, seed=cfg.seed)
    scores["randomisation/pairs"] = float(targets.sum())
    return {"split": split, "images": int(batch.shape[0]), "reseeded": seeded, "metrics": scores}
