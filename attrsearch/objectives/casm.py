"""Classifier-agnostic saliency map extraction (Zolna, Geras & Cho 2020): ``casm``.

The classifier F is trained together with the masker M (Alg. 1), starting from the trained
Explanandum:

- classifier step (eq. 5 with the mixed loss of eq. 8): SGD on
  0.5 * (BCE(F(x), y) + BCE(F((1 - m) * x), y)), the mask detached (multi-label BCE here, the
  paper's cross-entropy on ImageNet);
- masker step (eqs. 6-7): minimise negEntropy(F'((1 - m) * x)) over the images F' classifies
  correctly + lambda_r * mean(m), where F' is the current classifier with probability 0.5 and
  otherwise a snapshot drawn uniformly from the pool the thinning strategy keeps (section 2.3):
  F (the first classifier only, which is then never trained: the classifier-dependent baseline),
  L (the latest), FL (first and latest), L100 / L1000 (one every 100 / 1000 classifier steps, at
  most 30, a random one dropped beyond that).

The mask is class-agnostic: the Explainer has one output map (``ClassAgnosticExplainer``
broadcasts it to the C classes, so every consumer still sees (B, C, H, W)). The masker reads the
classifier's features: an ``explanandum_encoder`` Explainer's (frozen, so detached) encoder copy is
overwritten with the classifier's weights after every classifier step, which is the paper's shared
encoder without letting either optimiser reach the other's parameters.

Multi-label adaptations: "correct" = the top-1 class of F(x) is one of the labels; the entropy is the
softmax over classes, sum_c p_c log p_c per image (p clamped at 1e-16). The co-trained classifier
stays in eval mode (the Explanandum's BatchNorm statistics, no dropout; the paper trains it in train
mode) so that scoring, snapshots and the shared encoder are one function of the weights.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from attrsearch.config.objectives import CasmObjective
from attrsearch.objectives.base import LossOutput, register_objective


class ClassAgnosticExplainer(nn.Module):
    """An Explainer with one output map, broadcast to ``num_classes``: (B, 3, H, W) -> (B, C, H, W)."""

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.inner, self.num_classes = inner, num_classes

    def forward(self, x: Tensor) -> Tensor:
        logits = self.inner(x)
        return logits[:, :1].expand(-1, self.num_classes, -1, -1)


class Detached(nn.Module):
    """``model`` evaluated with detached parameters and buffers: gradients reach the input only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        tensors = {k: v.detach() for k, v in (*self.model.named_parameters(), *self.model.named_buffers())}
        return functional_call(self.model, tensors, (x,))


def masker_negative_entropy(logits_out: Tensor, logits_clean: Tensor, labels: Tensor) -> Tensor:
    """Eq. 7's score: mean over correctly classified images of sum_c p_c log p_c, p = softmax(F((1-m)x)).

    logits_out, logits_clean: (B, C); labels: (B, C) multi-hot. An image is correct when the top-1
    class of its clean logits is one of its labels. 0 (with a gradient path) when none is correct.
    """
    p = torch.softmax(logits_out.float(), dim=1).clamp_min(1e-16)
    neg_entropy = (p * p.log()).sum(dim=1)
    top = logits_clean.detach().argmax(dim=1, keepdim=True)
    correct = labels.gather(1, top).squeeze(1) > 0
    if not correct.any():
        return neg_entropy.sum() * 0.0
    return neg_entropy[correct].mean()


def classifier_loss(logits_clean: Tensor, logits_out: Tensor, labels: Tensor) -> Tensor:
    """Eq. 8 (multi-label): 0.5 * (BCE(F(x), y) + BCE(F((1-m)x), y)), each a mean over classes and batch."""
    labels = labels.float()
    return 0.5 * (
        F.binary_cross_entropy_with_logits(logits_clean.float(), labels)
        + F.binary_cross_entropy_with_logits(logits_out.float(), labels)
    )


def casm_loss(classifier: nn.Module, images: Tensor, labels: Tensor, mask_logits: Tensor, cfg) -> LossOutput:
    """The masker's loss (Zolna et al. 2020, eq. 7): negEntropy(F((1-m)x)) on correct images + lambda_r mean(m).

    classifier: the drawn classifier (its weights receive no gradient: the hook passes it detached).
    images: (B, 3, H, W) normalised; labels: (B, C); mask_logits: (B, C, H, W), every channel equal
    (class-agnostic), so channel 0 is the mask. Returns the broadcast masks (B, C, H, W).
    """
    masks = torch.sigmoid(mask_logits.float())
    m = masks[:, :1]
    both = torch.cat([images, images * (1.0 - m.to(images.dtype))], dim=0)
    logits_clean, logits_out = classifier(both).float().chunk(2, dim=0)
    terms = {"entropy": masker_negative_entropy(logits_out, logits_clean, labels), "area": m.mean()}
    loss = terms["entropy"] + cfg.lambda_r * terms["area"]
    return LossOutput(loss, {k: v.detach() for k, v in terms.items()}, masks, logits_out)


class CasmHook:
    """The co-trained classifier, its SGD optimiser and the snapshot pool of one run.

    ``classifier(step)`` draws the classifier the masker is scored against (seeded ``random.Random``,
    its state checkpointed); ``after_step`` takes the classifier's step on the batch's masks, updates
    the pool and copies the classifier's encoder into the Explainer's.
    """

    def __init__(self, cfg, explanandum: nn.Module, device: Any, explainer: nn.Module | None = None, seed: int = 0):
        self.cfg = cfg
        self.trains = cfg.thinning != "F"
        self.model = copy.deepcopy(explanandum).to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(self.trains)
        self.optimizer = (
            torch.optim.SGD(
                self.model.parameters(),
                lr=cfg.classifier_lr,
                momentum=cfg.classifier_momentum,
                weight_decay=cfg.classifier_weight_decay,
            )
            if self.trains
            else None
        )
        self.current = Detached(self.model)
        self.steps = 0  # classifier steps taken
        self.pool: list[tuple[int, nn.Module]] = [(0, self._frozen_copy())]
        self.rng = random.Random(seed)
        self.drew_current: bool | None = None
        self.encoder = _shared_encoder(explainer, self.model)

    # -- the pool ---------------------------------------------------------------------------------

    def _frozen_copy(self) -> nn.Module:
        snap = copy.deepcopy(self.model).eval()
        for p in snap.parameters():
            p.requires_grad_(False)
        return snap

    def _store_latest(self) -> None:
        """L / FL: the latest slot follows the classifier (a copy of its weights, reused); FL keeps slot 0."""
        slot = 1 if self.cfg.thinning == "FL" else 0
        if len(self.pool) > slot:
            snap = self.pool[slot][1]
            snap.load_state_dict(self.model.state_dict())
            self.pool[slot] = (self.steps, snap)
        else:
            self.pool.append((self.steps, self._frozen_copy()))

    def _update_pool(self) -> None:
        every = self.cfg.snapshot_every
        if self.cfg.thinning in ("L", "FL"):
            self._store_latest()
        elif every is not None and self.steps % every == 0:
            self.pool.append((self.steps, self._frozen_copy()))
            if len(self.pool) > self.cfg.max_snapshots:
                del self.pool[self.rng.randrange(len(self.pool))]

    @property
    def pool_steps(self) -> list[int]:
        """The classifier step of each kept snapshot (0 = the trained Explanandum)."""
        return [s for s, _ in self.pool]

    # -- StepHook ---------------------------------------------------------------------------------

    def classifier(self, step: int | None) -> nn.Module:
        """Training (step given): the current classifier with probability ``current_probability``,
        else a uniformly drawn snapshot. Validation (None): the current classifier. Always detached."""
        if step is None:
            return self.current
        self.drew_current = self.rng.random() < self.cfg.current_probability
        if self.drew_current:
            return self.current
        return self.pool[self.rng.randrange(len(self.pool))][1]

    def after_step(self, images: Tensor, labels: Tensor, output: LossOutput) -> dict[str, float]:
        """The classifier's SGD step on eq. 8 with the batch's (detached) masks; pool and encoder update."""
        extra = {"casm/drew_current": float(bool(self.drew_current))}
        if not self.trains:
            return extra
        m = output.masks[:, :1].detach().to(images.dtype)
        logits_clean, logits_out = self.model(torch.cat([images, images * (1.0 - m)], dim=0)).chunk(2, dim=0)
        loss = classifier_loss(logits_clean, logits_out, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)  # no gradient lingers on the classifier between steps
        self.steps += 1
        self._update_pool()
        self.sync_encoder()
        extra["casm/classifier_loss"] = float(loss.detach())
        return extra

    def sync_encoder(self) -> None:
        """Copy the classifier's encoder stages into the Explainer's encoder (no-op without one)."""
        if self.encoder is None:
            return
        stages, explainer_stages = self.encoder
        with torch.no_grad():
            for src, dst in zip(stages, explainer_stages):
                dst.load_state_dict(src.state_dict())

    def panel_member(self) -> tuple[str, nn.Module]:
        """The co-trained classifier for the transfer panel (frozen, eval mode)."""
        return ("casm_classifier", self._frozen_copy())

    def state_dict(self) -> dict[str, Any]:
        return {
            "classifier": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "steps": self.steps,
            "pool": [(s, snap.state_dict()) for s, snap in self.pool],
            "rng": self.rng.getstate(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["classifier"])
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.steps = state["steps"]
        self.pool = []
        for s, weights in state["pool"]:
            snap = self._frozen_copy()
            snap.load_state_dict(weights)
            self.pool.append((s, snap))
        self.rng.setstate(state["rng"])
        self.sync_encoder()


def _shared_encoder(explainer: nn.Module | None, model: nn.Module):
    """(classifier stages, Explainer encoder stages) when the Explainer copies the classifier's encoder."""
    from attrsearch.models.explainers import EncoderExplainer

    inner = explainer.inner if isinstance(explainer, ClassAgnosticExplainer) else explainer
    if not isinstance(inner, EncoderExplainer) or not callable(getattr(model, "encoder_stages", None)):
        return None
    stages, _ = model.encoder_stages()
    return stages[: len(inner.encoder)], list(inner.encoder)


def casm_hook(cfg, explanandum: nn.Module, device: Any, explainer: nn.Module | None = None, seed: int = 0) -> CasmHook:
    """The step hook of ``casm``: the co-trained classifier and its snapshot pool."""
    return CasmHook(cfg, explanandum, device, explainer=explainer, seed=seed)


# Registered here, below its step hook: the decorator of ``casm_loss``, applied once both exist.
register_objective(CasmObjective, step_hook=casm_hook)(casm_loss)
