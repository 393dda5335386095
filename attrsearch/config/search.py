"""The search space's own vocabulary, below every room that plans, runs or reads a sweep.

- ``Distribution``: one ``search`` entry of a sweep file (``{loguniform: [0.01, 1]}``), validated;
- ``Dimension``: the one model of a searched dimension (kind, range or values, log spacing) that the
  sweep plans with (``attrsearch.sweep.space.Dim`` adds sampling to it) and the results readers use;
- variants: ``search.variant.<name>: {grid: [{dotted path: value, ...}, ...]}`` (or ``choice``), a
  dimension whose values are sets of fields changed together (an Explanandum family member, a
  method with its options); ``expand_variants`` turns a trial's value into those fields;
- ordered pairs: the ``lo < hi`` field pairs that config classes declare (``ORDERED_PAIRS``, e.g. the
  area bounds a < b of Stalder et al. 2022, eq. 4-6) and the joint key under which a trial's config
  stores one pair drawn together (``_area_bounds: [a, b]``): encoded and decoded here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, model_validator

from attrsearch.config.base import StrictModel
from attrsearch.config.objectives import OBJECTIVE_CONFIGS
from attrsearch.errors import UserError

DIST_KINDS = ("uniform", "loguniform", "int", "choice", "grid")
INACTIVE = "<inactive>"  # the value of a gated dimension whose objective the trial did not choose


class Distribution(StrictModel):
    """One search dimension; exactly one of the kinds is given.

    ``uniform``/``loguniform``: floats in [lo, hi]; ``int``: integers in [lo, hi] (both included),
    log-spaced with ``log: true``; ``choice``: one of the values, sampled; ``grid``: every value.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    int_: tuple[int, int] | None = Field(None, alias="int")
    log: bool = Field(False, description="int only: sample log-uniformly")
    choice: list[Any] | None = None
    grid: list[Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        given = [k for k in DIST_KINDS if self._raw(k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DIST_KINDS)} (got {', '.join(given) or 'none'})")
        kind = given[0]
        if self.log and kind != "int":
            raise ValueError("log: true is for int ranges; use loguniform for floats")
        if kind in ("uniform", "loguniform", "int"):
            lo, hi = self._raw(kind)
            if not lo < hi:
                raise ValueError(f"{kind}: the low end must be below the high end (got [{lo}, {hi}])")
            if kind == "loguniform" and lo <= 0:
                raise ValueError(f"loguniform: the low end must be > 0 (got {lo})")
            if kind == "int" and self.log and lo < 1:
                raise ValueError(f"int with log: true needs a low end >= 1 (got {lo})")
        else:
            values = self._raw(kind)
            if not values:
                raise ValueError(f"{kind}: give at least one value")
            keys = [label(v) for v in values]
            if len(set(keys)) != len(keys):
                raise ValueError(f"{kind}: values must be distinct")
        return self

    def _raw(self, kind: str) -> Any:
        return self.int_ if kind == "int" else getattr(self, kind)

    @property
    def kind(self) -> str:
        return next(k for k in DIST_KINDS if self._raw(k) is not None)

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "grid")

    @property
    def low(self) -> float:
        return self._raw(self.kind)[0]

    @property
    def high(self) -> float:
        return self._raw(self.kind)[1]

    @property
    def values(self) -> list[Any]:
        return list(self._raw(self.kind))

    @property
    def is_log(self) -> bool:
        return self.kind == "loguniform" or (self.kind == "int" and self.log)

    def dimension(self) -> Dimension:
        """This entry as the ``Dimension`` everything downstream works with."""
        if self.discrete:
            return Dimension(self.kind, values=tuple(self.values))
        return Dimension(self.kind, low=self.low, high=self.high, log=self.is_log)

    def describe(self) -> str:
        return self.dimension().describe()


@dataclass(frozen=True)
class Dimension:
    """One searched dimension: a range (``uniform | loguniform | int``) or values (``choice | grid``).

    ``log``: drawn log-uniformly (every ``loguniform``, an ``int`` with ``log: true``).
    """

    kind: str  # uniform | loguniform | int | choice | grid
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "grid")

    @property
    def categorical(self) -> bool:
        """Same as ``discrete`` (the readers' word for it)."""
        return self.discrete

    @property
    def numeric(self) -> bool:
        """Continuous/integer ranges, and discrete ones whose values are all numbers."""
        return not self.discrete or all(is_number(v) for v in self.values)

    def describe(self) -> str:
        """The distribution as text, e.g. ``loguniform [0.01, 1]`` or ``int [1, 64] (log)``."""
        if self.discrete:
            return f"{self.kind} {json.dumps(list(self.values), default=str)}"
        log = " (log)" if self.kind == "int" and self.log else ""
        return f"{self.kind} [{self.low:.6g}, {self.high:.6g}]{log}"


def parse_dimension(path: str, entry: Any, source: str) -> Dimension:
    """One ``search`` entry as written in a sweep file or dumped in ``sweep.yaml`` (``int_``, nulls)."""
    if not isinstance(entry, dict):
        raise UserError(f"{source}: search.{path}: expected a distribution mapping, got {entry!r}")
    try:
        return Distribution.model_validate({k: v for k, v in entry.items() if v is not None}).dimension()
    except ValidationError as err:
        first = err.errors()[0]
        raise UserError(f"{source}: search.{path}: {first['msg'].removeprefix('Value error, ')}") from None


def is_number(value: Any) -> bool:
    """A real int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def label(value: Any) -> str:
    """A value's JSON text (how non-primitive choices are told apart and matched)."""
    return json.dumps(value, sort_keys=True, default=str)


# ---------------------------------------------------------------------------------- ordered pairs


def ordered_pairs() -> list[tuple[str, str]]:
    """Every declared ``lo < hi`` pair as dotted experiment paths, e.g. ``("objective.min_area",
    "objective.max_area")``: the ``ORDERED_PAIRS`` of the objective configs (first declaration wins)."""
    out: list[tuple[str, str]] = []
    for cls in OBJECTIVE_CONFIGS.values():
        for lo, hi in cls.ORDERED_PAIRS:
            pair = (f"objective.{lo}", f"objective.{hi}")
            if pair not in out:
                out.append(pair)
    return out


def joint_key(pair: tuple[str, str]) -> str:
    """The trial-config key of a pair drawn jointly: ``_<x>_bounds`` for ``min_<x>``/``max_<x>``
    (``_area_bounds``, the key of every existing results folder), else ``_<lo>_<hi>``."""
    lo, hi = (p.rsplit(".", 1)[-1] for p in pair)
    if lo.startswith("min_") and hi == "max_" + lo[4:]:
        return f"_{lo[4:]}_bounds"
    return f"_{lo}_{hi}"


def split_joint(config: dict[str, Any]) -> dict[str, Any]:
    """A flat trial config with every joint pair key replaced by its two dotted paths."""
    keys = {joint_key(pair): pair for pair in ordered_pairs()}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in keys and isinstance(value, (list, tuple)) and len(value) == 2:
            out[keys[key][0]], out[keys[key][1]] = value
        else:
            out[key] = value
    return out


VARIANT = "variant"  # ``search.variant.<name>``: values are mappings of dotted fields set together


def is_variant(path: str) -> bool:
    """Whether ``path`` is a variant dimension (``variant.<name>``)."""
    return path.startswith(VARIANT + ".")


def expand_variants(values: dict[str, Any]) -> dict[str, Any]:
    """``{dotted path: value}`` with each ``variant.<name>: {path: value, ...}`` replaced by its
    entries, in order (a variant's entries first, so a plain path given beside it wins)."""
    out: dict[str, Any] = {}
    for path, value in values.items():
        if is_variant(path) and isinstance(value, dict):
            out.update(value)
    out.update({p: v for p, v in values.items() if not is_variant(p)})
    return out


def field_path(path: str) -> str:
    """``objective.casm.lambda_r`` (qualified by an objective name) -> ``objective.lambda_r``."""
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "objective" and parts[1] in OBJECTIVE_CONFIGS:
        return f"objective.{parts[2]}"
    return path


def trial_values(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's flat config -> ``{dotted path: value}`` (joint pairs unpacked, gated dimensions of
    objectives the trial did not choose dropped, ``objective.<name>.<field>`` written as
    ``objective.<field>``, other ``_`` keys left out)."""
    return {
        field_path(key): value
        for key, value in split_joint(config).items()
        if not key.startswith("_") and not (isinstance(value, str) and value == INACTIVE)
    }
