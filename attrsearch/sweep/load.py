"""Read a sweep file and check it against the experiment schema before anything starts.

Every check that can fail is done here, so a bad sweep file costs a one-line ``UserError`` that
names the file and the field, and no Ray process: search paths exist in the experiment schema
(a ``variant.<name>`` dimension: each field of each of its mappings, no field set twice),
every value a distribution can produce validates (the ends of each range, every choice), a < b can
hold for the area bounds, the objective names are registered metrics, and the search algorithm,
scheduler and objective fit together (PBT takes no search algorithm, Optuna takes no grids, the
metrics a scheduler or Tune compares every epoch are in the epoch suite).
Datasets are not opened here (a real run checks their folders before Ray starts).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from attrsearch.config import ExperimentConfig, read_yaml, validate
from attrsearch.config.base import get_dotted, set_dotted
from attrsearch.config.objectives import OBJECTIVE_CONFIGS
from attrsearch.config.search import is_variant
from attrsearch.errors import UserError
from attrsearch.resolve import resolve_experiment
from attrsearch.sweep.experiment import canonical_base, canonical_path, trial_data
from attrsearch.sweep.schema import SweepConfig
from attrsearch.sweep.space import AREA_A, AREA_B, NAME_PATH, Dim, SearchSpace, build_space, field_path
from attrsearch.sweep.storage import Storage

# Fields a sweep sets itself and that cannot be searched.
_RESERVED = {
    "name": "the trial's name is set by the sweep",
    "cache_dir": "all trials share one cache",
    "evaluation.split": "trials are always ranked on the val split; best.yaml switches to test",
}
_OPTUNA = ("optuna_tpe", "optuna_nsga2", "optuna_gp")


@dataclass
class Sweep:
    """A validated sweep: its file, settings, resolved base experiment and search space."""

    path: Path
    config: SweepConfig
    base: dict[str, Any]  # experiment mapping every trial starts from (evaluation.split = val)
    base_cfg: ExperimentConfig
    space: SearchSpace
    modes: list[str]
    storage: Storage  # where results go: a local folder or a URI (s3://...)
    notes: list[str] = field(default_factory=list)
    # Whether the base names its own cache_dir (pinned for every trial); else trials on a cluster use
    # their node's default cache (``attrsearch.sweep.explananda.ExplanandaPlan``).
    cache_dir_given: bool = True
    # Whether ``start_from_base`` was left unset (its value is then the default's): a sweep started by
    # an attrsearch whose default was off resumes with it off (``preflight.check_results_folder``).
    start_defaulted: bool = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def objectives(self) -> list[str]:
        return list(self.config.objective)

    @property
    def experiment_path(self) -> str:
        """The sweep's results folder (local path or URI): ``<storage>/<name>``."""
        return self.storage.join(self.name)

    @property
    def experiment_storage(self) -> Storage:
        """Storage rooted at the sweep's results folder."""
        return self.storage.sub(self.name)

    @property
    def max_epochs(self) -> int:
        """The most epochs a trial can run (the largest searched train.epochs, else the base's)."""
        values = self.space.discrete_values("train.epochs")
        dim = self.space.dims.get("train.epochs")
        if values:
            return int(max(values))
        if dim is not None:
            return int(dim.high)
        return self.base_cfg.train.epochs

    @property
    def base_is_extra(self) -> bool:
        """Whether the base runs as a trial beside ``num_samples``. The base is one of the ``num_samples``
        trials, except under random search over grid dimensions: Tune's basic generator lets a start point
        replace one sample *and* fix the grid dimensions it names, so a whole grid pass would shrink to the
        base alone; there the base gets a sample of its own and the grid stays whole."""
        random = self.config.search_alg.name == "random"
        return bool(self.config.start_from_base) and random and self.space.grid_size() > 1

    def tune_samples(self) -> int:
        """Tune's ``num_samples``."""
        return self.config.samples + int(self.base_is_extra)

    def num_trials(self) -> int:
        samples = self.config.samples
        if self.config.search_alg.name in ("random", "grid") and self.config.scheduler.name != "pbt":
            return samples * self.space.grid_size() + int(self.base_is_extra)
        return samples

    def trial_data(self, values: dict[str, Any]) -> dict[str, Any]:
        """The experiment mapping of one trial: the base with the trial's values set."""
        return trial_data(self.base, values)

    def identity(self) -> dict[str, Any]:
        """What must not change between a sweep's start and ``--resume`` (JSON-able)."""
        # How trials are watched and retried may change on --resume: operational, not the sweep's identity.
        operational = {
            "max_concurrent_trials",
            "description",
            "share_explananda",
            "trial_report_timeout_s",
            "storage_retry",
        }
        cfg = self.config.model_dump(
            mode="json", exclude={**dict.fromkeys(operational, True), "testing": {"hang_once_at_epoch"}}
        )
        cfg["base"] = self.base
        return json.loads(json.dumps(cfg, sort_keys=True, default=str))


def load_sweep(path: str | Path, results: str | Path | None = None) -> Sweep:
    """Read and check a sweep file; ``results`` overrides its ``storage``. Starts nothing."""
    path = Path(path)
    src = str(path)
    cfg = validate(SweepConfig, read_yaml(path), source=src)
    notes: list[str] = []

    base, base_src = _read_base(cfg, path)
    base = canonical_base(base, base_src)
    split = get_dotted(base, "evaluation.split")
    if split not in (None, "val"):
        notes.append(f"base evaluation.split={split!r} replaced by 'val': trials are ranked on the val split")
    set_dotted(base, "evaluation.split", "val")
    base.setdefault("name", cfg.name)
    cache_dir_given = base.get("cache_dir") is not None
    base_cfg = resolve_experiment(validate(ExperimentConfig, base, source=base_src), base_src)
    _absolute_paths(base, base_cfg)
    base_cfg = validate(ExperimentConfig, base, source=base_src)

    names = _objective_names(cfg, base_cfg, src)
    gates: dict[str, frozenset[str]] = {}
    for key in cfg.search:  # checked as the file spells them (``loss.*`` or ``objective.*``)
        _check_search_path(key, src, names, gates)
    _check_variants(cfg, src)
    _probe_values(cfg, base, src, gates)
    cfg = _canonical_search(cfg, src)
    gates = {canonical_path(k): v for k, v in gates.items() if NAME_PATH in cfg.search}
    if gates.keys() & {AREA_A, AREA_B}:
        raise UserError(
            f"{src}: search: the area bounds cannot be searched together with {NAME_PATH} (fix them in the base)"
        )
    space = build_space(cfg.search, base_cfg.model_dump(mode="json"), src, gates)
    notes += space.notes
    _check_combination(cfg, space, src)
    modes = _check_objective(cfg, base_cfg, space, src)

    storage = Storage.at(results if results is not None else cfg.storage)
    sweep = Sweep(
        path=path,
        config=cfg,
        base=base,
        base_cfg=base_cfg,
        space=space,
        modes=modes,
        storage=storage,
        notes=notes,
        cache_dir_given=cache_dir_given,
    )
    _check_scheduler(sweep, src)
    problem = _start_problem(sweep) if cfg.start_from_base is not False else None
    if cfg.start_from_base and problem:
        raise UserError(f"{src}: start_from_base: {problem}")
    if cfg.start_from_base is None:  # the default: the base runs as a trial wherever it can
        sweep.config = cfg.model_copy(update={"start_from_base": problem is None})
        sweep.start_defaulted = True
        if problem:
            notes.append(f"start_from_base off: {problem} (the report cannot compare the recommendation with the base)")
    return sweep


def _canonical_search(cfg: SweepConfig, src: str) -> SweepConfig:
    """Search paths in their current spelling (``loss.*`` is read as ``objective.*``)."""
    search: dict[str, Any] = {}
    for dotted, dist in cfg.search.items():
        key = canonical_path(dotted)
        if key in search:
            raise UserError(f"{src}: search.{dotted}: searched twice (also as {key})")
        search[key] = dist
    return cfg.model_copy(update={"search": search})


def _read_base(cfg: SweepConfig, path: Path) -> tuple[dict[str, Any], str]:
    if isinstance(cfg.base, str):
        base_path = (path.parent / cfg.base).resolve()
        if not base_path.is_file():
            raise UserError(f"{path}: base: no such experiment file {base_path}")
        return read_yaml(base_path), f"{path}: base ({base_path})"
    return copy.deepcopy(cfg.base), f"{path}: base"


def _absolute_paths(base: dict[str, Any], cfg: ExperimentConfig) -> None:
    """Trials run in Ray's working directories: make every file path absolute (relative to the cwd).
    ``cache_dir`` is pinned to this machine's (the default's when the base has none); a trial on a
    cluster node drops a default one for its node's (``ExplanandaPlan.node_data``)."""
    base["cache_dir"] = str(Path(cfg.cache_dir).expanduser().resolve())
    candidates = {
        "data.root": cfg.data.root,
        "explanandum.checkpoint": cfg.explanandum.checkpoint,
        "explanandum.weights": cfg.explanandum.weights,
        "explainer.weights": cfg.explainer.weights,
    }
    for dotted, value in candidates.items():
        if value is None or str(value) == "imagenet":
            continue
        set_dotted(base, dotted, os.path.abspath(os.path.expanduser(str(value))))


def _model_in(annotation: Any) -> type[BaseModel] | None | bool:
    """The pydantic model inside a field annotation; True for free-form mappings; None otherwise."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if annotation is dict or get_origin(annotation) is dict:
        return True
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _objective_names(cfg: SweepConfig, base_cfg: ExperimentConfig, src: str = "") -> list[str]:
    """The objective names trials can have: the searched ``objective.name`` values, else the base's."""
    dist = cfg.search.get(NAME_PATH)
    if dist is None:
        return [base_cfg.objective.name]
    if not dist.discrete:
        raise UserError(f"{src}: search.{NAME_PATH}: give choice or grid over objective names")
    return [str(v) for v in dist.values]


def _check_objective_path(dotted: str, src: str, names: list[str], gates: dict[str, frozenset[str]]) -> None:
    """``objective.<field>`` or ``objective.<name>.<field>``: a field of an objective trials can have.

    Records the objective names the path is drawn for (all of them: not gated)."""
    parts = canonical_path(dotted).split(".")
    if len(parts) == 2 and parts[1] == "name":
        unknown = [n for n in names if n not in OBJECTIVE_CONFIGS]
        if unknown:
            raise UserError(
                f"{src}: search.{dotted}: unknown objective {unknown[0]!r}; choose from {', '.join(sorted(OBJECTIVE_CONFIGS))}"
            )
        return
    if len(parts) == 3 and parts[1] in OBJECTIVE_CONFIGS:
        owner, fld = parts[1], parts[2]
        if owner not in names:
            raise UserError(
                f"{src}: search.{dotted}: trials never use objective {owner!r} (objective.name is {' or '.join(names)})"
            )
        if fld not in OBJECTIVE_CONFIGS[owner].model_fields or fld == "name":
            known = ", ".join(sorted(f for f in OBJECTIVE_CONFIGS[owner].model_fields if f != "name"))
            raise UserError(f"{src}: search.{dotted}: objective {owner} has no field {fld!r} (choose from {known})")
        owners = [owner]
    elif len(parts) == 2:
        fld = parts[1]
        owners = [n for n in names if fld in OBJECTIVE_CONFIGS[n].model_fields]
        if not owners:
            raise UserError(
                f"{src}: search.{dotted}: no field {dotted!r} in objective {' or '.join(names)}"
                f" (choose from {', '.join(sorted(OBJECTIVE_CONFIGS[names[0]].model_fields))})"
            )
    else:
        raise UserError(f"{src}: search.{dotted}: expected objective.<field> or objective.<name>.<field>")
    if set(owners) != set(names):
        gates[dotted] = frozenset(owners)


def _check_variants(cfg: SweepConfig, src: str) -> None:
    """``search.variant.<name>``: choice or grid over non-empty mappings of searchable dotted fields
    (``objective.*``: a field of some objective), no field set by two dimensions."""
    owner: dict[str, str] = {canonical_path(p): p for p in cfg.search if not is_variant(p)}
    for dotted, dist in cfg.search.items():
        if not is_variant(dotted):
            continue
        if len(dotted.split(".")) != 2:
            raise UserError(f"{src}: search.{dotted}: a variant dimension is named variant.<name> (one word)")
        if not dist.discrete:
            raise UserError(f"{src}: search.{dotted}: give grid or choice over mappings of fields")
        fields: set[str] = set()
        for i, value in enumerate(dist.values):
            where = f"{src}: search.{dotted}[{i}]"
            if not isinstance(value, dict) or not value:
                raise UserError(f"{where}: expected a mapping of dotted fields to values, got {value!r}")
            for key in value:
                path = canonical_path(str(key))
                if is_variant(path):
                    raise UserError(f"{where}.{key}: a variant cannot set another variant")
                if path.startswith("objective."):
                    fld = path.split(".", 1)[1]
                    if not any(fld in c.model_fields for c in OBJECTIVE_CONFIGS.values()):
                        raise UserError(f"{where}.{key}: no objective has a field {fld!r}")
                else:
                    _check_search_path(str(key), where)
                fields.add(path)
        for path in sorted(fields):
            if path in owner:
                raise UserError(f"{src}: search.{dotted}: sets {path}, which search.{owner[path]} also sets")
            owner[path] = dotted


def _check_search_path(
    dotted: str, src: str, names: list[str] | None = None, gates: dict[str, frozenset[str]] | None = None
) -> None:
    if is_variant(dotted):
        return  # checked with its values by _check_variants
    if dotted in _RESERVED:
        raise UserError(f"{src}: search.{dotted}: cannot be searched ({_RESERVED[dotted]})")
    if canonical_path(dotted).startswith("objective.") and names is not None:
        _check_objective_path(dotted, src, names, gates if gates is not None else {})
        return
    model: Any = ExperimentConfig
    parts = canonical_path(dotted).split(".")
    for i, part in enumerate(parts):
        if model is True:  # inside a free-form mapping (e.g. explainer.options): any key
            return
        fields = model.model_fields
        if part not in fields:
            known = ", ".join(sorted(fields))
            where = ".".join(dotted.split(".")[: i + 1])
            raise UserError(
                f"{src}: search.{dotted}: no field {where!r} in the experiment schema (choose from {known})"
            )
        if i < len(parts) - 1:
            model = _model_in(fields[part].annotation)
            if model is None:
                raise UserError(f"{src}: search.{dotted}: {'.'.join(dotted.split('.')[: i + 1])!r} has no sub-fields")


def _probe_values(
    cfg: SweepConfig, base: dict[str, Any], src: str, gates: dict[str, frozenset[str]] | None = None
) -> None:
    """Validate the base with every probe value of every distribution substituted (a gated objective
    weight with each objective it is drawn for)."""
    names = _objective_names(cfg, validate(ExperimentConfig, base), src) if NAME_PATH in cfg.search else [None]
    for dotted, dist in cfg.search.items():
        owners = sorted((gates or {}).get(dotted, names))
        for value, owner in [(v, o) for v in Dim.of(dist).probe_values() for o in owners]:
            values = {dotted: value} if owner is None or dotted == NAME_PATH else {NAME_PATH: owner, dotted: value}
            data = trial_data(base, {field_path(k): v for k, v in values.items()})
            # Probe one bound at a time: give its partner a value that keeps a < b where possible,
            # so the error (if any) is about this value's own range. a < b is planned by build_space.
            if canonical_path(dotted) == AREA_A and isinstance(value, (int, float)) and value < 1:
                set_dotted(data, AREA_B, 1.0)
            if canonical_path(dotted) == AREA_B and isinstance(value, (int, float)) and value > 0:
                set_dotted(data, AREA_A, value / 2)
            shown = json.dumps(value, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            probe = f"{src}: search.{dotted}={shown}"
            resolve_experiment(validate(ExperimentConfig, data, source=probe), probe)


def _check_combination(cfg: SweepConfig, space: SearchSpace, src: str) -> None:
    alg, sched = cfg.search_alg.name, cfg.scheduler.name
    grids = [p for p, d in cfg.search.items() if d.kind == "grid"]
    if alg in _OPTUNA and grids:
        raise UserError(
            f"{src}: search.{grids[0]}: grid is not supported by {alg} (Ray's OptunaSearch refuses grid_search); "
            "use choice, or search_alg random/grid"
        )
    if alg == "grid":
        other = [p for p, d in cfg.search.items() if d.kind != "grid"]
        if other:
            raise UserError(
                f"{src}: search.{other[0]}: search_alg grid needs grid distributions only (got {cfg.search[other[0]].kind}); "
                "use search_alg random to cross grids with sampled values"
            )
    if alg == "optuna_nsga2" and not cfg.multi_objective:
        raise UserError(
            f"{src}: search_alg: optuna_nsga2 is for several objectives; give a list of metrics or use optuna_tpe"
        )
    if sched == "pbt":
        if alg != "random":
            raise UserError(
                f"{src}: scheduler: pbt perturbs its own population and Ray refuses it with a search algorithm "
                f"(got search_alg {alg}); set search_alg: random"
            )
        if not cfg.search:
            raise UserError(f"{src}: scheduler: pbt needs at least one search entry to mutate")
        for dotted, dist in cfg.search.items():
            if not dotted.startswith("objective.lambda_"):
                raise UserError(
                    f"{src}: search.{dotted}: pbt can mutate only objective.lambda_* weights (a trial restored from another "
                    "trial's checkpoint cannot follow a change of model, data, area bounds or learning rate)"
                )
            if dist.kind == "grid":
                raise UserError(f"{src}: search.{dotted}: pbt does not take grid; use choice or a range")


def _check_objective(cfg: SweepConfig, base_cfg: ExperimentConfig, space: SearchSpace, src: str) -> list[str]:
    from attrsearch.metrics.registry import metric_mode, metric_names

    modes = []
    for name in cfg.objective:
        try:
            modes.append(metric_mode(name))
        except UserError as err:
            raise UserError(f"{src}: objective: {err}") from None
    datasets = {base_cfg.data.dataset} | set(space.discrete_values("data.dataset") or [])
    for name in cfg.objective:
        if name.startswith("context/") and datasets != {"shapes"}:
            raise UserError(f"{src}: objective: {name} exists only on the built-in shapes data (planted context)")
    suite = base_cfg.evaluation.epoch_suite
    per_epoch = set(metric_names(suite))
    # Tune checks its metric in every report; a scheduler compares the first objective every epoch.
    needed = [cfg.objective[0]] if (not cfg.multi_objective or cfg.scheduler.name != "none") else []
    for name in needed:
        if name not in per_epoch:
            why = "Tune's metric" if cfg.scheduler.name == "none" else f"the {cfg.scheduler.name} scheduler's metric"
            raise UserError(
                f"{src}: objective: {name} is {why} and must be reported every epoch, but the base's epoch suite "
                f"{suite!r} lacks it; set base evaluation.epoch_suite: full (slower), or lead with one of: "
                f"{', '.join(n for n in metric_names(suite) if _is_score(n))}"
            )
    return modes


def _is_score(name: str) -> bool:
    from attrsearch.metrics.registry import get_spec

    return get_spec(name).direction is not None


def base_values(sweep: Sweep) -> dict[str, Any]:
    """The base experiment's own values of the searched fields."""
    dumped = sweep.base_cfg.model_dump(mode="json")
    return {path: get_dotted(dumped, path) for path in sweep.space.paths}


def _start_problem(sweep: Sweep) -> str | None:
    """Why the base cannot run as the first trial (None: it can)."""
    if sweep.config.search_alg.name == "grid" or sweep.config.scheduler.name == "pbt":
        return "not available with search_alg grid or scheduler pbt"
    values = base_values(sweep)
    for path, value in values.items():
        if is_variant(path):
            return f"the base is none of the values of search.{path} (set start_from_base: false)"
        if path in (AREA_A, AREA_B) and sweep.space.joint:
            if (values[AREA_A], values[AREA_B]) not in sweep.space.joint[1]:
                return f"the base's (a, b) = ({values[AREA_A]}, {values[AREA_B]}) is not in the searched pairs"
        elif not sweep.space.contains(path, value):
            return f"the base's {path} = {value!r} lies outside its search space"
    return None


def _check_scheduler(sweep: Sweep, src: str) -> None:
    sched = sweep.config.scheduler
    if sched.name == "asha":
        max_t = sched.max_t or sweep.max_epochs
        if sched.grace_period > max_t:
            raise UserError(f"{src}: scheduler.grace_period ({sched.grace_period}) exceeds max_t ({max_t} epochs)")
