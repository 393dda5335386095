"""``attrsearch sweep FILE --dry-run``: the resolved sweep as text (space, trial count, schedule,
resources, Explananda, outputs) and seeded sample trials; imports neither Ray nor Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrsearch.errors import first_line
from attrsearch.sweep.load import Sweep

if TYPE_CHECKING:
    from attrsearch.sweep.explananda import ExplanandaPlan, ExplanandumJob


def _describe_explananda(jobs: list[ExplanandumJob], plan: ExplanandaPlan) -> list[str]:
    """One line per Explanandum a run prepares, ready as the run will count it (``is_ready``): cached on
    this machine, or (shared through the sweep's storage) published there; an unreadable storage is
    said, not raised."""
    from attrsearch.sweep.explananda import is_ready

    done = "in storage" if plan.shared else "cached"
    try:
        ready: list[bool | None] = [is_ready(job, plan) for job in jobs]
    except Exception as err:  # noqa: BLE001 - missing credentials, no network, ...: a dry run reports it
        ready = [None] * len(jobs)
        count = f"not checked: the storage cannot be read ({first_line(err)})"
    else:
        count = f"{sum(ready)} {done}"
    shared = f", shared through {plan.shared}/explananda" if plan.shared else ""
    status = {None: "?", True: done, False: "to train"}
    return [f"explananda prepared once before the trials{shared}: {len(jobs)} ({count})"] + [
        f"  {job.label:24s} {job.role:12s} {status[r]}  {job.cache_path}" for job, r in zip(jobs, ready)
    ]


def sample_trials(sweep: Sweep, count: int, seed: int) -> str:
    """``count`` trials drawn with ``seed`` from the space, each validated as the trial's experiment,
    one JSON object of searched values per line (the same seed prints the same trials)."""
    import json
    import random

    from attrsearch.sweep.experiment import trial_experiment

    rng = random.Random(seed)
    lines = [f"{count} trials sampled with seed {seed}:"]
    for i in range(count):
        values = sweep.space.sample(rng)
        trial_experiment(sweep.base, values, source=f"{sweep.path}: sampled trial {i}")
        lines.append("  " + json.dumps(values, sort_keys=True, default=str))
    return "\n".join(lines)


def describe(sweep: Sweep, address: str | None = None) -> str:
    """The resolved sweep as text: space, trial count, schedule, resources, Explananda, outputs.
    ``address``: the cluster a real run would join (Explananda shared through the storage are
    reported from the storage, which is read, not from this machine's cache)."""
    from attrsearch.sweep.explananda import explananda_plan, needed_explananda

    c = sweep.config
    lines = [f"sweep {sweep.name} ({sweep.path})"]
    if c.description:
        lines.append(f"  {c.description.strip()}")
    base = c.base if isinstance(c.base, str) else "inline"
    b = sweep.base_cfg
    lines.append(
        f"base: {base}; data {b.data.dataset} {b.data.image_size}px, explanandum {b.explanandum.arch}, "
        f"explainer {b.explainer.arch}, {b.train.epochs} epochs"
    )
    lines.append("trials are ranked on the val split (evaluation.split=val); best.yaml switches to test")
    alg = c.search_alg.model_dump(exclude_none=True)
    lines.append(f"search ({_params(alg)}):" if c.search else f"search ({_params(alg)}): no searched field")
    lines += sweep.space.describe()
    for note in sweep.notes:
        lines.append(f"  note: {note}")
    if c.start_from_base:
        from attrsearch.sweep.load import base_values

        shown = ", ".join(f"{k}={v}" for k, v in base_values(sweep).items())
        lines.append(f"  first trial: the base's values ({shown})")
    objectives = ", ".join(f"{o} ({m})" for o, m in zip(sweep.objectives, sweep.modes))
    lines.append(f"objective: {objectives}")
    sched = c.scheduler.model_dump(exclude_none=True)
    if c.scheduler.name == "asha" and c.scheduler.max_t is None:
        sched["max_t"] = sweep.max_epochs
    on = f" on {sweep.objectives[0]}" if c.scheduler.name != "none" else ""
    lines.append(f"scheduler: {_params(sched)}{on} (time unit: epochs)")
    res = c.resources_per_trial
    concurrency = (
        f"{c.max_concurrent_trials} concurrent" if c.max_concurrent_trials else "as many concurrent as resources allow"
    )
    seeds = f", seeds {c.seeds} per trial (mean and _std reported)" if c.seeds else ""
    lines.append(
        f"trials: {sweep.num_trials()} ({_count_text(sweep)}), {concurrency}, {res.cpu:g} CPU + {res.gpu:g} GPU each{seeds}"
    )
    extras = []
    if c.max_failures:
        extras.append(f"max_failures {c.max_failures} (retries from the last checkpoint)")
    if c.time_budget_s:
        extras.append(f"time budget {c.time_budget_s:g} s")
    if c.trial_report_timeout_s:
        extras.append(f"a trial silent for {c.trial_report_timeout_s:g} s is ended (trial_report_timeout_s)")
    if extras:
        lines.append("  " + ", ".join(extras))
    jobs, notes = needed_explananda(sweep)
    lines += _describe_explananda(jobs, explananda_plan(sweep, address))
    for note in notes:
        lines.append(f"  note: {note}")
    if b.data.dataset != "shapes":
        lines.append(
            f"  note: the dry run does not open data.root ({b.data.root}); a real run checks it before Ray starts"
        )
    lines.append(
        f"results: {sweep.experiment_path}/ (trials.csv, best.yaml{', pareto.csv' if c.multi_objective else ''})"
    )
    w = c.wandb
    if w.mode == "disabled":
        lines.append("W&B: disabled")
    else:
        lines.append(
            f"W&B: {w.mode}, project {w.project}, group {w.group or sweep.name}; "
            f"runs in {sweep.experiment_path}/<trial>/wandb/"
        )
    return "\n".join(lines)


def _params(d: dict[str, Any]) -> str:
    name = d.pop("name")
    rest = ", ".join(f"{k}={v}" for k, v in d.items())
    return f"{name} ({rest})" if rest else name


def _count_text(sweep: Sweep) -> str:
    samples = sweep.config.samples
    grid = sweep.space.grid_size()
    if sweep.config.search_alg.name in ("random", "grid") and sweep.config.scheduler.name != "pbt" and grid > 1:
        text = f"{grid} grid points x num_samples {samples}"
    else:
        text = f"num_samples {samples}"
    return text + (" + the base" if sweep.base_is_extra else "")
