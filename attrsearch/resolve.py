"""Names in a validated experiment resolved against the registries: one step, before any work.

``config/`` is pure pydantic (types, ranges, cross-field rules) and knows no registry. Every name a
user chooses from a registry is checked here instead: the dataset (and whether it needs
``data.root``), the Explanandum and Explainer architectures and the keys of their ``options``, the
transfer panel, the objective, the metric suites and the early-stopping metric. A bad name is a
``UserError`` with one line, ``SOURCE: dotted.field: message``, like a pydantic error.

Call ``resolve_experiment`` wherever an experiment is loaded for work (``attrsearch train``, a sweep's
base and probe values, ``run_experiment``). It opens no file and builds nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from attrsearch.config import DataConfig, EvaluationConfig, ExperimentConfig
from attrsearch.data import check_data_config
from attrsearch.errors import UserError
from attrsearch.metrics.registry import check_suite, metric_mode
from attrsearch.models import EXPLAINERS, EXPLANANDA
from attrsearch.models.explainers import RESERVED as EXPLAINER_RESERVED
from attrsearch.models.explananda import RESERVED as EXPLANANDUM_RESERVED
from attrsearch.models.registry import check_entry
from attrsearch.objectives import OBJECTIVES


def resolve_experiment(cfg: ExperimentConfig, source: str | None = None) -> ExperimentConfig:
    """``cfg`` unchanged once every registry name in it is known; else a one-line ``UserError``."""
    _resolved(source, _check_experiment, cfg)
    return cfg


def resolve_data(cfg: DataConfig, source: str | None = None, field: str = "data") -> DataConfig:
    """The dataset name and its ``root`` requirement of a ``DataConfig`` at ``field``."""
    _resolved(source, check_data_config, cfg, field)
    return cfg


def resolve_evaluation(cfg: EvaluationConfig, source: str | None = None, field: str = "evaluation") -> EvaluationConfig:
    """The metric suites and the transfer panel of an ``EvaluationConfig`` at ``field``."""
    _resolved(source, _check_evaluation, cfg, field)
    return cfg


def _resolved(source: str | None, check: Callable[..., None], *args: object) -> None:
    try:
        check(*args)
    except UserError as err:
        raise UserError(f"{source}: {err}" if source else str(err)) from None


def _at(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# The models an experiment names: (its field, the registry of their specs, the option keys the builder reserves).
_MODELS = (("explanandum", EXPLANANDA, EXPLANANDUM_RESERVED), ("explainer", EXPLAINERS, EXPLAINER_RESERVED))


def _check_experiment(cfg: ExperimentConfig) -> None:
    check_data_config(cfg.data, "data")
    for field, registry, reserved in _MODELS:
        entry = getattr(cfg, field)
        check_entry(registry, field, entry.arch, entry.options, reserved)
    OBJECTIVES.get(cfg.objective.name, field="objective.name")
    metric = cfg.train.early_stopping.metric
    if metric != "loss":
        _named("train.early_stopping.metric", metric_mode, metric)
    _check_evaluation(cfg.evaluation, "evaluation")
    if cfg.method is not None:
        _check_method(cfg.method.name, cfg.method.options)


def _check_method(name: str, options: dict) -> None:
    """The method's name and its options (their values too) against the method registry."""
    from attrsearch.attribution.methods import resolve_method

    try:
        resolve_method(name, options)
    except UserError as err:
        text = str(err).replace("--method: ", "").replace("--option ", "options.")
        raise UserError(f"method.{text}" if text.startswith("options.") else f"method.name: {text}") from None


def _check_evaluation(cfg: EvaluationConfig, field: str) -> None:
    _named(_at(field, "epoch_suite"), check_suite, cfg.epoch_suite)
    _named(_at(field, "final_suite"), check_suite, cfg.final_suite)
    for i, member in enumerate(cfg.transfer.panel):
        check_entry(EXPLANANDA, _at(field, f"transfer.panel.{i}"), member.arch, member.options, EXPLANANDUM_RESERVED)


def _named(field: str, check: Callable[[str], object], name: str) -> None:
    """``check(name)``, its ``UserError`` prefixed with ``field``."""
    try:
        check(name)
    except UserError as err:
        raise UserError(f"{field}: {err}") from None
