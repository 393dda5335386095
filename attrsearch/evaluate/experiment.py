"""One experiment end to end, as ``attrsearch train`` and every sweep trial run it: train, then score.

``run_experiment`` resolves the config's registry names, then either trains the Explainer(s)
(``attrsearch.train.run.train_explainers``: the epoch loop) and scores each seed's best Explainer
with the final suite once training has finished (``final_evaluation``), or, for an experiment with
``method:`` set, scores that baseline method and trains nothing (``run_method``). Both report to
the same ``report(record, checkpoint_dir, finished)`` callback and return the same summary:
``{"metrics", "metrics_path", "checkpoint_path", "history"}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from attrsearch.attribution import explainer_attribution
from attrsearch.config import ExperimentConfig
from attrsearch.evaluate.checks import check_method
from attrsearch.evaluate.dependence import add_dependence
from attrsearch.evaluate.pipeline import score_method
from attrsearch.metrics.evaluate import evaluate
from attrsearch.metrics.results import average_results, write_results
from attrsearch.resolve import resolve_experiment
from attrsearch.train.explainer import ExplainerRun
from attrsearch.train.explanandum import explanandum_meta, get_panel
from attrsearch.train.run import EpochReport, check_output_dir, prepare_output_dir, train_explainers

CHECKPOINT_METRICS = "metrics.json"  # the "checkpoint" of a method trial: its final metrics


def run_experiment(
    cfg: ExperimentConfig,
    out: Path,
    *,
    resume: bool = True,
    seeds: list[int] | None = None,
    report: EpochReport | None = None,
) -> dict[str, Any]:
    """Train and evaluate the Explainer(s) of ``cfg`` into ``out`` (or score its ``method``); returns
    paths and final metrics. Layout of ``out``: see ``attrsearch.train.run``."""
    resolve_experiment(cfg)  # registry names, before any work (programmatic callers too)
    if cfg.method is not None:  # a baseline method instead of an Explainer: score it, train nothing
        return run_method(cfg, Path(out), resume=resume, report=report)
    return train_explainers(cfg, Path(out), final=final_evaluation, resume=resume, seeds=seeds, report=report)


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
    panel = get_panel(cfg, device) if cfg.evaluation.final_suite == "full" else []
    per_seed = []
    for run in runs:
        t0 = time.perf_counter()
        joins = panel and getattr(cfg.objective, "classifier_in_panel", False)  # CASM's co-trained classifier
        attribute = explainer_attribution(run.load_best())
        result = evaluate(
            attribute,
            explanandum,
            eval_ds,
            cfg.evaluation,
            suite=cfg.evaluation.final_suite,
            panel=panel + [run.hook.panel_member()] if joins else panel,
            device=device,
        )
        add_dependence(result, attribute, explanandum, run.cfg, device)  # evaluation.dependence
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


def run_method(cfg, out: Path, *, resume: bool = True, report: EpochReport | None = None) -> dict[str, Any]:
    """``run_experiment`` for an experiment with ``method:`` set: no Explainer is trained.

    Scores ``cfg.method`` with the final suite on ``cfg.evaluation.split`` into ``out`` and reports
    once, finished, with the final metrics (``epoch`` 1) and ``out/checkpoints`` (holding only
    ``metrics.json``) as the checkpoint, so a sweep trial needs nothing else. Resuming a finished
    trial (its ``metrics.json`` in ``out`` or in the restored ``checkpoints``) reports nothing and
    returns the saved metrics, like a finished Explainer run.
    """
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
    check_output_dir(cfg, out, resume)
    started = time.perf_counter()
    result = score_method(
        cfg, method.name, method.options, cfg.evaluation.final_suite, cfg.evaluation.split, method.max_images
    )
    result.metrics["time/evaluation_s"] = time.perf_counter() - started
    prepare_output_dir(cfg, out, resume)  # once scored: a refused input leaves nothing in ``out``
    path = write_results(result, out)
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / CHECKPOINT_METRICS).write_text(path.read_text())
    metrics = json.loads(path.read_text())
    if report is not None:
        report({"epoch": 1.0, **metrics}, ckpt, True)
    return {"metrics": metrics, "metrics_path": path, "checkpoint_path": None, "history": {}}
