"""The four plugin patterns of CONTRIBUTING.md work as written: registered by one decorator, found by
name through the same calls the package uses, and removed again."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
import torch

from attrsearch.attribution.methods import METHODS, register_method, resolve_method
from attrsearch.config import DataConfig
from attrsearch.config.base import StrictModel
from attrsearch.data import DATASETS, AttributionDataset, build_dataset, fingerprint, register_dataset
from attrsearch.errors import UserError
from attrsearch.metrics.scorer import FAMILIES, Scorer, register_family
from attrsearch.metrics.suites import Family
from attrsearch.objectives import OBJECTIVES, LossOutput, register_objective


class _Tiny(AttributionDataset):
    def __init__(self, split: str):
        self.split = split

    def __len__(self) -> int:
        return 3


def test_dataset_pattern():
    @register_dataset("tiny_test", fingerprint=lambda cfg: 7, needs_root=False, doc="a test dataset")
    def build_tiny(cfg, split: str, cache_dir: Path) -> _Tiny:
        return _Tiny(split)

    try:
        cfg = DataConfig.model_construct(dataset="tiny_test", root=None)
        assert len(build_dataset(cfg, "val", "/nowhere")) == 3
        assert fingerprint(cfg) == 7
        assert DATASETS.get("tiny_test").scan is None
        assert DATASETS.describe()["tiny_test"] == "a test dataset"
    finally:
        DATASETS.remove("tiny_test")
    with pytest.raises(UserError, match="unknown dataset 'tiny_test'"):
        DATASETS.get("tiny_test")


class TinyObjective(StrictModel):
    name: Literal["tiny_test"] = "tiny_test"
    weight: float = 1.0


def test_objective_pattern():
    @register_objective(TinyObjective)
    def tiny_loss(explanandum, images, labels, mask_logits, cfg) -> LossOutput:
        """Mean mask, weighted."""
        masks = torch.sigmoid(mask_logits)
        return LossOutput(cfg.weight * masks.mean(), {}, masks, labels)

    try:
        objective = OBJECTIVES.get("tiny_test", field="objective.name")
        assert objective.config is TinyObjective and objective.step_hook is None
        out = objective.loss(None, None, torch.ones(1, 2), torch.zeros(1, 2, 4, 4), TinyObjective(weight=2.0))
        assert out.loss.item() == pytest.approx(1.0)
        assert OBJECTIVES.describe()["tiny_test"] == "Mean mask, weighted."
    finally:
        OBJECTIVES.remove("tiny_test")
    assert "tiny_test" not in OBJECTIVES


class TinyOptions(StrictModel):
    scale: float = 1.0


def test_method_pattern():
    @register_method("tiny_test", TinyOptions, doc="constant maps")
    def tiny(model, images, targets=None, **options):
        return torch.full((images.shape[0], 2, *images.shape[2:]), options["scale"])

    try:
        fn, opts = resolve_method("tiny_test", {"scale": 3})
        assert fn(None, torch.zeros(1, 3, 4, 4), None, **opts.model_dump()).unique().tolist() == [3.0]
        with pytest.raises(UserError, match="scale"):
            resolve_method("tiny_test", {"scale": "x"})
    finally:
        METHODS.remove("tiny_test")
    with pytest.raises(UserError, match="unknown attribution method 'tiny_test'"):
        resolve_method("tiny_test")


def test_metric_family_pattern():
    @register_family("tiny_test")
    class TinyScorer(Scorer):
        family = "tiny"

        def update(self, ctx) -> None:
            self.values.add("tiny/one", torch.ones(2))

    try:
        scorer = Family("tiny_test").scorer_class()(None)
        scorer.update(None)
        assert isinstance(scorer, TinyScorer) and scorer.compute() == ({"tiny/one": 1.0}, {})
    finally:
        FAMILIES.remove("tiny_test")
    with pytest.raises(UserError, match="unknown metric family 'tiny_test'"):
        Family("tiny_test").scorer_class()
