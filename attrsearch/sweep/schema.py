"""The sweep file schema: a base experiment, a search space over its fields, and how trials run.

```yaml
name: quickstart                      # results land in <storage>/<name>/
base: {data: {...}, loss: {...}}      # an experiment mapping, or a path to an experiment YAML
search:                               # dotted experiment field -> distribution
  loss.lambda_entropy: {loguniform: [0.1, 10]}
  loss.min_area: {uniform: [0.01, 0.2]}
  explanandum.arch: {choice: [small_cnn, small_resnet]}
search_alg: optuna_tpe                # or {name: optuna_tpe, seed: 0, n_startup_trials: 4}
scheduler: {name: asha, grace_period: 1}
objective: segmentation/iou           # or a list (multi-objective)
num_samples: 12
```

Only the shape of the file is checked here; ``attrsearch.sweep.load`` checks it against the
experiment schema (every search path exists, every sampled value validates, a < b).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from attrsearch.config.base import StrictModel
from attrsearch.config.search import Distribution

# ----------------------------------------------------------------------------- search algorithms


class RandomSearch(StrictModel):
    """Tune's own generator: sampled values, ``grid`` entries crossed with ``num_samples`` repeats."""

    name: Literal["random"]
    seed: int | None = None


class GridSearch(StrictModel):
    """Every combination of the ``grid`` entries, each run ``num_samples`` times (default 1)."""

    name: Literal["grid"]


class OptunaTPE(StrictModel):
    name: Literal["optuna_tpe"]
    seed: int | None = None
    n_startup_trials: int = Field(10, ge=0, description="random trials before TPE models the space")
    multivariate: bool = False


class OptunaNSGA2(StrictModel):
    name: Literal["optuna_nsga2"]
    seed: int | None = None
    population_size: int = Field(50, ge=2)
    mutation_prob: float | None = Field(None, ge=0.0, le=1.0)
    crossover_prob: float = Field(0.9, ge=0.0, le=1.0)


class OptunaGP(StrictModel):
    name: Literal["optuna_gp"]
    seed: int | None = None
    n_startup_trials: int = Field(10, ge=0)


SearchAlg = Annotated[RandomSearch | GridSearch | OptunaTPE | OptunaNSGA2 | OptunaGP, Field(discriminator="name")]

# ----------------------------------------------------------------------------------- schedulers


class AshaScheduler(StrictModel):
    """Asynchronous successive halving on the first objective; time unit = epochs (Tune's iterations)."""

    name: Literal["asha"]
    grace_period: int = Field(1, ge=1, description="epochs every trial runs before it can be stopped")
    reduction_factor: float = Field(2.0, gt=1.0)
    max_t: int | None = Field(None, ge=1, description="default: the base's train.epochs (largest searched value)")
    brackets: int = Field(1, ge=1)


class MedianScheduler(StrictModel):
    """Stop a trial whose best result is below the median of the others' running averages."""

    name: Literal["median"]
    grace_period: int = Field(1, ge=1)
    min_samples_required: int = Field(3, ge=1)
    hard_stop: bool = True


class PBTScheduler(StrictModel):
    """Population based training over ``loss.lambda_*`` (the only fields a restored checkpoint follows)."""

    name: Literal["pbt"]
    perturbation_interval: int = Field(2, ge=1, description="epochs between exploit/explore steps")
    quantile_fraction: float = Field(0.25, gt=0.0, le=0.5)
    resample_probability: float = Field(0.25, ge=0.0, le=1.0)
    burn_in_period: int = Field(0, ge=0)
    synch: bool = Field(False, description="perturb the whole population together at each interval")


class NoScheduler(StrictModel):
    name: Literal["none"]


Scheduler = Annotated[AshaScheduler | MedianScheduler | PBTScheduler | NoScheduler, Field(discriminator="name")]

# ------------------------------------------------------------------------------------- the rest


class Resources(StrictModel):
    cpu: float = Field(1.0, gt=0.0, description="CPUs per trial (also its torch threads)")
    gpu: float = Field(0.0, ge=0.0, description="GPUs per trial; a fraction shares one GPU and caps its memory share")

    @field_validator("gpu")
    @classmethod
    def _whole_above_one(cls, gpu: float) -> float:
        if gpu > 1 and gpu != int(gpu):
            raise ValueError(f"more than one GPU must be a whole number (got {gpu})")
        return gpu


class WandbSettings(StrictModel):
    """W&B logging. Keys are never read from files: online mode uses WANDB_API_KEY or ``wandb login``."""

    project: str = "attrsearch"
    group: str | None = Field(None, description="default: the sweep's name")
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] = "offline"
    tags: list[str] = Field(default_factory=list)
    gallery_images: int = Field(4, ge=0, le=32, description="fixed val images in each trial's mask gallery")

    @model_validator(mode="before")
    @classmethod
    def _no_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if "key" in str(key).lower() or "token" in str(key).lower():
                    raise ValueError(
                        f"{key}: keys are never read from sweep files; set WANDB_API_KEY in the environment or run `wandb login`"
                    )
        return data


class StorageRetry(StrictModel):
    """Uploads to remote storage (checkpoints, results) that fail are tried again after 2, 4, 8, ... s."""

    attempts: int = Field(5, ge=1, description="tries of one upload before the sweep stops (1: no retry)")
    max_wait_s: float = Field(60.0, gt=0.0, description="the longest wait between two tries")


class TestingHooks(StrictModel):
    """Hooks for attrsearch's own test suite; leave unset."""

    fail_once_at_epoch: int | None = Field(
        None, ge=1, description="every trial raises once right after reporting this epoch"
    )
    hang_once_at_epoch: int | None = Field(
        None, ge=1, description="the first trial to report this epoch stops reporting (sleeps), once per sweep"
    )


NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SweepConfig(StrictModel):
    name: str = Field(description="results go to <storage>/<name>/")
    description: str | None = None
    base: str | dict[str, Any] = Field(description="experiment mapping, or a path relative to the sweep file")
    search: dict[str, Distribution] = Field(default_factory=dict)
    search_alg: SearchAlg = Field(default_factory=lambda: RandomSearch(name="random"))
    scheduler: Scheduler = Field(default_factory=lambda: NoScheduler(name="none"))
    objective: list[str] = Field(description="metric name(s) from `attrsearch metrics`; mode from the registry")
    num_samples: int | None = Field(None, ge=1, description="default: 1 for grid, 10 otherwise")
    max_concurrent_trials: int | None = Field(None, ge=1)
    resources_per_trial: Resources = Field(default_factory=Resources)
    storage: str = Field("results", description="results root: a path (relative to the working directory) or s3://...")
    share_explananda: Literal["auto", "storage", "off"] = Field(
        "auto",
        description="trained Explananda published once into <storage>/<name>/explananda/ and fetched by every "
        "node that lacks them (nodes without a shared disk): storage, off, or auto (storage with --address or "
        "remote storage, off for the embedded local Ray, whose workers share this machine's cache)",
    )
    max_failures: int = Field(0, ge=0, description="retries of a failed trial from its last checkpoint")
    trial_report_timeout_s: float | None = Field(
        None,
        gt=0.0,
        description="a trial that reports nothing for this many seconds (a deadlocked data loader) is ended and "
        "fails with 'no report for N s after epoch E', retried within max_failures. The clock starts when the "
        "trial starts training (after its checkpoint restore) and restarts at each report, so it must cover "
        "building the datasets plus the first epoch, and the longest epoch with that epoch's evaluation; time "
        "inside a report (uploads, waiting for the driver) does not count. Unset: off",
    )
    storage_retry: StorageRetry = Field(
        default_factory=StorageRetry,
        description="remote storage that stops answering: each upload of a trial (its checkpoint with its "
        "report, its results) is tried `attempts` times, waiting 2, 4, 8, ... s (at most max_wait_s) in between, "
        "with a console line per failure; past that the sweep stops as Ctrl-C stops it (exit status 3) and "
        "prints the --resume command. Defaults: 5 tries over 2+4+8+16 = 30 s",
    )
    reuse_actors: bool = Field(
        True,
        description="a finished trial's worker process runs the next trial (no new interpreter importing torch "
        "per trial); false starts a fresh process per trial",
    )
    time_budget_s: float | None = Field(None, gt=0.0)
    seeds: list[int] | None = Field(
        None, description="train each configuration once per seed (lockstep); report mean and _std"
    )
    start_from_base: bool | None = Field(
        None,
        description="the first trial takes the base's own values of the searched fields (the reference the "
        "report measures the recommendation against). Unset: on, unless search_alg grid, scheduler pbt, or a base "
        "value outside the search space rules it out (a note says which); true: required (an error instead of the "
        "note); false: off",
    )
    wandb: WandbSettings = Field(default_factory=WandbSettings)
    testing: TestingHooks = Field(default_factory=TestingHooks)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """``search_alg: optuna_tpe`` / ``scheduler: asha`` / ``objective: name`` are shorthands."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("search_alg", "scheduler"):
            if isinstance(data.get(key), str):
                data[key] = {"name": data[key]}
        if isinstance(data.get("objective"), str):
            data["objective"] = [data["objective"]]
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME_PATTERN.match(name):
            raise ValueError("use letters, digits, '_', '-' and '.' (it names the results folder)")
        return name

    @field_validator("objective")
    @classmethod
    def _objective(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError("give at least one metric name")
        if len(set(names)) != len(names):
            raise ValueError("lists a metric twice")
        return names

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None:
            if not seeds:
                raise ValueError("give at least one seed or leave seeds out")
            if len(set(seeds)) != len(seeds):
                raise ValueError("lists a seed twice")
        return seeds

    @field_validator("search")
    @classmethod
    def _paths(cls, search: dict[str, Distribution]) -> dict[str, Distribution]:
        for path in search:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", path):
                raise ValueError(f"{path!r} is not a dotted config path like loss.lambda_tv")
        for path in search:
            for other in search:
                if other != path and other.startswith(path + "."):
                    raise ValueError(f"{path!r} and {other!r} overlap: search one or the other")
        return search

    @property
    def samples(self) -> int:
        if self.num_samples is not None:
            return self.num_samples
        return 1 if self.search_alg.name == "grid" else 10

    @property
    def multi_objective(self) -> bool:
        return len(self.objective) > 1
