"""Where an evaluation's maps come from: the one difference between the scoring pipelines.

A source turns the frozen Explanandum into a timed attribution (images (B, 3, H, W) normalised ->
maps (B, C, H, W) in [0, 1], with ``seconds_per_image``) and adds its own records to the result:

- ``ExplainerSource``: a training checkpoint's Explainer (one forward pass, Stalder et al. 2022),
  optionally followed by test-time refinement (Schinagl et al. 2025);
- ``MethodSource``: a baseline method of ``attrsearch.attribution.methods`` (Grad-CAM, RISE, ...);
- ``ExportedSource``: an exported Explainer folder (``attrsearch export``: ``explainer.pt2``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from attrsearch.attribution import explainer_attribution
from attrsearch.attribution.methods import method_attribution
from attrsearch.data import config_class_count
from attrsearch.errors import UserError
from attrsearch.evaluate.refine import check_refine, refined_attribution, timed
from attrsearch.export import load_exported
from attrsearch.metrics.results import EvaluationResult
from attrsearch.train.checkpoint import check_class_count, checkpoint_config, explainer_from_state, load_checkpoint


class MapSource(Protocol):
    """What the scoring pipeline asks of a source of maps."""

    method: str  # the ``attribution/method`` record
    label: str  # the prefix of its notes

    def attribution(self, explanandum: nn.Module, cfg, device: torch.device) -> Any:
        """A timed attribution (``seconds_per_image``) explaining ``explanandum`` on ``device``."""

    def record(self, result: EvaluationResult, attribute: Any, cfg) -> None:
        """Add the source's own metrics and params to ``result``."""

    def check(self, cfg) -> None:
        """One-line ``UserError`` if the source cannot explain ``cfg``'s data (before any data is built)."""

    def check_dataset(self, info) -> None:
        """The same, once the dataset is built (``info``: its ``DatasetInfo``), before any model is trained."""


class ExplainerSource:
    """A trained Explainer checkpoint (a file, or a run folder holding ``checkpoints/best.pt``);
    ``refine``: T steps of test-time refinement after it (their time counts in ``seconds_per_image``)."""

    method = label = "explainer"

    def __init__(self, checkpoint: Path, refine: int = 0, refine_lr: float | None = None) -> None:
        check_refine(refine, refine_lr)
        self.checkpoint, self.refine, self.refine_lr = Path(checkpoint), refine, refine_lr
        self.state = load_checkpoint(self.checkpoint)
        self.cfg = checkpoint_config(self.state)  # the config stored in it
        self.explainer = explainer_from_state(self.state, "cpu")  # checks its class count against that config

    def check(self, cfg) -> None:
        """The Explainer's class count against another experiment's data (``compare``), before any work."""
        if cfg is not self.cfg:
            check_class_count(self.state, cfg.data, "the experiment's config")

    def check_dataset(self, info) -> None:
        """The class count of data whose config does not fix it (COCO's categories), before any training."""
        if info.num_classes != self.state["num_classes"]:
            raise UserError(
                f"{self.state['path']}: its Explainer is for {self.state['num_classes']} classes, "
                f"but the {info.name} data has {info.num_classes}"
            )

    def attribution(self, explanandum: nn.Module, cfg, device: torch.device):
        attribute = explainer_attribution(self.explainer.to(device))
        self.refined = refined_attribution(attribute, explanandum, cfg, self.refine, self.refine_lr)
        return timed(self.refined)

    def record(self, result: EvaluationResult, attribute, cfg) -> None:
        result.metrics["attribution/refine_steps"] = float(self.refine)
        description = f"Explainer {cfg.explainer.arch} ({self.checkpoint})"
        if self.refine:
            rank = self.refined.rank  # type: ignore[attr-defined]
            description += (
                f" + {self.refine} steps of test-time refinement (rank objective, Adam lr "
                f"{self.refined.refine_lr:g}, grid {rank.grid[0]}, {rank.steps} steps, reference {rank.reference})"  # type: ignore[attr-defined]
            )
        result.params["attribution/description"] = description


class MethodSource:
    """A baseline method with its validated options (``check_method``)."""

    def __init__(self, name: str, options) -> None:
        self.method = self.label = name
        self.options = options

    def attribution(self, explanandum: nn.Module, cfg, device: torch.device):
        return method_attribution(explanandum, self.method, self.options.model_dump())

    def check(self, cfg) -> None:
        """Checked by ``check_method`` when the source is made."""

    def check_dataset(self, info) -> None:
        """A method explains any class count."""

    def record(self, result: EvaluationResult, attribute, cfg) -> None:
        result.params["attribution/options"] = json.dumps(attribute.options, sort_keys=True, default=str)
        result.params["attribution/description"] = attribute.description


class ExportedSource:
    """An exported Explainer (``explainer.pt2`` and ``model_card.json``): the production artefact,
    scored against the experiment's Explanandum and data (its input size must be theirs)."""

    method = label = "exported_explainer"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.bundle = load_exported(self.folder, "cpu")

    def check(self, cfg) -> None:
        """One-line error for a model exported at another input size (or class count) than the experiment's data."""
        if self.bundle.image_size != cfg.data.image_size:
            raise UserError(
                f"{self.folder}: exported for {self.bundle.image_size} px images, the config's data has "
                f"{cfg.data.image_size} px"
            )
        expected = config_class_count(cfg.data)
        if expected is not None and expected != len(self.bundle.class_names):
            raise UserError(
                f"{self.folder}: exported for {len(self.bundle.class_names)} classes, the config's data has {expected}"
            )

    def check_dataset(self, info) -> None:
        """One-line error for a model exported for another class count than the data's."""
        if len(self.bundle.class_names) != info.num_classes:
            raise UserError(
                f"{self.folder}: exported for {len(self.bundle.class_names)} classes, the {info.name} data has "
                f"{info.num_classes}"
            )

    def attribution(self, explanandum: nn.Module, cfg, device: torch.device):
        return timed(explainer_attribution(self.bundle.module.to(device)))

    def record(self, result: EvaluationResult, attribute, cfg) -> None:
        arch = self.bundle.card.get("explainer", {}).get("arch", "?")
        result.params["attribution/description"] = f"exported Explainer {arch} ({self.folder})"
