"""The search space: distributions over dotted experiment fields, as Ray Tune domains or an Optuna
define-by-run function, with the area bounds sampled so that a < b always holds.

Trial configs are flat: ``{"objective.lambda_tv": 0.3, ...}``; ``trial_values`` turns one back into
``{dotted path: value}``. The area bounds of Stalder et al. 2022 (eq. 4-6) need a = ``objective.min_area``
< b = ``objective.max_area``:

- one bound searched, the other fixed: the range is clipped (or the values filtered) to the valid side;
- both continuous: b is drawn first from the part of its range above a's low end, then a from
  [a_lo, min(a_hi, b)) (so a's distribution is skewed where the ranges overlap);
- one discrete, one continuous: the discrete one first (values without a valid partner dropped),
  then the other clipped by it;
- both discrete (both ``choice`` or both ``grid``): one joint dimension over the valid (a, b) pairs.

When ``objective.name`` is searched, an objective's own weights are conditional: a path gated on a
set of objective names (``objective.casm.lambda_r``, or ``objective.lambda_area`` which only some
objectives have) is drawn only when the trial's objective is one of them (Optuna: define-by-run,
not suggested otherwise; Tune's generator: a ``sample_from`` that yields ``INACTIVE``, which
``trial_values`` drops), so the trial keeps the base's value or the objective's default.

Nothing here imports Ray or Optuna at module level: the dry run describes the space without them.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from attrsearch.errors import UserError
from attrsearch.sweep.schema import Distribution

AREA_A = "objective.min_area"
AREA_B = "objective.max_area"
JOINT_KEY = "_area_bounds"  # a joint dimension over valid (a, b) pairs
NAME_PATH = "objective.name"
INACTIVE = "<inactive>"  # the value of a gated dimension whose objective the trial did not choose

_PRIMITIVE = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Dim:
    """One effective search dimension (a ``Distribution`` after clipping/filtering)."""

    kind: str  # uniform | loguniform | int | choice | grid
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    @classmethod
    def of(cls, dist: Distribution) -> Dim:
        if dist.discrete:
            return cls(dist.kind, values=tuple(dist.values))
        return cls(dist.kind, low=dist.low, high=dist.high, log=dist.kind == "int" and dist.log)

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "grid")

    def below(self, bound: float) -> Dim | None:
        """The part of this dimension strictly below ``bound`` (None if empty)."""
        if self.discrete:
            kept = tuple(v for v in self.values if _num(v) < bound)
            return replace(self, values=kept) if kept else None
        high = math.ceil(bound) - 1 if self.kind == "int" else math.nextafter(bound, -math.inf)
        high = min(self.high, high)
        return replace(self, high=high) if high >= self.low else None

    def above(self, bound: float) -> Dim | None:
        """The part of this dimension strictly above ``bound`` (None if empty)."""
        if self.discrete:
            kept = tuple(v for v in self.values if _num(v) > bound)
            return replace(self, values=kept) if kept else None
        low = math.floor(bound) + 1 if self.kind == "int" else math.nextafter(bound, math.inf)
        low = max(self.low, low)
        return replace(self, low=low) if low <= self.high else None

    def tune_domain(self) -> Any:
        from ray import tune

        if self.kind == "uniform":
            return tune.uniform(self.low, self.high)
        if self.kind == "loguniform":
            return tune.loguniform(self.low, self.high)
        if self.kind == "int":  # Tune's integer upper bounds are exclusive
            return (
                tune.lograndint(int(self.low), int(self.high) + 1)
                if self.log
                else tune.randint(int(self.low), int(self.high) + 1)
            )
        if self.kind == "choice":
            return tune.choice(list(self.values))
        return tune.grid_search(list(self.values))

    def suggest(self, trial: Any, name: str) -> Any:
        """Draw from an Optuna trial (define-by-run); non-primitive choices travel as JSON labels."""
        if self.kind in ("uniform", "loguniform"):
            return trial.suggest_float(name, self.low, self.high, log=self.kind == "loguniform")
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        if all(isinstance(v, _PRIMITIVE) for v in self.values):
            return trial.suggest_categorical(name, list(self.values))
        labels = {_label(v): v for v in self.values}
        return labels[trial.suggest_categorical(name, list(labels))]

    def sample(self, rng: random.Random) -> Any:
        """Plain sampling (Tune's ``sample_from`` for a bound conditioned on its partner)."""
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        if self.kind == "int":
            if self.log:
                return min(int(self.high), int(math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))))
            return rng.randint(int(self.low), int(self.high))
        return rng.choice(list(self.values))

    def probe_values(self) -> list[Any]:
        """Values whose validation covers the whole dimension (the ends of a range, every choice)."""
        if self.discrete:
            return list(self.values)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def describe(self) -> str:
        if self.discrete:
            return f"{self.kind} {json.dumps(list(self.values), default=str)}"
        log = " (log)" if self.log else ""
        return f"{self.kind} [{self.low:.6g}, {self.high:.6g}]{log}"


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"area bounds must be numbers (got {value!r})")
    return float(value)


def _label(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass(frozen=True)
class ConditionalBound:
    """Tune ``sample_from`` callable: draw an area bound on the valid side of its partner's draw."""

    partner: str
    dim: Dim
    below_partner: bool

    def __call__(self, spec: Any) -> Any:
        bound = float(spec.config[self.partner])
        dim = self.dim.below(bound) if self.below_partner else self.dim.above(bound)
        if dim is None:  # unreachable: the partner's range was clipped at load time
            raise RuntimeError(f"no valid value for the area bound next to {self.partner}={bound}")
        return dim.sample(random.Random())


@dataclass(frozen=True)
class GatedDim:
    """Tune ``sample_from`` callable: draw ``dim`` only when the trial's objective is one of ``names``."""

    dim: Dim
    names: frozenset[str]

    def __call__(self, spec: Any) -> Any:
        if spec.config[NAME_PATH] not in self.names:
            return INACTIVE
        return self.dim.sample(random.Random())


def field_path(path: str) -> str:
    """``objective.casm.lambda_r`` (qualified by an objective name) -> ``objective.lambda_r``."""
    from attrsearch.config.objectives import OBJECTIVE_CONFIGS

    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "objective" and parts[1] in OBJECTIVE_CONFIGS:
        return f"objective.{parts[2]}"
    return path


@dataclass
class SearchSpace:
    """Dimensions over dotted paths, plus the coupling of the area bounds."""

    dims: dict[str, Dim] = field(default_factory=dict)  # sampled independently (in this order)
    conditional: dict[str, tuple[Dim, str, bool]] = field(default_factory=dict)  # path -> (dim, partner, below)
    joint: tuple[str, tuple[tuple[float, float], ...]] | None = None  # (choice|grid, valid (a, b) pairs)
    gated: dict[str, tuple[Dim, frozenset[str]]] = field(default_factory=dict)  # path -> (dim, objective names)
    notes: list[str] = field(default_factory=list)

    def _dim(self, path: str) -> Dim | None:
        if path in self.dims:
            return self.dims[path]
        if path in self.conditional:
            return self.conditional[path][0]
        return self.gated[path][0] if path in self.gated else None

    @property
    def paths(self) -> list[str]:
        out = list(self.dims) + list(self.conditional) + list(self.gated)
        if self.joint:
            out += [AREA_A, AREA_B]
        return out

    def grid_size(self) -> int:
        """Combinations Tune's generator enumerates per sample (product of the grid dimensions)."""
        size = 1
        for dim in self.dims.values():
            if dim.kind == "grid":
                size *= len(dim.values)
        if self.joint and self.joint[0] == "grid":
            size *= len(self.joint[1])
        return size

    def has_grid(self) -> bool:
        return any(d.kind == "grid" for d in self.dims.values()) or bool(self.joint and self.joint[0] == "grid")

    def discrete_values(self, path: str) -> list[Any] | None:
        """Every value ``path`` can take when it is discrete (None: continuous or not searched)."""
        if self.joint and path in (AREA_A, AREA_B):
            i = 0 if path == AREA_A else 1
            return sorted({p[i] for p in self.joint[1]})
        dim = self._dim(path)
        return list(dim.values) if dim is not None and dim.discrete else None

    def contains(self, path: str, value: Any) -> bool:
        """Whether ``value`` is a value ``path`` can take (ignoring the coupling of the area bounds)."""
        dim = self._dim(path)
        if dim is None:
            return False
        if dim.discrete:
            return _label(value) in {_label(v) for v in dim.values}
        return isinstance(value, (int, float)) and not isinstance(value, bool) and dim.low <= value <= dim.high

    def start_point(self, values: dict[str, Any], optuna: bool) -> dict[str, Any]:
        """A first trial with the given values (``points_to_evaluate`` of Tune's generator or Optuna)."""
        point = {p: v for p, v in values.items() if p in self.dims or p in self.conditional or p in self.gated}
        if optuna:  # Optuna enqueues raw parameters: JSON labels for non-primitive choices
            for path, value in point.items():
                dim = self.dims.get(path)
                if dim is not None and dim.discrete and not all(isinstance(v, _PRIMITIVE) for v in dim.values):
                    point[path] = _label(value)
        if self.joint:
            a, b = values[AREA_A], values[AREA_B]
            point[JOINT_KEY] = f"{a!r},{b!r}" if optuna else [a, b]
        return point

    def tune_param_space(self) -> dict[str, Any]:
        """Flat ``param_space`` for Tune's own generator (random/grid search, PBT)."""
        from ray import tune

        space: dict[str, Any] = {path: dim.tune_domain() for path, dim in self.dims.items()}
        for path, (dim, partner, below) in self.conditional.items():
            space[path] = tune.sample_from(ConditionalBound(partner, dim, below))
        for path, (dim, names) in self.gated.items():
            space[path] = tune.sample_from(GatedDim(dim, names))
        if self.joint:
            kind, pairs = self.joint
            values = [list(p) for p in pairs]
            space[JOINT_KEY] = tune.grid_search(values) if kind == "grid" else tune.choice(values)
        return space

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """One trial's ``{dotted path: value}`` drawn with ``rng`` (plain random search; the dry run's
        ``--sample``): the same coupling of the area bounds as Tune's generator and Optuna."""
        values: dict[str, Any] = {path: dim.sample(rng) for path, dim in self.dims.items()}
        for path, (dim, partner, below) in self.conditional.items():
            bound = float(values[partner])
            clipped = dim.below(bound) if below else dim.above(bound)
            values[path] = clipped.sample(rng)  # type: ignore[union-attr]
        if self.joint:
            values[AREA_A], values[AREA_B] = rng.choice(list(self.joint[1]))
        for path, (dim, names) in self.gated.items():
            if values[NAME_PATH] in names:
                values[path] = dim.sample(rng)
        return {field_path(path): value for path, value in values.items()}

    def optuna_space(self) -> OptunaSpace:
        return OptunaSpace(dict(self.dims), dict(self.conditional), self.joint, dict(self.gated))

    def describe(self) -> list[str]:
        lines = []
        width = max([len(p) for p in self.paths] + [8])
        for path, dim in self.dims.items():
            lines.append(f"  {path:{width}s}  {dim.describe()}")
        for path, (dim, partner, below) in self.conditional.items():
            side = "below" if below else "above"
            lines.append(f"  {path:{width}s}  {dim.describe()}, drawn {side} the trial's {partner}")
        if self.joint:
            kind, pairs = self.joint
            shown = ", ".join(f"({a:g}, {b:g})" for a, b in pairs)
            lines.append(f"  {AREA_A + ', ' + AREA_B:{width}s}  {kind} over {len(pairs)} valid (a, b) pairs: {shown}")
        for path, (dim, names) in self.gated.items():
            lines.append(f"  {path:{width}s}  {dim.describe()}, only when {NAME_PATH} is {' or '.join(sorted(names))}")
        return lines


@dataclass(frozen=True)
class OptunaSpace:
    """Define-by-run space for ``OptunaSearch`` (picklable: the searcher is saved with the sweep)."""

    dims: dict[str, Dim]
    conditional: dict[str, tuple[Dim, str, bool]]
    joint: tuple[str, tuple[tuple[float, float], ...]] | None
    gated: dict[str, tuple[Dim, frozenset[str]]] = field(default_factory=dict)

    def __call__(self, trial: Any) -> dict[str, Any]:
        out: dict[str, Any] = {path: dim.suggest(trial, path) for path, dim in self.dims.items()}
        for path, (dim, partner, below) in self.conditional.items():
            bound = float(out[partner])
            clipped = dim.below(bound) if below else dim.above(bound)
            out[path] = clipped.suggest(trial, path)  # type: ignore[union-attr]
        if self.joint:
            pairs = {f"{a!r},{b!r}": [a, b] for a, b in self.joint[1]}
            out[JOINT_KEY] = pairs[trial.suggest_categorical(JOINT_KEY, list(pairs))]
        for path, (dim, names) in self.gated.items():  # define-by-run: only the chosen objective's weights
            if out[NAME_PATH] in names:
                out[path] = dim.suggest(trial, path)
        return out


def trial_values(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's flat config -> ``{dotted path: value}`` (the joint area dimension unpacked, gated
    dimensions of objectives the trial did not choose dropped, ``objective.<name>.<field>`` written
    as ``objective.<field>``)."""
    values: dict[str, Any] = {}
    for key, value in config.items():
        if key == JOINT_KEY:
            values[AREA_A], values[AREA_B] = value
        elif not key.startswith("_") and not (isinstance(value, str) and value == INACTIVE):
            values[field_path(key)] = value
    return values


def build_space(
    search: dict[str, Distribution],
    fixed_a: float,
    fixed_b: float,
    source: str,
    gates: dict[str, frozenset[str]] | None = None,
) -> SearchSpace:
    """Plan the space; ``fixed_a``/``fixed_b`` are the base's bounds (used when a bound is not searched);
    ``gates``: path -> the objective names it is drawn for (``objective.name`` must be searched).

    A ``UserError`` names the sweep file when the bounds can never satisfy a < b. Paths are taken in
    their current spelling (``loss.*`` is ``objective.*``).
    """
    from attrsearch.sweep.experiment import canonical_path

    search = {canonical_path(path): dist for path, dist in search.items()}
    space = SearchSpace()
    gates = gates or {}
    for path, dist in search.items():
        if path in gates:
            if dist.kind == "grid":
                raise UserError(
                    f"{source}: search.{path}: drawn only for some objectives; use choice or a range, not grid"
                )
            space.gated[path] = (Dim.of(dist), gates[path])
        elif path not in (AREA_A, AREA_B):
            space.dims[path] = Dim.of(dist)
    a = Dim.of(search[AREA_A]) if AREA_A in search else None
    b = Dim.of(search[AREA_B]) if AREA_B in search else None
    where = f"{source}: search"
    if a is None and b is None:
        return space
    if b is None:  # only a searched: keep it below the fixed b
        kept = a.below(fixed_b)
        if kept is None:
            raise UserError(
                f"{where}.{AREA_A}: every value is >= loss.max_area ({fixed_b:g}) of the base; a < b can never hold"
            )
        _note_change(space, AREA_A, a, kept, f"kept below the base's loss.max_area={fixed_b:g}")
        space.dims[AREA_A] = kept
        return space
    if a is None:  # only b searched: keep it above the fixed a
        kept = b.above(fixed_a)
        if kept is None:
            raise UserError(
                f"{where}.{AREA_B}: every value is <= loss.min_area ({fixed_a:g}) of the base; a < b can never hold"
            )
        _note_change(space, AREA_B, b, kept, f"kept above the base's loss.min_area={fixed_a:g}")
        space.dims[AREA_B] = kept
        return space
    if a.discrete and b.discrete:
        if a.kind != b.kind:
            raise UserError(
                f"{where}: {AREA_A} is {a.kind} and {AREA_B} is {b.kind}; use grid for both or choice for both"
            )
        pairs = tuple((_num(x), _num(y)) for x in a.values for y in b.values if _num(x) < _num(y))
        if not pairs:
            raise UserError(f"{where}: no pair of {AREA_A} and {AREA_B} values has a < b")
        dropped = len(a.values) * len(b.values) - len(pairs)
        if dropped:
            space.notes.append(
                f"{dropped} of {len(a.values) * len(b.values)} (a, b) combinations dropped because a >= b"
            )
        space.joint = (a.kind, pairs)
        return space
    if a.discrete:  # a first (values that leave room for b), then b above it
        kept = a.below(b.high)
        if kept is None:
            raise UserError(
                f"{where}.{AREA_A}: every value is >= the largest {AREA_B} ({b.high:g}); a < b can never hold"
            )
        _note_change(space, AREA_A, a, kept, f"values >= the largest {AREA_B} dropped")
        space.dims[AREA_A] = kept
        space.conditional[AREA_B] = (b, AREA_A, False)
        return space
    # b first (the part of its range above a's low end), then a below it
    kept = b.above(a.low)
    if kept is None:
        raise UserError(f"{where}: every {AREA_B} is <= the smallest {AREA_A} ({a.low:g}); a < b can never hold")
    _note_change(space, AREA_B, b, kept, f"kept above the smallest {AREA_A}")
    space.dims[AREA_B] = kept
    space.conditional[AREA_A] = (a, AREA_B, True)
    return space


def _note_change(space: SearchSpace, path: str, before: Dim, after: Dim, why: str) -> None:
    if before != after:
        space.notes.append(f"{path}: {before.describe()} -> {after.describe()} ({why})")
