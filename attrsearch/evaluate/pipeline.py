"""The scoring pipeline of ``attrsearch evaluate``, written once for every source of maps.

``score`` rebuilds the dataset split, the Explanandum (from the cache, trained first if missing, as
``attrsearch train``) and, for suites with transfer, the panel from the experiment config, then
evaluates the source's maps with the suite; the same ``metrics.json`` keys for every source plus
``attribution/method``, ``attribution/description`` and ``attribution/seconds_per_image``:

- ``score_explainer`` / ``evaluate_checkpoint``: an Explainer checkpoint and the config stored in it,
  optionally followed by test-time refinement (``attribution/refine_steps``);
- ``score_method`` / ``evaluate_method``: a baseline method (``attribution/options``, JSON text),
  checked by ``check_method`` before any data is built or any model is trained or loaded;
- ``score_exported``: an exported Explainer folder (``attrsearch export``) under an experiment config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from attrsearch.data import build_dataset
from attrsearch.data.scan import scan_dataset
from attrsearch.evaluate.checks import check_method
from attrsearch.evaluate.dependence import add_dependence
from attrsearch.evaluate.sources import ExplainerSource, ExportedSource, MapSource, MethodSource
from attrsearch.metrics.evaluate import evaluate
from attrsearch.metrics.registry import check_suite
from attrsearch.metrics.results import EvaluationResult, write_results
from attrsearch.metrics.suites import SUITES
from attrsearch.train.explanandum import get_explanandum, get_panel
from attrsearch.train.runtime import configure_threads, resolve_device


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


def score(
    source: MapSource,
    cfg,
    suite: str = "full",
    split: str = "test",
    max_images: int | None = None,
    device: torch.device | None = None,
    explanandum: nn.Module | None = None,
) -> EvaluationResult:
    """Score ``source``'s maps under the experiment ``cfg`` (the suite checked by the caller, before
    building the source). ``max_images``: the first N images of the split only (``attribution/images``
    records the count and a note says so). ``explanandum``: an already loaded frozen Explanandum."""
    configure_threads(cfg.train.num_threads)
    device = device or resolve_device(cfg.train.device)
    scan_dataset(cfg.data, cfg.cache_dir)  # every image and mask (all splits: the Explanandum may train here)
    dataset = build_dataset(cfg.data, split, cfg.cache_dir)
    source.check_dataset(dataset.info)  # before the Explanandum is trained or loaded
    capped = max_images is not None and max_images < len(dataset)
    if capped:
        dataset = FirstImages(dataset, max_images)
    model = explanandum if explanandum is not None else get_explanandum(cfg, device)
    panel = get_panel(cfg, device) if SUITES[suite].uses("transfer") else []
    attribute = source.attribution(model, cfg, device)
    result = evaluate(attribute, model, dataset, cfg.evaluation, suite=suite, panel=panel, device=device)
    result.metrics["attribution/seconds_per_image"] = attribute.seconds_per_image
    add_dependence(result, attribute, model, cfg, device)  # evaluation.dependence: twins of split's images
    result.metrics["attribution/images"] = float(len(dataset))
    result.params["attribution/method"] = source.method
    source.record(result, attribute, cfg)
    if capped:
        result.notes.append(f"{source.label}: scored on the first {len(dataset)} images of the {split} split (capped)")
    return result


def score_explainer(
    checkpoint: Path,
    suite: str = "full",
    split: str = "test",
    cfg=None,
    device=None,
    max_images: int | None = None,
    refine: int = 0,
    refine_lr: float | None = None,
) -> EvaluationResult:
    """Score an Explainer checkpoint. ``cfg``: evaluate under this experiment (e.g. compare's) instead
    of the checkpoint's own; ``refine``: T steps of test-time refinement after the Explainer."""
    check_suite(suite)
    source = ExplainerSource(checkpoint, refine, refine_lr)
    source.check(cfg or source.cfg)
    return score(source, cfg or source.cfg, suite, split, max_images, device)


def score_method(
    cfg,
    name: str,
    options: dict[str, Any] | None = None,
    suite: str = "full",
    split: str = "test",
    max_images: int | None = None,
    device: torch.device | None = None,
    explanandum: nn.Module | None = None,
) -> EvaluationResult:
    """Score a method against the config's Explanandum; checks first. ``explanandum``: an already
    loaded frozen Explanandum (compare reuses one)."""
    check_suite(suite)
    source = MethodSource(name, check_method(cfg, name, options))  # before any work
    return score(source, cfg, suite, split, max_images, device, explanandum)


def score_exported(
    folder: Path, cfg, suite: str = "full", split: str = "test", max_images: int | None = None
) -> EvaluationResult:
    """Score an exported Explainer folder against the Explanandum and data of the experiment ``cfg``."""
    check_suite(suite)
    source = ExportedSource(folder)
    source.check(cfg)
    return score(source, cfg, suite, split, max_images)


def evaluate_checkpoint(
    checkpoint: Path,
    out: Path,
    suite: str = "full",
    split: str = "test",
    refine: int = 0,
    refine_lr: float | None = None,
) -> dict[str, float]:
    """``attrsearch evaluate``: score an Explainer checkpoint under its own config and write ``out``
    (``metrics.json``, ``tables/*.csv``); returns the metrics."""
    result = score_explainer(Path(checkpoint), suite=suite, split=split, refine=refine, refine_lr=refine_lr)
    write_results(result, out)
    return result.metrics


def evaluate_method(
    cfg,
    name: str,
    options: dict[str, Any] | None,
    out: Path,
    suite: str = "full",
    split: str | None = None,
    max_images: int | None = None,
) -> EvaluationResult:
    """``attrsearch evaluate --method NAME``: score it (``score_method``) and write ``out/metrics.json``
    and ``out/tables/*.csv``; ``split`` None: the config's ``evaluation.split``. Returns the result."""
    result = score_method(cfg, name, options, suite, split or cfg.evaluation.split, max_images)
    write_results(result, out)
    return result
