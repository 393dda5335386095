"""Ray Tune objects of a sweep: search algorithm, scheduler, trainable, and the Tuner (new or restored).

Ray 2.60 rules followed here (checked against the installed Ray): only ``ray.tune`` names; ``TuneConfig.metric``
takes one string, so a multi-objective sweep gives the metric lists to ``OptunaSearch`` and the
first objective to the scheduler; Optuna spaces are define-by-run (conditional area bounds);
PBT runs with Tune's own generator. Outside PBT, Tune deletes no checkpoint and snapshots its
experiment state periodically; the sweep keeps one checkpoint per trial itself
(``recovery.CheckpointLedger``), so a driver killed at any point resumes every trial from its last
logged epoch without Tune's snapshot per checkpoint, whose cost grows with the trial count. PBT
keeps ``PBT_CHECKPOINTS`` checkpoints the way Tune does.
"""

from __future__ import annotations

import functools
from typing import Any

from ray import tune

from attrsearch.sweep.explananda import ExplanandaPlan
from attrsearch.sweep.load import Sweep
from attrsearch.sweep.trainable import TrialSpec, run_trial

# Schedulers count epochs, not Tune's training_iteration: a trial that resumes from a checkpoint
# Tune never registered (node lost right after a report, see trainable.latest_checkpoint) restarts
# Tune's iteration counter from the older checkpoint, while its epochs continue.
TIME_ATTR = "epoch"
# PBT clones other trials' checkpoints: keeping only the latest one deletes them under its feet
# (Ray warns for num_to_keep <= 2). The state snapshot is then forced every PBT_CHECKPOINTS epochs.
PBT_CHECKPOINTS = 4


def checkpoint_config(sweep: Sweep) -> tune.CheckpointConfig:
    """PBT: Tune keeps the last PBT_CHECKPOINTS. Otherwise ``num_to_keep=None``: Tune never deletes a
    checkpoint, so every path its state lists exists (after a driver restart from an older snapshot
    too: with a number, the checkpoints it deleted since that snapshot are listed, and its next
    deletion of one fails the trial), and never forces a snapshot (it does once a trial has
    checkpointed ``num_to_keep`` times since the last one). The ledger empties all but the last
    logged checkpoint; Tune's list costs a path per epoch in its state (about 230 bytes with
    TUNE_ONLY_STORE_CHECKPOINT_SCORE_ATTRIBUTE, set by ``run``)."""
    pbt = sweep.config.scheduler.name == "pbt"
    return tune.CheckpointConfig(num_to_keep=PBT_CHECKPOINTS if pbt else None)


def trial_dirname(trial: Any) -> str:
    """Trial folders are named by trial id (Ray's default name embeds every parameter)."""
    return trial.trial_id


def tune_metric(sweep: Sweep) -> tuple[str | None, str | None]:
    """TuneConfig's metric/mode: the objective of a single-objective sweep, None for several."""
    if sweep.config.multi_objective:
        return None, None
    return sweep.objectives[0], sweep.modes[0]


def start_points(sweep: Sweep, optuna: bool) -> list[dict[str, Any]] | None:
    from attrsearch.sweep.load import base_values

    if not sweep.config.start_from_base:
        return None
    return [sweep.space.start_point(base_values(sweep), optuna=optuna)]


def build_search_alg(sweep: Sweep) -> Any:
    """None (Tune's generator) for random/grid; an ``OptunaSearch`` over the define-by-run space."""
    alg = sweep.config.search_alg
    if alg.name == "random":
        from ray.tune.search import BasicVariantGenerator

        if alg.seed is None and not sweep.config.start_from_base:
            return None
        return BasicVariantGenerator(random_state=alg.seed, points_to_evaluate=start_points(sweep, optuna=False))
    if alg.name == "grid":
        return None
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if alg.name == "optuna_tpe":
        sampler = optuna.samplers.TPESampler(
            seed=alg.seed, n_startup_trials=alg.n_startup_trials, multivariate=alg.multivariate
        )
    elif alg.name == "optuna_nsga2":
        sampler = optuna.samplers.NSGAIISampler(
            seed=alg.seed,
            population_size=alg.population_size,
            mutation_prob=alg.mutation_prob,
            crossover_prob=alg.crossover_prob,
        )
    else:
        sampler = optuna.samplers.GPSampler(seed=alg.seed, n_startup_trials=alg.n_startup_trials)
    multi = sweep.config.multi_objective
    if sweep.storage.is_local:
        # The study in a journal beside Ray's experiment state: the searcher's history survives a
        # killed driver (Ray #30861) and optuna-dashboard can open it mid-sweep (searcher.py).
        # Remote storage keeps Ray's pickled in-memory study (a journal needs a local file).
        from pathlib import Path

        from attrsearch.sweep.searcher import JOURNAL_FILE, JournalOptunaSearch

        journal = Path(sweep.experiment_path) / JOURNAL_FILE
        if journal.exists():  # a new sweep (run refuses a folder with experiment state): start the study afresh
            journal.unlink()
        OptunaSearch = functools.partial(JournalOptunaSearch, journal_path=str(journal))  # noqa: N806
    return OptunaSearch(
        sweep.space.optuna_space(),
        metric=sweep.objectives if multi else sweep.objectives[0],
        mode=sweep.modes if multi else sweep.modes[0],
        sampler=sampler,
        study_name=sweep.name,
        points_to_evaluate=start_points(sweep, optuna=True),
    )


def build_scheduler(sweep: Sweep) -> Any:
    """The trial scheduler on the first objective (None = FIFO)."""
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule, PopulationBasedTraining

    sched = sweep.config.scheduler
    # With a single objective TuneConfig carries metric/mode (Tune refuses them twice).
    own = {} if not sweep.config.multi_objective else {"metric": sweep.objectives[0], "mode": sweep.modes[0]}
    if sched.name == "asha":
        return ASHAScheduler(
            time_attr=TIME_ATTR,
            max_t=sched.max_t or sweep.max_epochs,
            grace_period=sched.grace_period,
            reduction_factor=sched.reduction_factor,
            brackets=sched.brackets,
            **own,
        )
    if sched.name == "median":
        return MedianStoppingRule(
            time_attr=TIME_ATTR,
            grace_period=sched.grace_period,
            min_samples_required=sched.min_samples_required,
            hard_stop=sched.hard_stop,
            **own,
        )
    if sched.name == "pbt":
        return PopulationBasedTraining(
            time_attr=TIME_ATTR,
            perturbation_interval=sched.perturbation_interval,
            burn_in_period=sched.burn_in_period,
            hyperparam_mutations={path: dim.tune_domain() for path, dim in sweep.space.dims.items()},
            quantile_fraction=sched.quantile_fraction,
            resample_probability=sched.resample_probability,
            synch=sched.synch,
            **own,
        )
    return None


# Ray Tune copies these from the driver's environment into every trial actor's runtime_env
# (ray/tune/execution/class_cache.py), and Ray's runtime-env agent logs runtime envs in plain text
# (runtime_env_agent.log; Ray #28276, secrets in runtime envs). Trials read credentials from their
# own node's environment instead (inherited from the raylet, or the node's instance role).
_SECRET_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"}


def keep_secrets_out_of_runtime_envs() -> None:
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE = set(class_cache.ENV_VARS_TO_PROPAGATE) - _SECRET_ENV


def build_trainable(sweep: Sweep, plan: ExplanandaPlan | None = None) -> Any:
    """The trial function with its ``TrialSpec``; ``plan``: the base as a node builds it (its own
    cache on a cluster) and where the shared Explananda are."""
    keep_secrets_out_of_runtime_envs()
    plan = plan or ExplanandaPlan()
    res = sweep.config.resources_per_trial
    spec = TrialSpec(
        base=plan.node_data(sweep.base),
        seeds=tuple(sweep.config.seeds) if sweep.config.seeds else None,
        cpus=res.cpu,
        gpus=res.gpu,
        gallery_images=sweep.config.wandb.gallery_images if sweep.config.wandb.mode != "disabled" else 0,
        objectives=tuple(sweep.objectives),
        fail_once_at_epoch=sweep.config.testing.fail_once_at_epoch,
        shared_explananda=plan.shared,
        storage=sweep.storage,
        report_timeout_s=sweep.config.trial_report_timeout_s,
        hang_once_at_epoch=sweep.config.testing.hang_once_at_epoch,
        storage_retry=(sweep.config.storage_retry.attempts, sweep.config.storage_retry.max_wait_s),
    )
    return tune.with_resources(tune.with_parameters(run_trial, spec=spec), {"cpu": res.cpu, "gpu": res.gpu})


def build_callbacks(sweep: Sweep, console: bool = False) -> list[Any]:
    """Ray's JSON/CSV result loggers (results files and ``attrsearch status`` read them), W&B and, for a
    person at the terminal (``console``), the progress bar with a line per finished trial."""
    from attrsearch.sweep.recovery import CheckpointLedger, result_loggers

    # The ledger keeps one checkpoint per trial where Tune keeps them all (everything but PBT).
    retain = checkpoint_config(sweep).num_to_keep is None
    from attrsearch.sweep.outage import StopOnStorageOutage

    callbacks: list[Any] = [*result_loggers(), CheckpointLedger(retain=retain), StopOnStorageOutage(sweep.name)]
    w = sweep.config.wandb
    if w.mode != "disabled":
        from attrsearch.sweep.wandb_log import SweepWandbCallback

        callbacks.append(
            SweepWandbCallback(
                sweep.base,
                project=w.project,
                group=w.group or sweep.name,
                mode=w.mode,
                entity=w.entity,
                tags=w.tags,
                storage=sweep.storage,
            )
        )
    if console:
        from attrsearch.sweep.console import ConsoleProgress

        callbacks.append(ConsoleProgress(sweep.num_trials(), sweep.objectives[0]))
    return callbacks


def build_tuner(sweep: Sweep, verbose: int = 1, plan: ExplanandaPlan | None = None) -> tune.Tuner:
    """A new Tuner for the sweep (results under ``<storage>/<name>``)."""
    metric, mode = tune_metric(sweep)
    search_alg = build_search_alg(sweep)
    pbt = sweep.config.scheduler.name == "pbt"
    own_space = sweep.config.search_alg.name.startswith("optuna")
    tune_config = tune.TuneConfig(
        metric=metric,
        mode=mode,
        search_alg=search_alg,
        scheduler=build_scheduler(sweep),
        num_samples=sweep.tune_samples(),
        max_concurrent_trials=sweep.config.max_concurrent_trials,
        time_budget_s=sweep.config.time_budget_s,
        # Tune's default starts a new actor (a fresh interpreter importing torch and attrsearch, ~6-9 s
        # here) for every trial; reusing it keeps short trials' start-up out of the sweep's wall time.
        reuse_actors=sweep.config.reuse_actors,
        trial_dirname_creator=trial_dirname,
    )
    run_config = tune.RunConfig(
        name=sweep.name,
        storage_path=sweep.storage.root,
        failure_config=tune.FailureConfig(max_failures=sweep.config.max_failures),
        checkpoint_config=checkpoint_config(sweep),
        # PBT must not perturb a finished trial (its clone would be finished too and report again):
        # the final report stops the trial before the scheduler sees it.
        stop={"trial/finished": 1.0} if pbt else None,
        callbacks=build_callbacks(sweep, console=verbose == 0),
        verbose=verbose,
    )
    return tune.Tuner(
        build_trainable(sweep, plan),
        param_space={} if own_space else sweep.space.tune_param_space(),
        tune_config=tune_config,
        run_config=run_config,
    )


def restore_tuner(sweep: Sweep, plan: ExplanandaPlan | None = None) -> tune.Tuner:
    """Continue an interrupted sweep: finished trials stay, unfinished and errored ones resume from checkpoints."""
    return tune.Tuner.restore(
        sweep.experiment_path,
        trainable=build_trainable(sweep, plan),
        resume_unfinished=True,
        resume_errored=True,
    )
