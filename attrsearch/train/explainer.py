"""One Explainer's training state and its three per-epoch steps: train, validate, checkpoint.

``ExplainerRun`` holds what one seed's run owns (the Explainer, its optimiser, the objective's step
hook, early stopping, the history) and exposes the steps of an epoch as plain methods, so the epoch
loop in ``train/run.py`` reads top to bottom. The shuffling order and every random draw are seeded
per epoch, so a run resumed from ``last.pt`` is bit-for-bit the run that was interrupted.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from attrsearch.config import ExperimentConfig
from attrsearch.data import AttributionDataset
from attrsearch.errors import UserError
from attrsearch.objectives import OBJECTIVES, LossOutput
from attrsearch.train.checkpoint import build_explainer, load_checkpoint, save_checkpoint
from attrsearch.train.runtime import (
    autocast,
    make_loader,
    make_lr_scheduler,
    make_optimizer,
    seed_everything,
    use_channels_last,
)

log = logging.getLogger(__name__)


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


class _Means:
    """Sample-weighted running means of a loss and its terms."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, out: LossOutput, n: int, extra: dict[str, float] | None = None) -> None:
        self.count += n
        for k, v in {"loss": out.loss.detach(), **out.terms, **(extra or {})}.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * n

    def means(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v / max(self.count, 1) for k, v in self.sums.items()}


def set_mask_prior(explainer: nn.Module, area: float) -> None:
    """Set the bias of the Explainer's output conv (its ``classifier``) to ``logit(area)``, so every
    mask starts near ``area`` instead of 0.5: the prior initialisation of Lin et al. 2017 (focal loss,
    section 4.1), here for the area the objective's bounds ask for. A class-agnostic wrapper (CASM) is
    looked through (its ``inner`` Explainer)."""
    head = getattr(getattr(explainer, "inner", explainer), "classifier", None)
    if not isinstance(head, nn.Conv2d) or head.bias is None:
        raise UserError(
            f"explainer.initial_mask_area: the {type(explainer).__name__} Explainer has no output conv with a bias "
            "named `classifier` (explanandum_encoder and unet_small have one); leave it unset"
        )
    with torch.no_grad():
        head.bias.fill_(math.log(area / (1.0 - area)))


class ExplainerRun:
    """Trains one Explainer for the Explanandum of ``cfg``, one epoch at a time.

    State lives in ``checkpoint_dir`` (``last.pt``, ``best.pt``); a run over a folder that holds
    ``last.pt`` (and ``resume=True``) continues from it. The objective (``cfg.objective.name``) gives
    the loss and, if it also trains a classifier, a step hook whose state is checkpointed too.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        checkpoint_dir: Path,
        explanandum: nn.Module,
        train_ds: AttributionDataset,
        *,
        device: torch.device,
        resume: bool = True,
    ):
        self.cfg, self.explanandum, self.device, self.train_ds = cfg, explanandum, device, train_ds
        self.checkpoint_dir = Path(checkpoint_dir)
        self.objective = OBJECTIVES.get(cfg.objective.name, field="objective.name")
        self.mode = early_stopping_mode(cfg.train.early_stopping.metric)
        self.channels_last = use_channels_last(device, cfg.train.channels_last)
        info = train_ds.info

        seed_everything(cfg.seed)
        self.explainer = build_explainer(
            cfg, info.num_classes, info.image_size, explanandum=explanandum, weights=cfg.explainer.weights
        ).to(device)
        if cfg.explainer.initial_mask_area is not None:
            set_mask_prior(self.explainer, cfg.explainer.initial_mask_area)
        if self.channels_last:
            self.explainer = self.explainer.to(memory_format=torch.channels_last)
        t = cfg.train
        self.optimizer = make_optimizer(self.explainer.parameters(), t.optimizer, t.lr, t.weight_decay)
        self.scheduler = make_lr_scheduler(self.optimizer, t.lr_schedule, self.steps_per_epoch(), t.epochs)
        hook = self.objective.step_hook
        self.hook = (
            hook(cfg.objective, explanandum, device, explainer=self.explainer, seed=cfg.seed)
            if hook is not None
            else None
        )

        self.history: list[dict[str, float]] = []
        self.epoch, self.best_score, self.best_epoch, self.bad_epochs = 0, float("nan"), 0, 0
        self.finished = False
        self.seconds = 0.0
        last = self.checkpoint_dir / "last.pt"
        if resume and last.is_file():
            self._restore(load_checkpoint(last))
        self.resumed_from = self.epoch
        self._base_state = {
            "config": cfg.model_dump(mode="json"),
            "num_classes": info.num_classes,
            "class_names": list(info.class_names),
            "image_size": info.image_size,
            "mean": list(info.mean),
            "std": list(info.std),
        }

    def train_loader(self, epoch: int):
        """The shuffled train loader of ``epoch`` (0-based; its order is seeded by the epoch); batches of
        ``train.batch_size``, the last short one dropped unless it is the only one."""
        cfg = self.cfg
        return make_loader(
            self.train_ds,
            cfg.train.batch_size,
            True,
            cfg.seed * 100003 + epoch,
            cfg.train.num_workers,
            drop_last=len(self.train_ds) > cfg.train.batch_size,
        )

    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch: the train loader's batches, at most ``train.max_train_batches``."""
        steps, cap = len(self.train_loader(0)), self.cfg.train.max_train_batches
        return min(steps, cap) if cap is not None else steps

    @property
    def stopped_early(self) -> bool:
        return self.finished and self.epoch < self.cfg.train.epochs

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    def _classifier(self, step: int | None) -> nn.Module:
        """The classifier the loss scores masks with (the frozen Explanandum unless the objective trains one)."""
        return self.hook.classifier(step) if self.hook is not None else self.explanandum

    def _images(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch["image"].to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, batch["labels"].to(self.device, non_blocking=True)

    def _inputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """The batch fields the objective's loss reads besides images and labels (``Objective.inputs``)."""
        return {k: batch[k].to(self.device, non_blocking=True) for k in self.objective.inputs}

    def train_epoch(self) -> dict[str, float]:
        """One pass over the train split; returns ``train/<term>`` means."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.explainer.train()
        seed_everything(cfg.seed * 1009 + self.epoch)
        loader = self.train_loader(self.epoch)
        desc = f"explainer epoch {self.epoch + 1}/{cfg.train.epochs}"
        bar = tqdm(loader, desc=desc, disable=not cfg.train.progress, leave=False)
        means = _Means()
        for step, batch in enumerate(bar):
            if cfg.train.max_train_batches is not None and step >= cfg.train.max_train_batches:
                break
            images, labels = self._images(batch)
            with autocast(self.device, cfg.train.amp):
                out = self.objective.loss(
                    self._classifier(step), images, labels, self.explainer(images), cfg.objective, **self._inputs(batch)
                )
            if not torch.isfinite(out.loss):
                raise TrainingDiverged(f"loss became {out.loss.item()} at epoch {self.epoch + 1}, step {step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            extra = self.hook.after_step(images, labels, out) if self.hook is not None else None
            means.add(out, len(labels), extra)
            bar.set_postfix(loss=f"{means.sums['loss'] / means.count:.4f}")
        return means.means("train/")

    @torch.no_grad()
    def validation_loss(self, ds: AttributionDataset) -> dict[str, float]:
        """``val/<term>``: the objective and its terms over a split (no gradients)."""
        cfg = self.cfg
        self.explainer.eval()
        means = _Means()
        for batch in make_loader(ds, cfg.evaluation.batch_size, False, 0, cfg.train.num_workers):
            images, labels = self._images(batch)
            with autocast(self.device, cfg.train.amp):
                out = self.objective.loss(
                    self._classifier(None), images, labels, self.explainer(images), cfg.objective, **self._inputs(batch)
                )
            means.add(out, len(labels))
        return means.means("val/")

    def end_epoch(self, record: dict[str, float], seconds: float) -> dict[str, float]:
        """Early stopping on the record's score, then ``last.pt`` (and ``best.pt`` on improvement)."""
        cfg, es = self.cfg, self.cfg.train.early_stopping
        score = record["val/loss"] if es.metric == "loss" else record.get(es.metric, float("nan"))
        better = improved(score, self.best_score, self.mode, es.min_delta)
        if better:
            self.best_score, self.best_epoch, self.bad_epochs = score, self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        self.epoch += 1
        self.finished = self.epoch >= cfg.train.epochs or (es.enabled and self.bad_epochs >= es.patience)
        self.seconds += seconds
        record["time/epoch_s"] = seconds
        self.history.append(record)
        state = self._state()
        if better or not self.best_checkpoint.is_file():
            save_checkpoint(self.best_checkpoint, state)
        save_checkpoint(self.checkpoint_dir / "last.pt", state)
        if cfg.train.progress:
            from attrsearch.metrics.registry import is_score

            shown = {k: v for k, v in record.items() if k in ("train/loss", "val/loss") or is_score(k)}
            log.info(
                f"epoch {self.epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) + (" *" if better else "")
            )
        return record

    def _state(self) -> dict:
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
        if self.hook is not None:
            state["objective_state"] = self.hook.state_dict()
        if self.scheduler is not None:
            state["lr_scheduler"] = self.scheduler.state_dict()
        return state

    def _restore(self, state: dict) -> None:
        self.explainer.load_state_dict(state["explainer"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.history, self.finished = state["epoch"], state["history"], state["finished"]
        self.best_score, self.best_epoch, self.bad_epochs = (
            state["best_score"],
            state["best_epoch"],
            state["bad_epochs"],
        )
        self.seconds = state.get("seconds", 0.0)
        if self.scheduler is not None and "lr_scheduler" in state:
            self.scheduler.load_state_dict(state["lr_scheduler"])
        if self.hook is not None and "objective_state" in state:
            self.hook.load_state_dict(state["objective_state"])

    def load_best(self) -> nn.Module:
        """The Explainer at its best epoch (eval mode)."""
        self.explainer.load_state_dict(load_checkpoint(self.best_checkpoint)["explainer"])
        return self.explainer.eval()
