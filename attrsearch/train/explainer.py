"""The Explainer training loop, shared by ``attrsearch train`` and sweep trials.

Every epoch: train on the train split, compute the validation loss and the epoch metric suite,
update early stopping, write ``checkpoints/last.pt`` (and ``best.pt`` on improvement), then call
``on_epoch_end`` (sweeps report to Ray Tune there). The shuffling order and every random draw are
seeded per epoch, so a run resumed from ``last.pt`` is bit-for-bit the run that was interrupted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from attrsearch.config import ExperimentConfig
from attrsearch.data import AttributionDataset, collate_samples
from attrsearch.objectives import OBJECTIVES
from attrsearch.train.checkpoint import build_explainer, load_checkpoint, save_checkpoint
from attrsearch.train.runtime import autocast, seed_everything, use_channels_last

EpochCallback = Callable[[int, dict[str, float], Path], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where (a sweep records it as the trial's error)."""


@dataclass
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_score: float
    epochs_run: int
    stopped_early: bool
    checkpoint_dir: Path
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.pt"


def _loader(ds: AttributionDataset, batch_size: int, shuffle: bool, seed: int, num_workers: int):
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collate_samples,
        num_workers=num_workers,
        drop_last=shuffle and len(ds) > batch_size,
    )


def _optimizer(model: nn.Module, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    t = cfg.train
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=t.lr, weight_decay=t.weight_decay)


def early_stopping_mode(metric: str) -> str:
    if metric == "loss":
        return "min"
    from attrsearch.metrics.registry import metric_mode

    return metric_mode(metric)


def _improved(score: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score < best - min_delta if mode == "min" else score > best + min_delta


@torch.no_grad()
def validation_loss(explainer: nn.Module, explanandum: nn.Module, ds: AttributionDataset, cfg: ExperimentConfig, device: torch.device) -> dict[str, float]:
    """Mean objective and its terms over a split (no gradients)."""
    objective = OBJECTIVES.get(cfg.loss.name, field="loss.name")
    explainer.eval()
    sums: dict[str, float] = {}
    count = 0
    cl = use_channels_last(device, cfg.train.channels_last)
    for batch in _loader(ds, cfg.evaluation.batch_size, False, 0, cfg.train.num_workers):
        images = batch["image"].to(device)
        if cl:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = batch["labels"].to(device)
        with autocast(device, cfg.train.amp):
            out = objective(explanandum, images, labels, explainer(images), cfg.loss)
        n = len(labels)
        count += n
        sums["loss"] = sums.get("loss", 0.0) + float(out.loss) * n
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
    return {k: v / max(count, 1) for k, v in sums.items()}


def train_explainer(
    cfg: ExperimentConfig,
    out_dir: Path,
    explanandum: nn.Module,
    train_ds: AttributionDataset,
    val_ds: AttributionDataset,
    *,
    device: torch.device,
    resume: bool = True,
    epoch_metrics: Callable[[nn.Module], dict[str, float]] | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainResult:
    """Train an Explainer for the frozen ``explanandum``; returns the history and the best epoch.

    epoch_metrics: called with the Explainer (eval mode) after each epoch; its scores join the
    epoch's record under their own names (the epoch suite). on_epoch_end(epoch, record, ckpt_dir)
    runs after the checkpoint of that epoch is written.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    info = train_ds.info
    objective = OBJECTIVES.get(cfg.loss.name, field="loss.name")
    es = cfg.train.early_stopping
    mode = early_stopping_mode(es.metric)
    cl = use_channels_last(device, cfg.train.channels_last)

    seed_everything(cfg.seed)
    explainer = build_explainer(cfg, info.num_classes, info.image_size, explanandum=explanandum, weights=cfg.explainer.weights)
    explainer.to(device)
    if cl:
        explainer = explainer.to(memory_format=torch.channels_last)
    opt = _optimizer(explainer, cfg)

    history: list[dict[str, float]] = []
    start_epoch, best_score, best_epoch, bad_epochs, finished = 0, float("nan"), -1, 0, False
    last = ckpt_dir / "last.pt"
    if resume and last.is_file():
        state = load_checkpoint(last)
        explainer.load_state_dict(state["explainer"])
        opt.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
        best_score, best_epoch, bad_epochs = state["best_score"], state["best_epoch"], state["bad_epochs"]
        history, finished = state["history"], state["finished"]
        print(f"resuming from {last} after epoch {start_epoch}")

    base_state = {
        "config": cfg.model_dump(mode="json"),
        "num_classes": info.num_classes,
        "class_names": list(info.class_names),
        "image_size": info.image_size,
        "mean": list(info.mean),
        "std": list(info.std),
    }
    started = time.perf_counter()
    epoch = start_epoch
    while not finished and epoch < cfg.train.epochs:
        explainer.train()
        seed_everything(cfg.seed * 1009 + epoch)
        sums: dict[str, float] = {}
        count = 0
        loader = _loader(train_ds, cfg.train.batch_size, True, cfg.seed * 100003 + epoch, cfg.train.num_workers)
        bar = tqdm(loader, desc=f"explainer epoch {epoch + 1}/{cfg.train.epochs}", disable=not cfg.train.progress, leave=False)
        t0 = time.perf_counter()
        for step, batch in enumerate(bar):
            if cfg.train.max_train_batches is not None and step >= cfg.train.max_train_batches:
                break
            images = batch["image"].to(device, non_blocking=True)
            if cl:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = batch["labels"].to(device, non_blocking=True)
            with autocast(device, cfg.train.amp):
                out = objective(explanandum, images, labels, explainer(images), cfg.loss)
            if not torch.isfinite(out.loss):
                raise TrainingDiverged(f"loss became {float(out.loss)} at epoch {epoch + 1}, step {step + 1}")
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            opt.step()
            n = len(labels)
            count += n
            sums["loss"] = sums.get("loss", 0.0) + float(out.loss) * n
            for k, v in out.terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            bar.set_postfix(loss=f"{sums['loss'] / count:.4f}")
        record: dict[str, float] = {"epoch": epoch + 1, "time/train_epoch_s": time.perf_counter() - t0}
        record.update({f"train/{k}": v / max(count, 1) for k, v in sums.items()})
        val = validation_loss(explainer, explanandum, val_ds, cfg, device)
        record.update({f"val/{k}": v for k, v in val.items()})
        if epoch_metrics is not None:
            explainer.eval()
            record.update(epoch_metrics(explainer))
        score = record["val/loss"] if es.metric == "loss" else record.get(es.metric, float("nan"))
        if _improved(score, best_score, mode, es.min_delta):
            best_score, best_epoch, bad_epochs = score, epoch + 1, 0
            improved = True
        else:
            bad_epochs += 1
            improved = False
        epoch += 1
        finished = epoch >= cfg.train.epochs or (es.enabled and bad_epochs >= es.patience)
        history.append(record)
        state = {
            **base_state,
            "explainer": explainer.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": epoch,
            "best_score": best_score,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "history": history,
            "finished": finished,
        }
        if improved or not (ckpt_dir / "best.pt").is_file():
            save_checkpoint(ckpt_dir / "best.pt", state)
        save_checkpoint(last, state)
        if cfg.train.progress:
            shown = {k: v for k, v in record.items() if k in ("train/loss", "val/loss") or "/" in k and not k.startswith(("train/", "val/", "time/"))}
            print(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) + (" *" if improved else ""))
        if on_epoch_end is not None:
            on_epoch_end(epoch, record, ckpt_dir)

    stopped_early = epoch < cfg.train.epochs
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        best_score=best_score,
        epochs_run=epoch,
        stopped_early=stopped_early,
        checkpoint_dir=ckpt_dir,
        seconds=time.perf_counter() - started,
    )
