"""The one step from a sweep's base experiment and a trial's searched values to the trial's experiment.

Every consumer goes through it: the trainable (what a trial runs), the W&B callback (what a run logs
as its config), the results writer (``best.yaml``), the Explanandum preparation (which classifiers
the trials need) and the sweep file's checks (every value a distribution can produce).

Searched paths are dotted experiment fields. The objective's fields are ``objective.*``; sweep files
written before objectives had names say ``loss.*``, which is read as ``objective.*``.
"""

from __future__ import annotations

import copy
from typing import Any

from attrsearch.config import ExperimentConfig, validate
from attrsearch.config.base import set_dotted
from attrsearch.config.search import expand_variants
from attrsearch.errors import UserError

_LEGACY_PREFIXES = {"loss.": "objective."}


def canonical_path(dotted: str) -> str:
    """``loss.lambda_tv`` -> ``objective.lambda_tv``; other paths unchanged."""
    for old, new in _LEGACY_PREFIXES.items():
        if dotted.startswith(old):
            return new + dotted[len(old) :]
    return dotted


def canonical_base(base: dict[str, Any], source: str) -> dict[str, Any]:
    """The base mapping with the objective under ``objective`` (a ``loss`` mapping is moved there)."""
    if "loss" not in base:
        return base
    if "objective" in base:
        raise UserError(f"{source}: give objective (or its old name loss), not both")
    base = dict(base)
    base["objective"] = base.pop("loss")
    return base


def trial_data(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The trial's experiment mapping: a deep copy of ``base`` with each ``{dotted path: value}`` set
    (a ``variant.<name>`` value: each of its fields, ``attrsearch.config.search.expand_variants``).

    A trial whose ``objective.name`` differs from the base's starts from that objective's defaults:
    the base objective's weights belong to the base's objective (a wysiwyc lambda_area is not an
    rtis lambda_area)."""
    from attrsearch.config.objectives import DEFAULT_OBJECTIVE, LEGACY_NAMES

    data = copy.deepcopy(base)
    values = {canonical_path(p): v for p, v in expand_variants(values).items()}
    name = values.get("objective.name")
    objective = data.get("objective")
    if isinstance(name, str) and isinstance(objective, dict):
        base_name = objective.get("name", DEFAULT_OBJECTIVE)
        if LEGACY_NAMES.get(base_name, base_name) != name:
            data["objective"] = {"name": name}
    for path, value in values.items():
        set_dotted(data, path, copy.deepcopy(value))
    return data


def trial_experiment(
    base: dict[str, Any], values: dict[str, Any], source: str, threads: int | None = None
) -> ExperimentConfig:
    """The validated experiment of a trial. ``threads`` (a running trial): torch threads = the trial's
    CPUs and no progress bars, fields that change how a run executes, not what it computes."""
    data = trial_data(base, values)
    if threads is not None:
        set_dotted(data, "train.progress", False)
        set_dotted(data, "train.num_threads", max(1, int(threads)))
    return validate(ExperimentConfig, data, source=source)
