"""Every frozen Explanandum a sweep can need, trained or fetched from the cache once, before trials.

A trial's Explanandum is identified by the data and Explanandum fields of its config (the cache
key of ``attrsearch.train.explanandum``), and its transfer panel by ``evaluation.transfer``. The
base and every combination of the discrete values (``choice``/``grid``) of those fields are
enumerated (a ``variant.<name>`` dimension counts when one of its mappings sets such a field); each distinct (config, arch, seed) not yet in the cache is trained by one Ray task,
all in parallel. Trials then only load them. Continuous distributions over those fields cannot be
enumerated: such trials train on demand (the cache is file-locked, so concurrent trials that need
the same one train it once).

Nodes without a shared disk (``share_explananda``, ``ExplanandaPlan``): the sweep's storage is
the shared copy (``attrsearch.sweep.shared_cache``). A preparation task fetches an entry that
storage has, else trains it (or takes its node's cached copy) and publishes it; the driver counts
an entry as done when storage holds it, and every trial fetches what its node lacks before it
builds its Explanandum and panel, so a cluster trains each entry once, also across ``--resume``.
With ``--address`` and no ``cache_dir`` in the base, tasks and trials use their node's own default
cache (``$ATTRSEARCH_CACHE`` or ``~/.cache/attrsearch`` there) instead of the driver's path.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from attrsearch.cache import CacheEntry
from attrsearch.config import ExperimentConfig, validate
from attrsearch.config.search import is_variant
from attrsearch.sweep.load import Sweep
from attrsearch.sweep.shared_cache import SharedCache

# Fields whose values change which Explananda a trial needs.
_PREFIXES = ("data", "explanandum", "evaluation.transfer", "evaluation.final_suite")
_MAX_COMBINATIONS = 512


@dataclass(frozen=True)
class ExplanandumJob:
    """One Explanandum to prepare: the config it is trained with and, for a panel member, the
    ``get_explanandum`` overrides (arch, seed, options, epochs) of ``panel_specs``."""

    label: str
    role: str  # explanandum | panel
    data: dict[str, Any]  # the experiment mapping
    overrides: dict[str, Any]
    entry: CacheEntry  # in the driver's cache (kind, key and version are the same on every node)

    @property
    def cache_path(self) -> str:
        return str(self.entry.path)

    @property
    def cached(self) -> bool:
        return self.entry.exists()  # complete and matching its checksums


@dataclass(frozen=True)
class ExplanandaPlan:
    """Where a sweep's Explananda live: ``shared`` (a ``SharedCache`` URI) when they go through the
    sweep's storage; ``node_cache`` when tasks and trials use their node's default cache."""

    shared: str | None = None
    node_cache: bool = False

    @property
    def cache(self) -> SharedCache | None:
        return SharedCache(self.shared) if self.shared else None

    def node_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """An experiment mapping as a task or trial on a node builds it (its own default cache)."""
        return {k: v for k, v in data.items() if k != "cache_dir"} if self.node_cache else data


def explananda_plan(sweep: Sweep, address: str | None) -> ExplanandaPlan:
    """``share_explananda``: ``storage`` shares through the sweep's storage, ``off`` does not, ``auto``
    shares when the sweep joins a cluster (``address``) or its storage is remote (the embedded local
    Ray's workers share this machine's cache). A base without ``cache_dir`` on a cluster: node caches."""
    mode = sweep.config.share_explananda
    shared = mode == "storage" or (mode == "auto" and (bool(address) or not sweep.storage.is_local))
    return ExplanandaPlan(
        shared=sweep.experiment_path if shared else None,
        node_cache=bool(address) and not sweep.cache_dir_given,
    )


def trial_explananda(cfg: ExperimentConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """(role, label, ``get_explanandum`` overrides) of every cached Explanandum a run of ``cfg`` loads:
    its Explanandum (unless given as a file) and, with the full final suite, its transfer panel."""
    from attrsearch.train.explanandum import panel_specs

    wanted: list[tuple[str, str, dict[str, Any]]] = []
    if cfg.explanandum.checkpoint is None:
        wanted.append(("explanandum", f"{cfg.explanandum.arch}-s{cfg.explanandum.seed}", {}))
    if cfg.evaluation.final_suite == "full":  # the trials' own panel, exactly as they build it
        wanted += [("panel", name, overrides) for name, overrides in panel_specs(cfg)]
    return wanted


def _relevant(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in _PREFIXES)


def needed_explananda(sweep: Sweep) -> tuple[list[ExplanandumJob], list[str]]:
    """(jobs, notes): the distinct Explananda of the base and of every discrete combination."""
    from attrsearch.train.explanandum import explanandum_entry

    notes: list[str] = []
    discrete: dict[str, list[Any]] = {}
    for path in sweep.space.paths:
        values = sweep.space.discrete_values(path)
        variant = is_variant(path) and any(_relevant(k) for v in values or [] for k in v)
        if not (_relevant(path) or variant):
            continue
        if values is None:
            notes.append(f"{path} is continuous: the Explananda it implies are trained on demand by the trials")
        else:
            discrete[path] = values
    combos = list(itertools.product(*discrete.values())) if discrete else [()]
    if len(combos) > _MAX_COMBINATIONS:
        notes.append(
            f"{len(combos)} combinations of Explanandum fields: only the base's are prepared, trials train the rest"
        )
        combos = [()]
    jobs: dict[str, ExplanandumJob] = {}
    for combo in combos:
        data = sweep.trial_data(dict(zip(discrete, combo)))
        cfg = validate(ExperimentConfig, data, source=f"{sweep.path}: explanandum combination")
        for role, label, overrides in trial_explananda(cfg):
            entry = explanandum_entry(cfg, **overrides)
            if str(entry.path) not in jobs:
                jobs[str(entry.path)] = ExplanandumJob(label, role, data, overrides, entry)
    return list(jobs.values()), notes


def ensure_explanandum(
    cfg: ExperimentConfig, overrides: dict[str, Any], shared: SharedCache | None, device: Any = "cpu"
) -> bool:
    """Make one Explanandum of ``cfg`` (``get_explanandum`` overrides) ready in this node's cache;
    with ``shared``, fetch it from storage, else train it (or take the cached copy) and publish it.
    True when this call trained it."""
    from attrsearch.train.explanandum import explanandum_entry, get_explanandum

    entry = explanandum_entry(cfg, **overrides)
    if shared is not None and shared.fetch(entry):
        return False
    before = entry.built_here()
    if not entry.exists():  # several processes may get here at once: the cache's build lock trains it once
        get_explanandum(cfg, device, progress=False, **overrides)
    trained = entry.built_here() and not before
    if shared is not None:
        shared.publish(entry)
    return trained


def fetch_trial_explananda(cfg: ExperimentConfig, shared: SharedCache, device: Any = "cpu") -> None:
    """A trial's step before it builds its Explanandum and panel: every one of them in this node's
    cache (fetched from storage; one the preparation could not enumerate is trained and published)."""
    for _, _, overrides in trial_explananda(cfg):
        ensure_explanandum(cfg, overrides, shared, device)


def _prepare_one(data: dict[str, Any], overrides: dict[str, Any], threads: int, shared: str | None = None) -> float:
    """Ray task body: train (or load, or fetch) one Explanandum into the cache; returns the seconds taken."""
    import torch

    from attrsearch.train.runtime import resolve_device

    torch.set_num_threads(max(1, threads))
    cfg = validate(ExperimentConfig, data, source="explanandum task")
    start = time.perf_counter()
    ensure_explanandum(cfg, overrides, SharedCache(shared) if shared else None, resolve_device(cfg.train.device))
    return time.perf_counter() - start


def is_ready(job: ExplanandumJob, plan: ExplanandaPlan | None = None) -> bool:
    """Whether ``job`` needs no task: in storage when shared, else in the driver's cache."""
    cache = plan.cache if plan is not None else None
    return cache.is_published(job.entry) if cache is not None else job.cached


def prepare_explananda(
    jobs: list[ExplanandumJob], cpus: float, gpus: float, plan: ExplanandaPlan | None = None
) -> list[tuple[ExplanandumJob, float]]:
    """Train every job not ready (``is_ready``) as a parallel Ray task (``cpus``/``gpus`` each);
    returns (job, seconds)."""
    import ray

    from attrsearch.errors import DiskFull, UserError

    plan = plan or ExplanandaPlan()
    todo = [j for j in jobs if not is_ready(j, plan)]
    if not todo:
        return []
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_prepare_one)
    refs = [task.remote(plan.node_data(j.data), j.overrides, int(max(1, cpus)), plan.shared) for j in todo]
    try:
        seconds = ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, UserError):
            raise UserError(str(cause)) from None
        if isinstance(cause, DiskFull):
            raise DiskFull(cause.filename) from None
        raise
    return list(zip(todo, seconds))
