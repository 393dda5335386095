"""Hyperparameter sweeps over Explainer experiments with Ray Tune, Optuna and W&B.

The only package that imports Ray Tune and Optuna. Loading and describing a sweep
(``schema``, ``space``, ``load``) imports neither, so ``attrsearch sweep --dry-run`` starts nothing.

- ``schema``: the sweep file (pydantic), one-line errors naming the field.
- ``space``: distributions -> Tune domains / an Optuna define-by-run space; the a < b area bounds.
- ``load``: read + validate a sweep file against the experiment schema (``load_sweep``).
- ``explananda``: train or fetch every Explanandum a sweep needs once, as parallel Ray tasks.
- ``trainable``: one trial = ``attrsearch.evaluate.experiment.run_experiment`` reporting to Tune every epoch.
- ``wandb_log``: one W&B run per trial (scalars, final metrics, mask gallery, class-specific table).
- ``tuner``: searchers, schedulers and the ``Tuner`` (fresh or restored).
- ``results``: ``trials.csv``, ``best.yaml``, ``pareto.csv``, the leaderboard, ``attrsearch status``.
- ``run``: ``attrsearch sweep`` (``run_sweep_command``).
"""
