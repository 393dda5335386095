"""The search space: distributions over dotted experiment fields, as Ray Tune domains or an Optuna
define-by-run function, with every ordered pair lo < hi that a config class declares
(``ORDERED_PAIRS``, e.g. the area bounds a = ``objective.min_area`` < b = ``objective.max_area`` of
Stalder et al. 2022, eq. 4-6) sampled so that it always holds (``plan_pair``):

- one side searched, the other fixed: the range is clipped (or the values filtered) to the valid side;
- both continuous: b is drawn first from the part of its range above a's low end, then a from
  [a_lo, min(a_hi, b)) (so a's distribution is skewed where the ranges overlap);
- one discrete, one continuous: the discrete one first (values without a valid partner dropped),
  then the other clipped by it;
- both discrete (both ``choice`` or both ``grid``): one joint dimension over the valid (a, b) pairs,
  stored in the trial config under ``attrsearch.config.search.joint_key`` (``_area_bounds``).

Trial configs are flat: ``{"objective.lambda_tv": 0.3, ...}``; ``trial_values`` turns one back into
``{dotted path: value}``.

When ``objective.name`` is searched, an objective's own weights are conditional: a path gated on a
set of objective names (``objective.casm.lambda_r``, or ``objective.lambda_area`` which only some
objectives have) is drawn only when the trial's objective is one of them (Optuna: define-by-run,
not suggested otherwise; Tune's generator: a ``sample_from`` that yields ``INACTIVE``, which
``trial_values`` drops), so the trial keeps the base's value or the objective's default.

Nothing here imports Ray or Optuna at module level: the dry run describes the space without them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from attrsearch.config.search import (
    INACTIVE,
    Dimension,
    Distribution,
    field_path,
    is_number,
    joint_key,
    label,
    ordered_pairs,
    trial_values,
)
from attrsearch.errors import UserError

__all__ = ["INACTIVE", "field_path", "trial_values"]  # planned here, decoded by attrsearch.config.search

AREA_A = "objective.min_area"  # the area bounds a < b (sweep.load's checks name them)
AREA_B = "objective.max_area"
JOINT_KEY = joint_key((AREA_A, AREA_B))  # "_area_bounds"
NAME_PATH = "objective.name"

_PRIMITIVE = (type(None), bool, int, float, str)
Pairs = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Dim(Dimension):
    """One effective search dimension (a ``Distribution`` after clipping/filtering) that can be drawn."""

    @classmethod
    def of(cls, dist: Distribution) -> Dim:
        d = dist.dimension()
        return cls(d.kind, d.low, d.high, d.log, d.values)

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
        labels = {label(v): v for v in self.values}
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


def _num(value: Any) -> float:
    if not is_number(value):
        raise UserError(f"area bounds must be numbers (got {value!r})")
    return float(value)


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


@dataclass
class SearchSpace:
    """Dimensions over dotted paths, plus the coupling of each declared ordered pair lo < hi."""

    dims: dict[str, Dim] = field(default_factory=dict)  # sampled independently (in this order)
    conditional: dict[str, tuple[Dim, str, bool]] = field(default_factory=dict)  # path -> (dim, partner, below)
    joints: dict[tuple[str, str], tuple[str, Pairs]] = field(default_factory=dict)  # (lo, hi) -> (kind, pairs)
    gated: dict[str, tuple[Dim, frozenset[str]]] = field(default_factory=dict)  # path -> (dim, objective names)
    notes: list[str] = field(default_factory=list)

    @property
    def joint(self) -> tuple[str, Pairs] | None:
        """The area bounds' joint dimension (choice|grid, valid (a, b) pairs), if they are drawn jointly."""
        return self.joints.get((AREA_A, AREA_B))

    def _dim(self, path: str) -> Dim | None:
        if path in self.dims:
            return self.dims[path]
        if path in self.conditional:
            return self.conditional[path][0]
        return self.gated[path][0] if path in self.gated else None

    @property
    def paths(self) -> list[str]:
        return list(self.dims) + list(self.conditional) + list(self.gated) + [p for pair in self.joints for p in pair]

    def grid_size(self) -> int:
        """Combinations Tune's generator enumerates per sample (product of the grid dimensions)."""
        size = 1
        for dim in self.dims.values():
            if dim.kind == "grid":
                size *= len(dim.values)
        for kind, pairs in self.joints.values():
            if kind == "grid":
                size *= len(pairs)
        return size

    def has_grid(self) -> bool:
        return any(d.kind == "grid" for d in self.dims.values()) or any(k == "grid" for k, _ in self.joints.values())

    def discrete_values(self, path: str) -> list[Any] | None:
        """Every value ``path`` can take when it is discrete (None: continuous or not searched)."""
        for pair, (_, pairs) in self.joints.items():
            if path in pair:
                return sorted({p[pair.index(path)] for p in pairs})
        dim = self._dim(path)
        return list(dim.values) if dim is not None and dim.discrete else None

    def contains(self, path: str, value: Any) -> bool:
        """Whether ``value`` is a value ``path`` can take (ignoring the coupling of ordered pairs)."""
        dim = self._dim(path)
        if dim is None:
            return False
        if dim.discrete:
            return label(value) in {label(v) for v in dim.values}
        return is_number(value) and dim.low <= value <= dim.high

    def start_point(self, values: dict[str, Any], optuna: bool) -> dict[str, Any]:
        """A first trial with the given values (``points_to_evaluate`` of Tune's generator or Optuna)."""
        point = {p: v for p, v in values.items() if p in self.dims or p in self.conditional or p in self.gated}
        if optuna:  # Optuna enqueues raw parameters: JSON labels for non-primitive choices
            for path, value in point.items():
                dim = self.dims.get(path)
                if dim is not None and dim.discrete and not all(isinstance(v, _PRIMITIVE) for v in dim.values):
                    point[path] = label(value)
        for lo, hi in self.joints:
            a, b = values[lo], values[hi]
            point[joint_key((lo, hi))] = f"{a!r},{b!r}" if optuna else [a, b]
        return point

    def tune_param_space(self) -> dict[str, Any]:
        """Flat ``param_space`` for Tune's own generator (random/grid search, PBT)."""
        from ray import tune

        space: dict[str, Any] = {path: dim.tune_domain() for path, dim in self.dims.items()}
        for path, (dim, partner, below) in self.conditional.items():
            space[path] = tune.sample_from(ConditionalBound(partner, dim, below))
        for path, (dim, names) in self.gated.items():
            space[path] = tune.sample_from(GatedDim(dim, names))
        for pair, (kind, pairs) in self.joints.items():
            values = [list(p) for p in pairs]
            space[joint_key(pair)] = tune.grid_search(values) if kind == "grid" else tune.choice(values)
        return space

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """One trial's ``{dotted path: value}`` drawn with ``rng`` (plain random search; the dry run's
        ``--sample``): the same coupling of ordered pairs as Tune's generator and Optuna."""
        values: dict[str, Any] = {path: dim.sample(rng) for path, dim in self.dims.items()}
        for path, (dim, partner, below) in self.conditional.items():
            bound = float(values[partner])
            clipped = dim.below(bound) if below else dim.above(bound)
            values[path] = clipped.sample(rng)  # type: ignore[union-attr]
        for (lo, hi), (_, pairs) in self.joints.items():
            values[lo], values[hi] = rng.choice(list(pairs))
        for path, (dim, names) in self.gated.items():
            if values[NAME_PATH] in names:
                values[path] = dim.sample(rng)
        return {field_path(path): value for path, value in values.items()}

    def optuna_space(self) -> OptunaSpace:
        return OptunaSpace(dict(self.dims), dict(self.conditional), dict(self.joints), dict(self.gated))

    def describe(self) -> list[str]:
        lines = []
        width = max([len(p) for p in self.paths] + [8])
        for path, dim in self.dims.items():
            lines.append(f"  {path:{width}s}  {dim.describe()}")
        for path, (dim, partner, below) in self.conditional.items():
            side = "below" if below else "above"
            lines.append(f"  {path:{width}s}  {dim.describe()}, drawn {side} the trial's {partner}")
        for (lo, hi), (kind, pairs) in self.joints.items():
            shown = ", ".join(f"({a:g}, {b:g})" for a, b in pairs)
            lines.append(f"  {lo + ', ' + hi:{width}s}  {kind} over {len(pairs)} valid (a, b) pairs: {shown}")
        for path, (dim, names) in self.gated.items():
            lines.append(f"  {path:{width}s}  {dim.describe()}, only when {NAME_PATH} is {' or '.join(sorted(names))}")
        return lines


@dataclass(frozen=True)
class OptunaSpace:
    """Define-by-run space for ``OptunaSearch`` (picklable: the searcher is saved with the sweep)."""

    dims: dict[str, Dim]
    conditional: dict[str, tuple[Dim, str, bool]]
    joints: dict[tuple[str, str], tuple[str, Pairs]]
    gated: dict[str, tuple[Dim, frozenset[str]]] = field(default_factory=dict)

    def __call__(self, trial: Any) -> dict[str, Any]:
        out: dict[str, Any] = {path: dim.suggest(trial, path) for path, dim in self.dims.items()}
        for path, (dim, partner, below) in self.conditional.items():
            bound = float(out[partner])
            clipped = dim.below(bound) if below else dim.above(bound)
            out[path] = clipped.suggest(trial, path)  # type: ignore[union-attr]
        for pair, (_, pairs) in self.joints.items():
            key = joint_key(pair)
            labels = {f"{a!r},{b!r}": [a, b] for a, b in pairs}
            out[key] = labels[trial.suggest_categorical(key, list(labels))]
        for path, (dim, names) in self.gated.items():  # define-by-run: only the chosen objective's weights
            if out[NAME_PATH] in names:
                out[path] = dim.suggest(trial, path)
        return out


# ------------------------------------------------------------------------------------- planning


def build_space(
    search: dict[str, Distribution],
    base: dict[str, Any],
    source: str,
    gates: dict[str, frozenset[str]] | None = None,
) -> SearchSpace:
    """Plan the space; ``base``: the base experiment as a mapping (its values bound an ordered pair
    of which one side is searched); ``gates``: path -> the objective names it is drawn for
    (``objective.name`` must be searched).

    Each ordered pair lo < hi that a config class declares (``ORDERED_PAIRS``) is planned by
    ``plan_pair``; a ``UserError`` names the sweep file when a pair can never hold. Paths are taken in
    their current spelling (``loss.*`` is ``objective.*``).
    """
    from attrsearch.sweep.experiment import canonical_path

    search = {canonical_path(path): dist for path, dist in search.items()}
    pairs = [pair for pair in ordered_pairs() if pair[0] in search or pair[1] in search]
    paired = {path for pair in pairs for path in pair}
    space = SearchSpace()
    gates = gates or {}
    for path, dist in search.items():
        if path in gates:
            if dist.kind == "grid":
                raise UserError(
                    f"{source}: search.{path}: drawn only for some objectives; use choice or a range, not grid"
                )
            space.gated[path] = (Dim.of(dist), gates[path])
        elif path not in paired:
            space.dims[path] = Dim.of(dist)
    for lo, hi in pairs:
        a = Dim.of(search[lo]) if lo in search else None
        b = Dim.of(search[hi]) if hi in search else None
        plan_pair(space, (lo, hi), a, b, base, f"{source}: search")
    return space


def plan_pair(space: SearchSpace, pair: tuple[str, str], a: Dim | None, b: Dim | None, base: dict, where: str) -> None:
    """Add the ordered pair lo < hi to ``space`` (``a``/``b``: their searched dimensions, None if fixed):

    - one side searched, the other fixed by ``base``: the range is clipped (or the values filtered);
    - both continuous: hi first, from the part of its range above lo's low end, then lo below it;
    - one discrete, one continuous: the discrete one first (values without a valid partner dropped);
    - both discrete (both ``choice`` or both ``grid``): one joint dimension over the valid pairs.
    """
    lo, hi = pair
    if b is None:
        _clip_one(space, lo, a, hi, _fixed(base, hi), below=True, where=where)
    elif a is None:
        _clip_one(space, hi, b, lo, _fixed(base, lo), below=False, where=where)
    elif a.discrete and b.discrete:
        _joint(space, pair, a, b, where)
    elif a.discrete:  # a first (values that leave room for b), then b above it
        kept = a.below(b.high)
        if kept is None:
            raise UserError(f"{where}.{lo}: every value is >= the largest {hi} ({b.high:g}); a < b can never hold")
        _note_change(space, lo, a, kept, f"values >= the largest {hi} dropped")
        space.dims[lo] = kept
        space.conditional[hi] = (b, lo, False)
    else:  # b first (the part of its range above a's low end), then a below it
        kept = b.above(a.low)
        if kept is None:
            raise UserError(f"{where}: every {hi} is <= the smallest {lo} ({a.low:g}); a < b can never hold")
        _note_change(space, hi, b, kept, f"kept above the smallest {lo}")
        space.dims[hi] = kept
        space.conditional[lo] = (a, hi, True)


def _fixed(base: dict[str, Any], path: str) -> float:
    from attrsearch.config.base import get_dotted

    return _num(get_dotted(base, path))


def _clip_one(space: SearchSpace, path: str, dim: Dim, other: str, bound: float, below: bool, where: str) -> None:
    """One side of a pair searched: keep it on the valid side of the base's value of the other."""
    kept = dim.below(bound) if below else dim.above(bound)
    if kept is None:
        sign = ">=" if below else "<="
        raise UserError(f"{where}.{path}: every value is {sign} {other} ({bound:g}) of the base; a < b can never hold")
    _note_change(space, path, dim, kept, f"kept {'below' if below else 'above'} the base's {other}={bound:g}")
    space.dims[path] = kept


def _joint(space: SearchSpace, pair: tuple[str, str], a: Dim, b: Dim, where: str) -> None:
    """Both sides discrete: one joint dimension over the valid (a, b) pairs."""
    lo, hi = pair
    if a.kind != b.kind:
        raise UserError(f"{where}: {lo} is {a.kind} and {hi} is {b.kind}; use grid for both or choice for both")
    pairs = tuple((_num(x), _num(y)) for x in a.values for y in b.values if _num(x) < _num(y))
    if not pairs:
        raise UserError(f"{where}: no pair of {lo} and {hi} values has a < b")
    dropped = len(a.values) * len(b.values) - len(pairs)
    if dropped:
        space.notes.append(f"{dropped} of {len(a.values) * len(b.values)} (a, b) combinations dropped because a >= b")
    space.joints[pair] = (a.kind, pairs)


def _note_change(space: SearchSpace, path: str, before: Dim, after: Dim, why: str) -> None:
    if before != after:
        space.notes.append(f"{path}: {before.describe()} -> {after.describe()} ({why})")
