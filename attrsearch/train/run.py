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
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from attrsearch.config import ExperimentConfig, validate
from attrsearch.data import build_dataset
from attrsearch.errors import UserError
from attrsearch.train.explainer import ExplainerTrainer
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
    """Refuse to resume a run of a different config into the same folder."""
    saved = out / "config.yaml"
    if not (resume and saved.is_file()):
        return
    previous = validate(ExperimentConfig, yaml.safe_load(saved.read_text()), source=str(saved))
    if _identity(previous) != _identity(cfg):
        raise UserError(f"{out}: holds a run of a different config; use another --out or --restart")


def aggregate(records: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds under each name, plus ``<name>_std`` (population std) when there are several."""
    if len(records) == 1:
        return dict(records[0])
    out: dict[str, float] = {}
    for key in records[0]:
        values = [r[key] for r in records if key in r and isinstance(r[key], (int, float))]
        if not values:
            continue
        mean = sum(values) / len(values)
        out[key] = mean
        out[f"{key}_std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return out


def run_training(
    cfg: ExperimentConfig,
    out: Path,
    *,
    resume: bool = True,
    seeds: list[int] | None = None,
    report: EpochReport | None = None,
) -> dict[str, Any]:
    """Train and evaluate the Explainer(s) of ``cfg`` into ``out``; returns paths and final metrics."""
    from attrsearch.metrics.attribution import explainer_attribution
    from attrsearch.metrics.evaluate import evaluate, write_results

    from attrsearch.resolve import resolve_experiment

    resolve_experiment(cfg)  # registry names, before any work (programmatic callers too)
    out = Path(out)
    seeds = list(seeds) if seeds else [cfg.seed]
    configure_threads(cfg.train.num_threads)
    keep_freed_memory()
    device = resolve_device(cfg.train.device)
    # Inputs first: dataset folders and files are checked by the builders, before any training.
    train_ds = build_dataset(cfg.data, "train", cfg.cache_dir)
    val_ds = build_dataset(cfg.data, "val", cfg.cache_dir)
    eval_ds = build_dataset(cfg.data, "test", cfg.cache_dir) if cfg.evaluation.split == "test" else val_ds
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

    started = time.perf_counter()
    explanandum = get_explanandum(cfg, device)
    explanandum_seconds = time.perf_counter() - started

    def epoch_metrics(explainer: torch.nn.Module) -> dict[str, float]:
        suite = cfg.evaluation.epoch_suite
        return evaluate(explainer_attribution(explainer), explanandum, val_ds, cfg.evaluation, suite=suite, device=device).metrics

    several = len(seeds) > 1
    trainers = [
        ExplainerTrainer(
            cfg.model_copy(update={"seed": s}),
            out / "checkpoints" / f"seed{s}" if several else out / "checkpoints",
            explanandum,
            train_ds,
            val_ds,
            device=device,
            resume=resume,
            epoch_metrics=epoch_metrics,
        )
        for s in seeds
    ]
    for t in trainers:
        if t.resumed_from:
            print(f"resuming seed {t.cfg.seed} after epoch {t.resumed_from}")

    def final_evaluation() -> dict[str, float]:
        panel = get_panel(cfg, device) if cfg.evaluation.final_suite == "full" else []
        per_seed = []
        for t in trainers:
            t0 = time.perf_counter()
            result = evaluate(
                explainer_attribution(t.load_best()), explanandum, eval_ds, cfg.evaluation,
                suite=cfg.evaluation.final_suite, panel=panel, device=device,
            )
            result.metrics.update(
                {
                    "train/epochs": float(t.epoch),
                    "train/best_epoch": float(t.best_epoch),
                    "train/stopped_early": float(t.stopped_early),
                    "time/explainer_train_s": t.seconds,
                    "time/evaluation_s": time.perf_counter() - t0,
                }
            )
            if several:
                write_results(result, out / "seeds" / f"seed{t.cfg.seed}")
            per_seed.append(result)
        metrics = aggregate([r.metrics for r in per_seed])
        metrics["time/explanandum_s"] = explanandum_seconds
        meta = explanandum_meta(cfg) if cfg.explanandum.checkpoint is None else {}
        if meta:
            metrics["explanandum/test_map"] = meta["test_map"]
            metrics["explanandum/test_f1"] = meta["test_f1"]
        final = per_seed[0]
        final.metrics = metrics
        write_results(final, out)
        return metrics

    final_metrics: dict[str, float] | None = None
    while not all(t.finished for t in trainers):
        for t in trainers:
            if not t.finished:
                t.run_epoch()
        record = aggregate([t.history[-1] for t in trainers])
        done = all(t.finished for t in trainers)
        if done:
            final_metrics = final_evaluation()
            record.update(final_metrics)
        (out / "history.json").write_text(json.dumps({f"seed{t.cfg.seed}": t.history for t in trainers}, indent=1))
        if report is not None:
            report(record, out / "checkpoints", done)
    if final_metrics is None:  # resumed a run whose training had already finished
        saved = out / "metrics.json"
        final_metrics = json.loads(saved.read_text()) if saved.is_file() else {}
        if "train/epochs" not in final_metrics:
            final_metrics = final_evaluation()
    return {
        "metrics": final_metrics,
        "metrics_path": out / "metrics.json",
        "checkpoint_path": trainers[0].best_checkpoint,
        "history": {t.cfg.seed: t.history for t in trainers},
    }
