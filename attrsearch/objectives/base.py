"""What every training objective provides, and the registry that names them.

An objective is registered in its own file, against its config class (``attrsearch.config.objectives``),
whose ``name`` field gives the name it is chosen by::

    @register_objective(RtisObjective)
    def rtis_loss(explanandum, images, labels, mask_logits, cfg) -> LossOutput: ...

An objective is a loss over one batch, ``loss(explanandum, images, labels, mask_logits, cfg) ->
LossOutput``; an objective that needs more of the batch than the labels names the sample fields in
``inputs`` (e.g. ``("masks",)``) and receives them as keyword arguments. Plus, for objectives that also train a classifier (CASM, Zolna et al. 2020), a
``step_hook``: built once per run, it chooses the classifier the Explainer is scored against at
each step and takes its own optimisation step after the Explainer's. The training loop knows no
objective by name; it only calls these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from torch import Tensor, nn

from attrsearch.config.base import StrictModel
from attrsearch.config.objectives import objective_name
from attrsearch.registry import Registry


class LossOutput(NamedTuple):
    loss: Tensor  # scalar, differentiable w.r.t. the Explainer
    terms: dict[str, Tensor]  # detached scalar terms, for logging
    masks: Tensor  # (B, C, H, W) in [0, 1]: the Explainer's masks
    logits_masked: Tensor  # (B, C): the classifier on the masked images


class StepHook(Protocol):
    """Per-run state of an objective that trains more than the Explainer (checkpointed with the run)."""

    def classifier(self, step: int | None) -> nn.Module:
        """The classifier the Explainer's loss uses at this training step (None: validation, the current one)."""

    def after_step(self, images: Tensor, labels: Tensor, output: LossOutput) -> dict[str, float]:
        """The objective's own update after the Explainer's step; returns terms to log."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


LossFn = Callable[[nn.Module, Tensor, Tensor, Tensor, Any], LossOutput]
# (objective cfg, explanandum, device, *, explainer=the run's Explainer, seed=the run's seed) -> hook
HookFactory = Callable[..., StepHook]


@dataclass(frozen=True)
class Objective:
    """A registered objective: its loss, optionally the factory of its step hook, its config class and
    the sample fields (besides image and labels) its loss takes as keyword arguments."""

    loss: LossFn
    step_hook: HookFactory | None = None
    config: type[StrictModel] | None = None
    inputs: tuple[str, ...] = ()


OBJECTIVES: Registry[Objective] = Registry("objective", Objective)


def register_objective(
    config: type[StrictModel], step_hook: HookFactory | None = None, inputs: tuple[str, ...] = ()
) -> Callable[[LossFn], LossFn]:
    """Decorator: register the loss (and ``step_hook``, and the batch fields ``inputs`` it reads) under
    the ``objective.name`` of ``config``."""
    return OBJECTIVES.register(objective_name(config), step_hook=step_hook, config=config, inputs=tuple(inputs))
