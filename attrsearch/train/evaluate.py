"""The scoring pipelines of ``attrsearch evaluate``: a trained Explainer checkpoint, or a baseline method.

- ``evaluate_checkpoint``: an Explainer checkpoint and the config stored in it, optionally followed
  by test-time refinement (``refine``: T Adam steps of the ranking objective on each image's maps,
  ``attrsearch.objectives.rank.refine_maps``; ``refined_attribution`` wraps any attribution so);
- ``evaluate_method``: a method of ``attrsearch.attribution.methods`` (Grad-CAM, RISE, ...) against
  the config's Explanandum (from the cache, trained first if missing, as ``attrsearch train``),
  with the same suite and the same ``metrics.json`` keys plus ``attribution/method``,
  ``attribution/options`` (JSON text), ``attribution/description`` (LRP: the zennit variant) and
  ``attribution/seconds_per_image``;
- ``run_method``: what ``run_training`` does for an experiment with ``method:`` set (a sweep trial
  that tunes a method's options): score it once and report the final metrics.

Bad input (unknown method or option, a Grad-CAM layer the model lacks, LRP on a layer zennit has
no rule for) is a one-line ``UserError`` raised by ``check_method`` before any data is built or
any model is trained or loaded: it checks against the Explanandum architecture built untrained.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attrsearch.errors import UserError

CHECKPOINT_METRICS = "metrics.json"  # the "checkpoint" of a method trial: its final metrics


def evaluate_checkpoint(
    checkpoint: Path,
    out: Path,
    suite: str = "full",
    split: str = "test",
    refine: int = 0,
    refine_lr: float | None = None,
) -> dict[str, float]:
    """``attrsearch evaluate``: load an Explainer checkpoint (a file, or a run folder holding
    ``checkpoints/best.pt``) and its config, rebuild the dataset split, the Explanandum and (suites
    with transfer) the panel from that config, evaluate, write ``out``; returns the metrics.
    ``refine``: T steps of test-time refinement after the Explainer (``refined_attribution``)."""
    from attrsearch.metrics.results import write_results

    result = score_explainer(Path(checkpoint), suite=suite, split=split, refine=refine, refine_lr=refine_lr)
    write_results(result, out)
    return result.metrics


def check_refine(steps: int, lr: float | None) -> float:
    """Validate ``--refine T`` / ``--refine-lr LR`` (one-line ``UserError``); returns the learning rate."""
    from attrsearch.objectives.rank import REFINE_LR

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise UserError(f"--refine: expected a number of steps >= 0, got {steps!r}")
    lr = REFINE_LR if lr is None else lr
    if not (math.isfinite(lr) and lr > 0):
        raise UserError(f"--refine-lr: expected a finite learning rate > 0, got {lr!r}")
    return float(lr)


def refine_config(cfg):
    """The ranking objective the refinement optimises: the experiment's own when it trained with
    ``rank``, else ``RankObjective()`` defaults."""
    from attrsearch.config.objectives import RankObjective

    return cfg.objective if isinstance(cfg.objective, RankObjective) else RankObjective()


def refined_attribution(
    attribution: Callable[[Tensor], Tensor], classifier: nn.Module, cfg, steps: int, lr: float | None = None
) -> Callable[[Tensor], Tensor]:
    """``attribution`` followed by ``steps`` Adam steps of the ranking objective (Schinagl et al. 2025)
    on its maps, against ``classifier`` (the frozen Explanandum) with ``refine_config(cfg)``:
    images (B, 3, H, W) normalised -> maps (B, C, H, W) in [0, 1]. ``steps`` 0: ``attribution`` itself.
    The wrapper carries ``refine_steps``, ``refine_lr`` and ``rank`` (the objective used)."""
    from attrsearch.objectives.rank import refine_maps

    lr = check_refine(steps, lr)
    if steps == 0:
        return attribution
    rank = refine_config(cfg)

    def attribute(images: Tensor) -> Tensor:
        return refine_maps(classifier, images, attribution(images), rank, steps, lr=lr)

    attribute.refine_steps, attribute.refine_lr, attribute.rank = steps, lr, rank  # type: ignore[attr-defined]
    return attribute


def timed(attribution: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Wrap an attribution ``images (B, 3, H, W) -> maps (B, C, H, W)`` so it records ``seconds``,
    ``images`` and ``seconds_per_image`` (wall time, synchronised on CUDA) like ``method_attribution``."""

    def attribute(images: Tensor) -> Tensor:
        sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)
        sync()
        start = time.perf_counter()
        maps = attribution(images)
        sync()
        attribute.seconds += time.perf_counter() - start  # type: ignore[attr-defined]
        attribute.images += images.shape[0]  # type: ignore[attr-defined]
        attribute.seconds_per_image = attribute.seconds / attribute.images  # type: ignore[attr-defined]
        return maps

    attribute.seconds, attribute.images, attribute.seconds_per_image = 0.0, 0, float("nan")  # type: ignore[attr-defined]
    return attribute


def score_explainer(
    checkpoint: Path,
    suite: str = "full",
    split: str = "test",
    cfg=None,
    device=None,
    max_images: int | None = None,
    refine: int = 0,
    refine_lr: float | None = None,
):
    """Score an Explainer checkpoint; an ``EvaluationResult`` with ``attribution/seconds_per_image``.
    ``cfg``: evaluate under this experiment (e.g. compare's) instead of the checkpoint's own;
    ``max_images``: the first N images of the split only; ``refine``: T steps of test-time refinement
    after the Explainer (``refined_attribution``; its time counts in ``seconds_per_image``), recorded as
    ``attribution/refine_steps``."""
    from attrsearch.attribution import explainer_attribution
    from attrsearch.data import build_dataset
    from attrsearch.data.scan import scan_dataset
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.metrics.registry import check_suite
    from attrsearch.metrics.suites import SUITES
    from attrsearch.train.checkpoint import load_explainer
    from attrsearch.train.explanandum import get_explanandum, get_panel
    from attrsearch.train.runtime import configure_threads, resolve_device

    check_suite(suite)
    check_refine(refine, refine_lr)
    saved, explainer = load_explainer(checkpoint, "cpu")
    cfg = cfg or saved
    configure_threads(cfg.train.num_threads)
    device = device or resolve_device(cfg.train.device)
    explainer.to(device)
    scan_dataset(cfg.data, cfg.cache_dir)  # every image and mask (all splits: the Explanandum may train here)
    dataset = build_dataset(cfg.data, split, cfg.cache_dir)
    capped = max_images is not None and max_images < len(dataset)
    if capped:
        dataset = FirstImages(dataset, max_images)
    explanandum = get_explanandum(cfg, device)
    panel = get_panel(cfg, device) if SUITES[suite].uses("transfer") else []
    refined = refined_attribution(explainer_attribution(explainer), explanandum, cfg, refine, refine_lr)
    attribute = timed(refined)
    result = evaluate(attribute, explanandum, dataset, cfg.evaluation, suite=suite, panel=panel, device=device)
    result.metrics["attribution/seconds_per_image"] = attribute.seconds_per_image
    result.metrics["attribution/images"] = float(len(dataset))
    result.metrics["attribution/refine_steps"] = float(refine)
    result.params["attribution/method"] = "explainer"
    description = f"Explainer {cfg.explainer.arch} ({Path(checkpoint)})"
    if refine:
        rank = refined.rank  # type: ignore[attr-defined]
        description += (
            f" + {refine} steps of test-time refinement (rank objective, Adam lr {refined.refine_lr:g}, "  # type: ignore[attr-defined]
            f"grid {rank.grid[0]}, {rank.steps} steps, reference {rank.reference})"
        )
    result.params["attribution/description"] = description
    if capped:
        result.notes.append(f"explainer: scored on the first {len(dataset)} images of the {split} split (capped)")
    return result


def num_classes_hint(cfg) -> int:
    """The class count a config implies without building its data (only the head's width depends on it)."""
    data = cfg.data
    if data.dataset == "shapes":
        return data.shapes.num_classes
    classes = getattr(getattr(data, data.dataset, None), "classes", None)
    return len(classes) if classes else {"voc": 20, "coco": 80}.get(data.dataset, 2)


def untrained_explanandum(cfg) -> nn.Module:
    """The config's Explanandum architecture with random weights, in eval mode (cheap: for checks)."""
    from attrsearch.models import create_explanandum

    model = create_explanandum(
        cfg.explanandum.arch, num_classes_hint(cfg), image_size=cfg.data.image_size, **cfg.explanandum.options
    )
    return model.eval()


def check_method(cfg, name: str, options: dict[str, Any] | None = None, model: nn.Module | None = None):
    """Validate a method and its options against the config's Explanandum architecture; returns the
    validated options. One-line ``UserError`` for an unknown method or option, a CAM layer the model
    lacks (listing the valid ones) and LRP on a module zennit has no rule for. No data, no training."""
    from attrsearch.attribution.methods import resolve_method
    from attrsearch.attribution.methods.layers import find_layer
    from attrsearch.attribution.methods.lrp import LRPOptions, check_supported

    _, opts = resolve_method(name, options)
    model = untrained_explanandum(cfg) if model is None else model
    if "layer" in type(opts).model_fields:
        find_layer(model, opts.layer)
    if isinstance(opts, LRPOptions):
        check_supported(model, opts)
    return opts


class FirstImages(torch.utils.data.Dataset):
    """The first ``count`` samples of a dataset (same ``info`` and ``split``): a cap for slow methods."""

    def __init__(self, dataset, count: int) -> None:
        self.dataset, self.count = dataset, min(count, len(dataset))
        self.info, self.split = dataset.info, getattr(dataset, "split", "")

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.dataset[index]


def score_method(
    cfg,
    name: str,
    options: dict[str, Any] | None = None,
    suite: str = "full",
    split: str = "test",
    max_images: int | None = None,
    device: torch.device | None = None,
    explanandum: nn.Module | None = None,
):
    """Score a method against the config's Explanandum (an ``EvaluationResult``); checks first.

    ``max_images``: the first N images of the split only (``attribution/images`` records the count
    and a note says so). ``explanandum``: an already loaded frozen Explanandum (compare reuses one).
    """
    from attrsearch.attribution.methods import method_attribution
    from attrsearch.data import build_dataset
    from attrsearch.data.scan import scan_dataset
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.metrics.registry import check_suite
    from attrsearch.metrics.suites import SUITES
    from attrsearch.train.explanandum import get_explanandum, get_panel
    from attrsearch.train.runtime import configure_threads, resolve_device

    check_suite(suite)
    opts = check_method(cfg, name, options)  # before any work
    configure_threads(cfg.train.num_threads)
    device = device or resolve_device(cfg.train.device)
    scan_dataset(cfg.data, cfg.cache_dir)  # every image and mask (all splits: the Explanandum may train here)
    dataset = build_dataset(cfg.data, split, cfg.cache_dir)
    capped = max_images is not None and max_images < len(dataset)
    if capped:
        dataset = FirstImages(dataset, max_images)
    model = explanandum if explanandum is not None else get_explanandum(cfg, device)
    panel = get_panel(cfg, device) if SUITES[suite].uses("transfer") else []
    attribute = method_attribution(model, name, opts.model_dump())
    result = evaluate(attribute, model, dataset, cfg.evaluation, suite=suite, panel=panel, device=device)
    result.metrics["attribution/seconds_per_image"] = attribute.seconds_per_image
    result.metrics["attribution/images"] = float(len(dataset))
    result.params["attribution/method"] = name
    result.params["attribution/options"] = json.dumps(attribute.options, sort_keys=True, default=str)
    result.params["attribution/description"] = attribute.description
    if capped:
        result.notes.append(f"{name}: scored on the first {len(dataset)} images of the {split} split (capped)")
    return result


def evaluate_method(
    cfg,
    name: str,
    options: dict[str, Any] | None,
    out: Path,
    suite: str = "full",
    split: str | None = None,
    max_images: int | None = None,
):
    """``attrsearch evaluate --method NAME``: score it (``score_method``) and write ``out/metrics.json``
    and ``out/tables/*.csv``; ``split`` None: the config's ``evaluation.split``. Returns the result."""
    from attrsearch.metrics.results import write_results

    result = score_method(cfg, name, options, suite, split or cfg.evaluation.split, max_images)
    write_results(result, out)
    return result


def run_method(cfg, out: Path, *, resume: bool = True, report=None) -> dict[str, Any]:
    """``run_training`` for an experiment with ``method:`` set: no Explainer is trained.

    Scores ``cfg.method`` with the final suite on ``cfg.evaluation.split`` into ``out`` and reports
    once, finished, with the final metrics (``epoch`` 1) and ``out/checkpoints`` (holding only
    ``metrics.json``) as the checkpoint, so a sweep trial needs nothing else. Resuming a finished
    trial (its ``metrics.json`` in ``out`` or in the restored ``checkpoints``) reports nothing and
    returns the saved metrics, like a finished Explainer run.
    """
    from attrsearch.metrics.results import write_results
    from attrsearch.train.run import prepare_output_dir

    method = cfg.method
    check_method(cfg, method.name, method.options)
    out = Path(out)
    ckpt = out / "checkpoints"
    if resume:
        for saved in (out / CHECKPOINT_METRICS, ckpt / CHECKPOINT_METRICS):
            if saved.is_file():
                metrics = json.loads(saved.read_text())
                if metrics.get("attribution/method") == method.name:
                    return {"metrics": metrics, "metrics_path": saved, "checkpoint_path": None, "history": {}}
    prepare_output_dir(cfg, out, resume)
    started = time.perf_counter()
    result = score_method(
        cfg, method.name, method.options, cfg.evaluation.final_suite, cfg.evaluation.split, method.max_images
    )
    result.metrics["time/evaluation_s"] = time.perf_counter() - started
    path = write_results(result, out)
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / CHECKPOINT_METRICS).write_text(path.read_text())
    metrics = json.loads(path.read_text())
    if report is not None:
        report({"epoch": 1.0, **metrics}, ckpt, True)
    return {"metrics": metrics, "metrics_path": path, "checkpoint_path": None, "history": {}}


def method_from_options(name: str, items: list[str] | None) -> dict[str, Any]:
    """``--option K=V`` strings -> an options mapping (values parsed as YAML); one-line errors."""
    from attrsearch.attribution.methods import parse_option_values

    if not name:
        raise UserError("--method: expected a method name")
    return parse_option_values(items or [])
