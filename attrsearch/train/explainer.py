"""The Explainer training loop, shared by ``attrsearch train`` and sweep trials.

``ExplainerTrainer`` advances one epoch at a time: train on the train split, compute the
validation loss and the epoch metric suite, update early stopping, and write
``checkpoints/last.pt`` (and ``best.pt`` on improvement). Stepping epoch by epoch lets a sweep
trial report after every epoch and train several seeds of one configuration in lockstep.
The shuffling order and every random draw are seeded per epoch, so a run resumed from
``last.pt`` is bit-for-bit the run that was interrupted.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from attrsearch.config import ExperimentConfig
from attrsearch.data import AttributionDataset
from attrsearch.objectives import OBJECTIVES
from attrsearch.train.checkpoint import build_explainer, load_checkpoint, save_checkpoint
from attrsearch.train.runtime import autocast, make_loader, make_optimizer, seed_everything, use_channels_last


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where (a sweep records it as the trial's error)."""


def early_stopping_mode(metric: str) -> str:
    if metric == "loss":
        return "min"
    from attrsearch.metrics.registry import metric_mode

    return metric_mode(metric)


def improved(score: float, best: float, mode: str, min_delta: float) -> bool:
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score < best - min_delta if mode == "min" else score > best + min_delta


@torch.no_grad()
def validation_loss(
    explainer: nn.Module, explanandum: nn.Module, ds: AttributionDataset, cfg: ExperimentConfig, device: torch.device
) -> dict[str, float]:
    """Mean objective and its terms over a split (no gradients)."""
    objective = OBJECTIVES.get(cfg.loss.name, field="loss.name")
    explainer.eval()
    sums: dict[str, float] = {}
    count = 0
    cl = use_channels_last(device, cfg.train.channels_last)
    for batch in make_loader(ds, cfg.evaluation.batch_size, False, 0, cfg.train.num_workers):
        images = batch["image"].to(device)
        if cl:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = batch["labels"].to(device)
        with autocast(device, cfg.train.amp):
            out = objective(explanandum, images, labels, explainer(images), cfg.loss)
        n = len(labels)
        count += n
        sums["loss"] = sums.get("loss", 0.0) + float(out.loss.detach()) * n
        for k, v in out.terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
    return {k: v / max(count, 1) for k, v in sums.items()}


class ExplainerTrainer:
    """Trains one Explainer for a frozen Explanandum, one ``run_epoch()`` at a time.

    epoch_metrics(explainer) -> scores of the epoch suite on the validation split; they join the
    epoch record under their own names. State lives in ``checkpoint_dir`` (``last.pt``, ``best.pt``);
    constructing a trainer over a folder that holds ``last.pt`` (and ``resume=True``) continues from it.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        checkpoint_dir: Path,
        explanandum: nn.Module,
        train_ds: AttributionDataset,
        val_ds: AttributionDataset,
        *,
        device: torch.device,
        resume: bool = True,
        epoch_metrics: Callable[[nn.Module], dict[str, float]] | None = None,
    ):
        self.cfg, self.explanandum, self.device = cfg, explanandum, device
        self.train_ds, self.val_ds, self.epoch_metrics = train_ds, val_ds, epoch_metrics
        self.checkpoint_dir = Path(checkpoint_dir)
        self.objective = OBJECTIVES.get(cfg.loss.name, field="loss.name")
        self.mode = early_stopping_mode(cfg.train.early_stopping.metric)
        self.channels_last = use_channels_last(device, cfg.train.channels_last)
        info = train_ds.info

        seed_everything(cfg.seed)
        self.explainer = build_explainer(
            cfg, info.num_classes, info.image_size, explanandum=explanandum, weights=cfg.explainer.weights
        ).to(device)
        if self.channels_last:
            self.explainer = self.explainer.to(memory_format=torch.channels_last)
        t = cfg.train
        self.optimizer = make_optimizer(self.explainer.parameters(), t.optimizer, t.lr, t.weight_decay)

        self.history: list[dict[str, float]] = []
        self.epoch, self.best_score, self.best_epoch, self.bad_epochs = 0, float("nan"), 0, 0
        self.finished = False
        self.seconds = 0.0
        last = self.checkpoint_dir / "last.pt"
        if resume and last.is_file():
            state = load_checkpoint(last)
            self.explainer.load_state_dict(state["explainer"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.epoch, self.history, self.finished = state["epoch"], state["history"], state["finished"]
            self.best_score, self.best_epoch, self.bad_epochs = state["best_score"], state["best_epoch"], state["bad_epochs"]
            self.seconds = state.get("seconds", 0.0)
        self.resumed_from = self.epoch
        self._base_state = {
            "config": cfg.model_dump(mode="json"),
            "num_classes": info.num_classes,
            "class_names": list(info.class_names),
            "image_size": info.image_size,
            "mean": list(info.mean),
            "std": list(info.std),
        }

    @property
    def stopped_early(self) -> bool:
        return self.finished and self.epoch < self.cfg.train.epochs

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    def _train_one_epoch(self) -> dict[str, float]:
        from tqdm.auto import tqdm

        cfg, device = self.cfg, self.device
        self.explainer.train()
        seed_everything(cfg.seed * 1009 + self.epoch)
        loader = make_loader(
            self.train_ds, cfg.train.batch_size, True, cfg.seed * 100003 + self.epoch, cfg.train.num_workers,
            drop_last=len(self.train_ds) > cfg.train.batch_size,
        )
        bar = tqdm(
            loader, desc=f"explainer epoch {self.epoch + 1}/{cfg.train.epochs}", disable=not cfg.train.progress, leave=False
        )
        sums: dict[str, float] = {}
        count = 0
        for step, batch in enumerate(bar):
            if cfg.train.max_train_batches is not None and step >= cfg.train.max_train_batches:
                break
            images = batch["image"].to(device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = batch["labels"].to(device, non_blocking=True)
            with autocast(device, cfg.train.amp):
                out = self.objective(self.explanandum, images, labels, self.explainer(images), cfg.loss)
            if not torch.isfinite(out.loss):
                raise TrainingDiverged(f"loss became {out.loss.item()} at epoch {self.epoch + 1}, step {step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            n = len(labels)
            count += n
            sums["loss"] = sums.get("loss", 0.0) + float(out.loss.detach()) * n
            for k, v in out.terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            bar.set_postfix(loss=f"{sums['loss'] / count:.4f}")
        return {f"train/{k}": v / max(count, 1) for k, v in sums.items()}

    def run_epoch(self) -> dict[str, float]:
        """Train one epoch, validate, checkpoint; returns the epoch record (flat named scalars)."""
        if self.finished:
            raise RuntimeError("training already finished")
        cfg, es = self.cfg, self.cfg.train.early_stopping
        t0 = time.perf_counter()
        record: dict[str, float] = {"epoch": float(self.epoch + 1)}
        record.update(self._train_one_epoch())
        record["time/train_epoch_s"] = time.perf_counter() - t0
        record.update({f"val/{k}": v for k, v in validation_loss(self.explainer, self.explanandum, self.val_ds, cfg, self.device).items()})
        if self.epoch_metrics is not None:
            self.explainer.eval()
            record.update(self.epoch_metrics(self.explainer))
        score = record["val/loss"] if es.metric == "loss" else record.get(es.metric, float("nan"))
        better = improved(score, self.best_score, self.mode, es.min_delta)
        if better:
            self.best_score, self.best_epoch, self.bad_epochs = score, self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        self.epoch += 1
        self.finished = self.epoch >= cfg.train.epochs or (es.enabled and self.bad_epochs >= es.patience)
        self.seconds += time.perf_counter() - t0
        record["time/epoch_s"] = time.perf_counter() - t0
        self.history.append(record)
        state = {
            **self._base_state,
            "explainer": self.explainer.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "finished": self.finished,
            "seconds": self.seconds,
        }
        if better or not self.best_checkpoint.is_file():
            save_checkpoint(self.best_checkpoint, state)
        save_checkpoint(self.checkpoint_dir / "last.pt", state)
        if cfg.train.progress:
            from attrsearch.metrics.registry import is_score

            shown = {k: v for k, v in record.items() if k in ("train/loss", "val/loss") or is_score(k)}
            print(f"epoch {self.epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) + (" *" if better else ""))
        return record

    def load_best(self) -> nn.Module:
        """The Explainer at its best epoch (eval mode)."""
        self.explainer.load_state_dict(load_checkpoint(self.best_checkpoint)["explainer"])
        return self.explainer.eval()
