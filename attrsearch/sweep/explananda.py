"""Every frozen Explanandum a sweep can need, trained or fetched from the cache once, before trials.

A trial's Explanandum is identified by the data and Explanandum fields of its config (the cache
key of ``attrsearch.train.explanandum``), and its transfer panel by ``evaluation.transfer``. The
base and every combination of the discrete values (``choice``/``grid``) of those fields are
enumerated; each distinct (config, arch, seed) not yet in the cache is trained by one Ray task,
all in parallel. Trials then only load them. Continuous distributions over those fields cannot be
enumerated: such trials train on demand (the cache is file-locked, so concurrent trials that need
the same one train it once). Multi-node clusters need ``cache_dir`` on storage every node sees.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attrsearch.config import ExperimentConfig, validate
from attrsearch.sweep.load import Sweep

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
    cache_path: str

    @property
    def cached(self) -> bool:
        return (Path(self.cache_path) / "model.pt").is_file()


def _relevant(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in _PREFIXES)


def needed_explananda(sweep: Sweep) -> tuple[list[ExplanandumJob], list[str]]:
    """(jobs, notes): the distinct Explananda of the base and of every discrete combination."""
    from attrsearch.train.explanandum import explanandum_cache_path, panel_specs

    notes: list[str] = []
    discrete: dict[str, list[Any]] = {}
    for path in sweep.space.paths:
        if not _relevant(path):
            continue
        values = sweep.space.discrete_values(path)
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
        wanted: list[tuple[str, str, dict[str, Any]]] = []
        if cfg.explanandum.checkpoint is None:
            wanted.append(("explanandum", f"{cfg.explanandum.arch}-s{cfg.explanandum.seed}", {}))
        if cfg.evaluation.final_suite == "full":  # the trials' own panel, exactly as they build it
            wanted += [("panel", name, overrides) for name, overrides in panel_specs(cfg)]
        for role, label, overrides in wanted:
            path = str(explanandum_cache_path(cfg, **overrides))
            if path not in jobs:
                jobs[path] = ExplanandumJob(label, role, data, overrides, path)
    return list(jobs.values()), notes


def _prepare_one(data: dict[str, Any], overrides: dict[str, Any], threads: int) -> float:
    """Ray task body: train (or load) one Explanandum into the cache; returns the seconds taken."""
    import torch

    from attrsearch.train.explanandum import get_explanandum
    from attrsearch.train.runtime import resolve_device

    torch.set_num_threads(max(1, threads))
    cfg = validate(ExperimentConfig, data, source="explanandum task")
    start = time.perf_counter()
    get_explanandum(cfg, resolve_device(cfg.train.device), progress=False, **overrides)
    return time.perf_counter() - start


def prepare_explananda(jobs: list[ExplanandumJob], cpus: float, gpus: float) -> list[tuple[ExplanandumJob, float]]:
    """Train every uncached job as a parallel Ray task (``cpus``/``gpus`` each); returns (job, seconds)."""
    import ray

    from attrsearch.errors import UserError

    todo = [j for j in jobs if not j.cached]
    if not todo:
        return []
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_prepare_one)
    refs = [task.remote(j.data, j.overrides, int(max(1, cpus))) for j in todo]
    try:
        seconds = ray.get(refs)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, UserError):
            raise UserError(str(cause)) from None
        raise
    return list(zip(todo, seconds))
