"""One experiment end to end: check inputs, get the frozen Explanandum, train the Explainer, evaluate.

``run_training`` is what ``attrsearch train`` calls and what every sweep trial calls, so single
runs and trials share one code path. Everything that can be checked (config, dataset folders,
the output folder) is checked before any training starts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from attrsearch.config import ExperimentConfig
from attrsearch.data import build_dataset
from attrsearch.errors import UserError
from attrsearch.train.explainer import EpochCallback, train_explainer
from attrsearch.train.explanandum import explanandum_cache_path, explanandum_meta, get_explanandum
from attrsearch.train.runtime import configure_threads, resolve_device

# Fields that change how a run executes but not what it computes: they may differ on resume.
_RUNTIME_FIELDS = {"train": {"progress", "num_workers", "num_threads", "device"}}


def _identity(cfg: ExperimentConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json", exclude={"cache_dir", "name"})
    for section, keys in _RUNTIME_FIELDS.items():
        for key in keys:
            data[section].pop(key, None)
    return data


def check_output_dir(cfg: ExperimentConfig, out: Path, resume: bool) -> None:
    """Refuse to resume a run of a different config into the same folder."""
    saved = out / "config.yaml"
    if not (resume and saved.is_file()):
        return
    from attrsearch.config import validate

    previous = validate(ExperimentConfig, yaml.safe_load(saved.read_text()), source=str(saved))
    if _identity(previous) != _identity(cfg):
        raise UserError(f"{out}: holds a run of a different config; use another --out or --restart")


def panel_explananda(cfg: ExperimentConfig, device: torch.device) -> list[tuple[str, torch.nn.Module]]:
    """The classifier-agnostic transfer panel (seed 004): other architectures/seeds, same recipe."""
    return [
        (f"{m.arch}-s{m.seed}", get_explanandum(cfg, device, arch=m.arch, seed=m.seed))
        for m in cfg.evaluation.transfer.panel
    ]


def run_training(
    cfg: ExperimentConfig,
    out: Path,
    *,
    resume: bool = True,
    on_epoch_end: EpochCallback | None = None,
    final_suite: str | None = None,
) -> dict[str, Any]:
    """Train and evaluate one Explainer into ``out``; returns paths and the final metrics.

    Writes ``out/config.yaml``, ``out/checkpoints/{last,best}.pt``, ``out/history.json``,
    ``out/metrics.json`` (flat named scalars) and ``out/tables/*.csv``.
    """
    from attrsearch.metrics.attribution import explainer_attribution
    from attrsearch.metrics.evaluate import evaluate, write_results

    out = Path(out)
    configure_threads(cfg.train.num_threads)
    device = resolve_device(cfg.train.device)
    # Inputs first: dataset folders and files are checked by the builders, before any training.
    train_ds = build_dataset(cfg.data, "train", cfg.cache_dir)
    val_ds = build_dataset(cfg.data, "val", cfg.cache_dir)
    test_ds = build_dataset(cfg.data, "test", cfg.cache_dir) if cfg.evaluation.split == "test" else val_ds
    check_output_dir(cfg, out, resume)
    if not resume and (out / "checkpoints").exists():
        import shutil

        shutil.rmtree(out / "checkpoints")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))

    started = time.perf_counter()
    explanandum = get_explanandum(cfg, device)
    explanandum_seconds = time.perf_counter() - started

    def epoch_metrics(explainer: torch.nn.Module) -> dict[str, float]:
        result = evaluate(
            explainer_attribution(explainer), explanandum, val_ds, cfg.evaluation, suite=cfg.evaluation.epoch_suite, device=device
        )
        return {f"val/{k}" if not k.startswith("val/") else k: v for k, v in result.metrics.items()}

    result = train_explainer(
        cfg, out, explanandum, train_ds, val_ds, device=device, resume=resume, epoch_metrics=epoch_metrics, on_epoch_end=on_epoch_end
    )
    (out / "history.json").write_text(json.dumps(result.history, indent=1))

    # Final evaluation of the best epoch on the evaluation split.
    from attrsearch.train.checkpoint import load_checkpoint

    best = load_checkpoint(result.best_checkpoint)
    from attrsearch.train.checkpoint import build_explainer

    explainer = build_explainer(cfg, train_ds.info.num_classes, train_ds.info.image_size, explanandum=explanandum)
    explainer.load_state_dict(best["explainer"])
    explainer.to(device).eval()
    suite = final_suite or cfg.evaluation.final_suite
    panel = panel_explananda(cfg, device) if suite == "full" else []
    t0 = time.perf_counter()
    evaluation = evaluate(explainer_attribution(explainer), explanandum, test_ds, cfg.evaluation, suite=suite, panel=panel, device=device)
    eval_seconds = time.perf_counter() - t0
    meta = explanandum_meta(cfg) if cfg.explanandum.checkpoint is None else {}
    extra = {
        "train/epochs": float(result.epochs_run),
        "train/best_epoch": float(result.best_epoch),
        "train/stopped_early": float(result.stopped_early),
        "time/explainer_train_s": result.seconds,
        "time/explanandum_s": explanandum_seconds,
        "time/evaluation_s": eval_seconds,
    }
    if meta:
        extra["explanandum/test_map"] = meta["test_map"]
        extra["explanandum/test_f1"] = meta["test_f1"]
    evaluation.metrics.update(extra)
    write_results(evaluation, out)
    return {
        "metrics": evaluation.metrics,
        "metrics_path": out / "metrics.json",
        "checkpoint_path": result.best_checkpoint,
        "result": result,
        "explanandum_path": explanandum_cache_path(cfg),
    }
