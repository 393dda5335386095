"""One experiment end to end: check inputs, get the frozen Explanandum, train the Explainer, evaluate.

``run_training`` is what ``attrsearch train`` calls and what every sweep trial calls, so single
runs and trials share one code path. Everything that can be checked (config, dataset folders,
the output folder) is checked before any training starts. With several seeds, one Explainer per
seed trains in lockstep and every record holds the mean over seeds and ``<name>_std``.

Layout of ``out``: ``config.yaml``, ``checkpoints/{last,best}.pt`` (one seed) or
``checkpoints/seed<S>/{last,best}.pt``, ``history.json``, ``metrics.json`` (flat named
scalars), ``tables/*.csv`` and, with several seeds, ``seeds/seed<S>/`` with each seed's own
metrics and tables.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from attrsearch.config import ExperimentConfig, validate
from attrsearch.data import build_dataset
from attrsearch.data.scan import scan_dataset
from attrsearch.errors import UserError
from attrsearch.train.explainer import ExplainerRun
from attrsearch.train.explanandum import explanandum_meta, get_explanandum, get_panel
from attrsearch.train.runtime import configure_threads, keep_freed_memory, resolve_device

# report(record, checkpoint_dir, finished): called after every epoch; the last call (finished=True)
# carries the final suite's metrics too.
EpochReport = Callable[[dict[str, float], Path, bool], None]

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


def run_training(
    cfg: ExperimentConfig,
    out: Path,
    *,
    resume: bool = True,
    seeds: list[int] | None = None,
    report: EpochReport | None = None,
) -> dict[str, Any]:
    """Train and evaluate the Explainer(s) of ``cfg`` into ``out``; returns paths and final metrics."""
    from attrsearch.attribution import explainer_attribution
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.metrics.results import aggregate
    from attrsearch.resolve import resolve_experiment

    resolve_experiment(cfg)  # registry names, before any work (programmatic callers too)
    if cfg.method is not None:  # a baseline method instead of an Explainer: score it, train nothing
        from attrsearch.train.evaluate import run_method

        return run_method(cfg, Path(out), resume=resume, report=report)
    out = Path(out)
    seeds = list(seeds) if seeds else [cfg.seed]
    configure_threads(cfg.train.num_threads)
    keep_freed_memory()
    device = resolve_device(cfg.train.device)
    # Inputs first, before anything is cached or written: the output folder, every dataset file (the
    # pre-flight scan), then the builders (which cache the built-in data).
    check_output_dir(cfg, out, resume)
    scan_dataset(cfg.data, cfg.cache_dir)  # all splits: the Explanandum trains on train and is scored on test
    train_ds = build_dataset(cfg.data, "train", cfg.cache_dir)
    val_ds = build_dataset(cfg.data, "val", cfg.cache_dir)
    eval_ds = build_dataset(cfg.data, "test", cfg.cache_dir) if cfg.evaluation.split == "test" else val_ds
    prepare_output_dir(cfg, out, resume)

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
    for run in runs:
        if run.resumed_from:
            print(f"resuming seed {run.cfg.seed} after epoch {run.resumed_from}")

    final_metrics: dict[str, float] | None = None
    while not all(run.finished for run in runs):
        for run in runs:  # seeds of one configuration advance in lockstep, one epoch each
            if run.finished:
                continue
            t0 = time.perf_counter()
            record = {"epoch": float(run.epoch + 1)}
            record.update(run.train_epoch())
            record["time/train_epoch_s"] = time.perf_counter() - t0
            record.update(run.validation_loss(val_ds))
            suite = cfg.evaluation.epoch_suite
            scores = evaluate(
                explainer_attribution(run.explainer), explanandum, val_ds, cfg.evaluation, suite=suite, device=device
            )
            record.update(scores.metrics)
            run.end_epoch(record, time.perf_counter() - t0)
        summary = aggregate([run.history[-1] for run in runs])
        done = all(run.finished for run in runs)
        if done:
            final_metrics = final_evaluation(cfg, runs, explanandum, eval_ds, out, device, explanandum_seconds)
            summary.update(final_metrics)
        (out / "history.json").write_text(json.dumps({f"seed{r.cfg.seed}": r.history for r in runs}, indent=1))
        if report is not None:
            report(summary, out / "checkpoints", done)

    if final_metrics is None:  # resumed a run whose training had already finished
        saved = out / "metrics.json"
        final_metrics = json.loads(saved.read_text()) if saved.is_file() else {}
        if "train/epochs" not in final_metrics:
            final_metrics = final_evaluation(cfg, runs, explanandum, eval_ds, out, device, explanandum_seconds)
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


def final_evaluation(
    cfg: ExperimentConfig,
    runs: list[ExplainerRun],
    explanandum: torch.nn.Module,
    eval_ds: Any,
    out: Path,
    device: torch.device,
    explanandum_seconds: float,
) -> dict[str, float]:
    """The final suite on each seed's best Explainer; writes ``metrics.json`` and ``tables/`` (means over
    seeds, tables averaged cell-wise) and, with several seeds, ``seeds/seed<S>/``; returns the metrics."""
    from attrsearch.attribution import explainer_attribution
    from attrsearch.metrics.evaluate import evaluate
    from attrsearch.metrics.results import average_results, write_results

    panel = get_panel(cfg, device) if cfg.evaluation.final_suite == "full" else []
    per_seed = []
    for run in runs:
        t0 = time.perf_counter()
        joins = panel and getattr(cfg.objective, "classifier_in_panel", False)  # CASM's co-trained classifier
        result = evaluate(
            explainer_attribution(run.load_best()),
            explanandum,
            eval_ds,
            cfg.evaluation,
            suite=cfg.evaluation.final_suite,
            panel=panel + [run.hook.panel_member()] if joins else panel,
            device=device,
        )
        result.metrics.update(
            {
                "attribution/class_agnostic": float(getattr(cfg.objective, "class_agnostic", False)),
                "train/epochs": float(run.epoch),
                "train/best_epoch": float(run.best_epoch),
                "train/stopped_early": float(run.stopped_early),
                "time/explainer_train_s": run.seconds,
                "time/evaluation_s": time.perf_counter() - t0,
            }
        )
        if len(runs) > 1:
            write_results(result, out / "seeds" / f"seed{run.cfg.seed}")
        per_seed.append(result)
    final = average_results(per_seed)
    final.metrics["time/explanandum_s"] = explanandum_seconds
    meta = explanandum_meta(cfg) if cfg.explanandum.checkpoint is None else {}
    if meta:
        final.metrics["explanandum/test_map"] = meta["test_map"]
        final.metrics["explanandum/test_f1"] = meta["test_f1"]
    write_results(final, out)
    return final.metrics
