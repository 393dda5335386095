"""The training half of one experiment: check inputs, get the frozen Explanandum, train the Explainer(s).

``train_explainers`` is the epoch loop behind ``attrsearch train`` and every sweep trial (through
``attrsearch.evaluate.experiment.run_experiment``, which hands it the final scoring as ``final``).
Everything that can be checked (config, dataset folders, the output folder) is checked before any
training starts. With several seeds, one Explainer per seed trains in lockstep and every record
holds the mean over seeds and ``<name>_std``.

Layout of ``out``: ``config.yaml``, ``checkpoints/{last,best}.pt`` (one seed) or
``checkpoints/seed<S>/{last,best}.pt``, ``history.json``, ``metrics.json`` (flat named
scalars), ``tables/*.csv`` and, with several seeds, ``seeds/seed<S>/`` with each seed's own
metrics and tables (the last three written by ``final``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from attrsearch.attribution import explainer_attribution
from attrsearch.config import ExperimentConfig, validate
from attrsearch.data import build_dataset, config_class_count
from attrsearch.data.scan import scan_dataset
from attrsearch.errors import UserError
from attrsearch.metrics.evaluate import evaluate
from attrsearch.metrics.results import aggregate
from attrsearch.models import EXPLAINERS
from attrsearch.models.registry import check_model_weights
from attrsearch.train.explainer import ExplainerRun
from attrsearch.train.explanandum import check_explanandum_checkpoint, check_explanandum_inputs, get_explanandum
from attrsearch.train.runtime import configure_threads, keep_freed_memory, resolve_device

log = logging.getLogger(__name__)

# report(record, checkpoint_dir, finished): called after every epoch; the last call (finished=True)
# carries the final suite's metrics too.
EpochReport = Callable[[dict[str, float], Path, bool], None]

# final(cfg, runs, explanandum, eval_ds, out, device, explanandum_seconds) -> the final metrics: scores
# every seed's best Explainer once training has finished and writes ``metrics.json`` and ``tables/``.
FinalEvaluation = Callable[
    [ExperimentConfig, list[ExplainerRun], nn.Module, Any, Path, torch.device, float], dict[str, float]
]

# Fields that change how a run executes but not what it computes: they may differ on resume.
_RUNTIME_FIELDS = {"progress", "num_workers", "num_threads", "device"}


def _identity(cfg: ExperimentConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json", exclude={"cache_dir", "name"})
    for key in _RUNTIME_FIELDS:
        data["train"].pop(key, None)
    return data


def check_output_dir(cfg: ExperimentConfig, out: Path, resume: bool) -> None:
    """Refuse an output folder that is a file, and resuming a run of a different config into the same folder."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --out is an existing file, not a folder")
    saved = out / "config.yaml"
    if not (resume and saved.is_file()):
        return
    previous = validate(ExperimentConfig, yaml.safe_load(saved.read_text()), source=str(saved))
    if _identity(previous) != _identity(cfg):
        raise UserError(f"{out}: holds a run of a different config; use another --out or --restart")


def check_model_inputs(cfg: ExperimentConfig) -> None:
    """The Explanandum's and the Explainer's files and weights, before any data is built (one line each)."""
    check_explanandum_inputs(cfg)
    check_model_weights(EXPLAINERS, "explainer", cfg.explainer.arch, cfg.explainer.weights)


def split_datasets(cfg: ExperimentConfig) -> tuple[Any, Any, Any]:
    """(train, val, evaluation) datasets; the pre-flight scan of every dataset file first."""
    scan_dataset(cfg.data, cfg.cache_dir)  # all splits: the Explanandum trains on train and is scored on test
    train_ds = build_dataset(cfg.data, "train", cfg.cache_dir)
    val_ds = build_dataset(cfg.data, "val", cfg.cache_dir)
    eval_ds = build_dataset(cfg.data, "test", cfg.cache_dir) if cfg.evaluation.split == "test" else val_ds
    return train_ds, val_ds, eval_ds


def train_epoch(run: ExplainerRun, explanandum: nn.Module, val_ds: Any, device: torch.device) -> None:
    """One epoch of one seed: train, validation loss, the epoch suite on ``val``; ``run`` records it."""
    t0 = time.perf_counter()
    record = {"epoch": float(run.epoch + 1)}
    record.update(run.train_epoch())
    record["time/train_epoch_s"] = time.perf_counter() - t0
    record.update(run.validation_loss(val_ds))
    evaluation = run.cfg.evaluation
    scores = evaluate(
        explainer_attribution(run.explainer),
        explanandum,
        val_ds,
        evaluation,
        suite=evaluation.epoch_suite,
        device=device,
    )
    record.update(scores.metrics)
    run.end_epoch(record, time.perf_counter() - t0)


def train_explainers(
    cfg: ExperimentConfig,
    out: Path,
    *,
    final: FinalEvaluation,
    resume: bool = True,
    seeds: list[int] | None = None,
    report: EpochReport | None = None,
) -> dict[str, Any]:
    """Train the Explainer(s) of ``cfg`` into ``out``, one seed each, in lockstep; ``final`` scores them
    once every seed has finished (before the last report). Returns paths and final metrics."""
    out = Path(out)
    seeds = list(seeds) if seeds else [cfg.seed]
    configure_threads(cfg.train.num_threads)
    keep_freed_memory()
    device = resolve_device(cfg.train.device)
    # Inputs first, before anything is cached or written: the output folder, the model files, every
    # dataset file (the pre-flight scan), then the builders (which cache the built-in data). ``out`` is
    # written only once the models are built: a refused weights file or class count leaves nothing there.
    check_output_dir(cfg, out, resume)
    check_model_inputs(cfg)
    train_ds, val_ds, eval_ds = split_datasets(cfg)
    if config_class_count(cfg.data) is None:  # known only from the files (COCO, folder): checked once read
        check_explanandum_checkpoint(cfg, train_ds.info.num_classes)  # a head for another count: one line

    started = time.perf_counter()
    explanandum = get_explanandum(cfg, device)
    explanandum_seconds = time.perf_counter() - started

    several = len(seeds) > 1
    runs = [
        ExplainerRun(
            cfg.model_copy(update={"seed": s}),
            out / "checkpoints" / f"seed{s}" if several else out / "checkpoints",
            explanandum,
            train_ds,
            device=device,
            resume=resume,
        )
        for s in seeds
    ]
    prepare_output_dir(cfg, out, resume)  # after the runs read their checkpoints (resume) or built afresh
    for run in runs:
        if run.resumed_from:
            log.info("resuming seed %s after epoch %s", run.cfg.seed, run.resumed_from)

    final_metrics: dict[str, float] | None = None
    while not all(run.finished for run in runs):
        for run in runs:  # seeds of one configuration advance in lockstep, one epoch each
            if not run.finished:
                train_epoch(run, explanandum, val_ds, device)
        summary = aggregate([run.history[-1] for run in runs])
        done = all(run.finished for run in runs)
        if done:
            final_metrics = final(cfg, runs, explanandum, eval_ds, out, device, explanandum_seconds)
            summary.update(final_metrics)
        (out / "history.json").write_text(json.dumps({f"seed{r.cfg.seed}": r.history for r in runs}, indent=1))
        if report is not None:
            report(summary, out / "checkpoints", done)

    if final_metrics is None:  # resumed a run whose training had already finished
        saved = out / "metrics.json"
        final_metrics = json.loads(saved.read_text()) if saved.is_file() else {}
        if "train/epochs" not in final_metrics:
            final_metrics = final(cfg, runs, explanandum, eval_ds, out, device, explanandum_seconds)
    return {
        "metrics": final_metrics,
        "metrics_path": out / "metrics.json",
        "checkpoint_path": runs[0].best_checkpoint,
        "history": {r.cfg.seed: r.history for r in runs},
    }


def prepare_output_dir(cfg: ExperimentConfig, out: Path, resume: bool) -> None:
    """Refuse a folder of another config; without ``resume``, clear earlier results; write ``config.yaml``."""
    check_output_dir(cfg, out, resume)
    if not resume:
        for stale in ("checkpoints", "seeds", "metrics.json", "tables", "history.json"):
            target = out / stale
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
