"""What every metric family's scorer shares: the per-batch context, the scorer base, value collection.

A scorer is built once per evaluation (``Scorer(setup, **options)``), sees every batch through
``update(ctx)`` and returns ``compute() -> (metrics, tables)`` at the end. Per-item values are kept
per name and averaged at the end (``Values``), so a result never depends on the batch size.

A family registers its scorer class in its own file with ``@register_family(name)``; suites
(``metrics.suites``) name families by that name, and ``metrics.families`` imports the built-in ones.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from attrsearch.metrics.common import Classifier, class_boxes, class_pairs
from attrsearch.registry import Registry

Tables = dict[str, pd.DataFrame]


@dataclass
class EvaluationSetup:
    """What scorers know before the first batch.

    cfg: ``EvaluationConfig``; info: the dataset's ``DatasetInfo``; classifier: the frozen
    Explanandum (logits (N, C)); panel: other frozen classifiers as (name, ``Classifier``) pairs;
    context_classes: the biased classes of planted context cues (None: ``info.context_classes``).
    """

    cfg: Any
    info: Any
    device: torch.device
    classifier: Classifier
    chunk: int
    panel: list[tuple[str, Classifier]] = field(default_factory=list)
    context_classes: Sequence[int] | None = None


@dataclass
class BatchContext:
    """One batch, restricted to its images with at least one label (B of them).

    images: (B, 3, H, W) normalised; labels: (B, C) multi-hot; maps: (B, C, H, W) in [0, 1];
    m, n: (B, H, W) in [0, 1] target / non-target masks; g: (B, H, W) in {0, 1} ground-truth union;
    valid: (B, H, W) bool non-void pixels; masks: (B, C, H, W) uint8 per-class ground truth (255 void);
    annotated: (B,) bool, the image has pixel masks; positions: (B,) int64 positions in the dataset;
    batch_start: dataset position of the batch's first image (labelled or not); boxes / box_labels:
    per image (N_i, 4) float ``x0, y0, x1, y1`` and (N_i,) int64; context: (B, H, W) uint8 planted cue
    or None; zero_logits: (1, C) of the all-mean image; masked_logits / clean_logits: (B, C) of
    m * x and x, computed once per batch when a scorer of the suite needs them (else None).
    """

    images: Tensor
    labels: Tensor
    maps: Tensor
    m: Tensor
    n: Tensor
    g: Tensor
    valid: Tensor
    masks: Tensor
    annotated: Tensor
    positions: Tensor
    batch_start: int
    boxes: list[Tensor]
    box_labels: list[Tensor]
    context: Tensor | None
    classifier: Classifier
    cfg: Any
    info: Any
    zero_logits: Tensor
    masked_logits: Tensor | None = None
    clean_logits: Tensor | None = None

    @cached_property
    def pairs(self) -> tuple[Tensor, Tensor]:
        """(image, present class) cases: two (P,) int64 tensors."""
        return class_pairs(self.labels)

    @cached_property
    def case_boxes(self) -> tuple[Tensor, Tensor]:
        """Ground-truth boxes of each case (CPU): (M, 4) boxes and (M,) the case index of each box."""
        pi, pc = self.pairs
        return class_boxes(self.boxes, self.box_labels, pi.cpu(), pc.cpu())


class Values:
    """Per-item values under a name, concatenated (float64, CPU) in the order they were added."""

    def __init__(self) -> None:
        self._parts: dict[str, list[Tensor]] = defaultdict(list)

    def add(self, name: str, values: Tensor) -> None:
        self._parts[name].append(values.detach().double().flatten().cpu())

    def names(self) -> list[str]:
        return list(self._parts)

    def all(self, name: str) -> Tensor:
        parts = self._parts.get(name)
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)

    def mean(self, name: str) -> float:
        v = self.all(name)
        return v.mean().item() if v.numel() else math.nan

    def means(self) -> dict[str, float]:
        """Mean of every name not starting with ``_`` (names starting with ``_`` are helpers)."""
        return {name: self.mean(name) for name in self._parts if not name.startswith("_")}

    def per_class(self, name: str, classes: str, num_classes: int) -> Tensor:
        """Mean of the values ``name`` grouped by the class list ``classes``: (num_classes,), NaN if none."""
        values, cls = self.all(name), self.all(classes).long()
        counts = torch.bincount(cls, minlength=num_classes).double()
        # .double(): with no values at all (e.g. no case has a box) bincount returns int64, and NaN needs a float
        sums = torch.bincount(cls, weights=values, minlength=num_classes).double()
        return torch.where(counts > 0, sums / counts.clamp_min(1.0), torch.full_like(sums, math.nan))


class Scorer:
    """Base of the family scorers.

    ``needs``: the per-batch logits the scorer reads (``"masked_logits"``, ``"clean_logits"``); the
    evaluation computes each once per batch for the whole suite. ``notes`` (printed) and ``params``
    (text records written next to the metrics) may be filled at construction or in ``compute``.
    A per-class table fragment may be returned as ``tables["per_class"]`` (a frame indexed by class
    name); the evaluation joins the fragments of a suite into one ``per_class`` table.
    """

    family = ""
    needs: frozenset[str] = frozenset()

    def __init__(self, setup: EvaluationSetup) -> None:
        self.setup = setup
        self.values = Values()
        self.notes: list[str] = []
        self.params: dict[str, str] = {}

    def update(self, ctx: BatchContext) -> None:
        raise NotImplementedError

    def compute(self) -> tuple[dict[str, float], Tables]:
        return self.values.means(), {}


# Metric family name (as suites name it) -> its scorer class.
FAMILIES: Registry[type[Scorer]] = Registry("metric family")


def register_family(name: str, doc: str | None = None) -> Callable[[type[Scorer]], type[Scorer]]:
    """Decorator: register a ``Scorer`` subclass as the metric family ``name``."""
    return FAMILIES.register(name, doc)


def per_class_frame(class_names: Sequence[str]) -> pd.DataFrame:
    """An empty per-class table fragment indexed by class name."""
    return pd.DataFrame(index=pd.Index(list(class_names), name="class"))
