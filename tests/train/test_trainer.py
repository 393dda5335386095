"""The Explainer loop: determinism, exact resume, early stopping, divergence."""

import pytest
import torch

from attrsearch.config import ExperimentConfig, validate
from attrsearch.data import build_dataset
from attrsearch.train.explainer import ExplainerRun, TrainingDiverged
from attrsearch.train.explanandum import get_explanandum


def _setup(data):
    cfg = validate(ExperimentConfig, data)
    train = build_dataset(cfg.data, "train", cfg.cache_dir)
    val = build_dataset(cfg.data, "val", cfg.cache_dir)
    return cfg, train, val, get_explanandum(cfg, "cpu")


class _Trainer(ExplainerRun):
    """An ExplainerRun with the epoch of ``train/run.py`` minus the metric suite."""

    def __init__(self, cfg, path, explanandum, train, val, resume=True):
        super().__init__(cfg, path, explanandum, train, device=torch.device("cpu"), resume=resume)
        self.val = val

    def run_epoch(self):
        record = self.train_epoch()
        record.update(self.validation_loss(self.val))
        return self.end_epoch(record, 0.0)


def _trainer(cfg, path, explanandum, train, val, resume=True):
    return _Trainer(cfg, path, explanandum, train, val, resume=resume)


def _state(trainer):
    return {k: v.clone() for k, v in trainer.explainer.state_dict().items()}


def test_same_seed_same_weights_bit_for_bit(tmp_path, tiny_experiment):
    cfg, train, val, explanandum = _setup(tiny_experiment)
    states = []
    for run in ("a", "b"):
        trainer = _trainer(cfg, tmp_path / run, explanandum, train, val)
        while not trainer.finished:
            trainer.run_epoch()
        states.append(_state(trainer))
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("schedule", [None, {"name": "cosine", "warmup_epochs": 0.5}])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, tiny_experiment, schedule):
    tiny_experiment["train"]["epochs"] = 3
    if schedule:  # the learning-rate schedule's position is checkpointed too
        tiny_experiment["train"]["lr_schedule"] = schedule
    cfg, train, val, explanandum = _setup(tiny_experiment)
    full = _trainer(cfg, tmp_path / "full", explanandum, train, val)
    while not full.finished:
        full.run_epoch()

    first = _trainer(cfg, tmp_path / "cut", explanandum, train, val)
    first.run_epoch()  # "interrupted" after one epoch: only its checkpoint survives
    del first
    resumed = _trainer(cfg, tmp_path / "cut", explanandum, train, val)
    assert resumed.epoch == 1 and resumed.resumed_from == 1
    while not resumed.finished:
        resumed.run_epoch()
    a, b = _state(full), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train/loss"] for r in full.history] == [r["train/loss"] for r in resumed.history]


def test_restart_ignores_checkpoint(tmp_path, tiny_experiment):
    cfg, train, val, explanandum = _setup(tiny_experiment)
    t = _trainer(cfg, tmp_path, explanandum, train, val)
    t.run_epoch()
    fresh = _trainer(cfg, tmp_path, explanandum, train, val, resume=False)
    assert fresh.epoch == 0


def test_early_stopping_stops_and_keeps_best(tmp_path, tiny_experiment):
    tiny_experiment["train"].update({"epochs": 6, "lr": 1e-12, "early_stopping": {"patience": 1, "min_delta": 10.0}})
    cfg, train, val, explanandum = _setup(tiny_experiment)
    t = _trainer(cfg, tmp_path, explanandum, train, val)
    while not t.finished:
        t.run_epoch()
    # Epoch 1 sets the best; no later epoch improves by 10, so patience 1 stops after epoch 2.
    assert t.epoch == 2 and t.stopped_early and t.best_epoch == 1
    assert t.best_checkpoint.is_file()


def test_nan_loss_raises_training_diverged(tmp_path, tiny_experiment, monkeypatch):
    cfg, train, val, explanandum = _setup(tiny_experiment)
    t = _trainer(cfg, tmp_path, explanandum, train, val)
    original = t.objective.loss

    def poisoned(*args, **kwargs):
        out = original(*args, **kwargs)
        return out._replace(loss=out.loss * float("nan"))

    t.objective = t.objective.__class__(poisoned, None)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1"):
        t.run_epoch()


def test_cosine_schedule_changes_the_learning_rate_per_step(tmp_path, tiny_experiment):
    tiny_experiment["train"].update(epochs=2, lr_schedule={"name": "cosine", "warmup_epochs": 1})
    cfg, train, val, explanandum = _setup(tiny_experiment)
    run = _trainer(cfg, tmp_path, explanandum, train, val)
    lr = cfg.train.lr
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * lr)  # warm-up starts at lr / 100
    run.run_epoch()
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(lr)  # one warm-up epoch: at lr now
    run.run_epoch()
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * lr)  # decayed to final_lr_ratio


def test_initial_mask_area_starts_masks_small(tmp_path, tiny_experiment):
    tiny_experiment["explainer"] = {**tiny_experiment.get("explainer", {}), "initial_mask_area": 0.05}
    cfg, train, val, explanandum = _setup(tiny_experiment)
    run = _trainer(cfg, tmp_path, explanandum, train, val)
    bias = run.explainer.classifier.bias
    assert torch.allclose(torch.sigmoid(bias), torch.full_like(bias, 0.05))
    images = torch.stack([train[i]["image"] for i in range(8)])
    with torch.no_grad():
        masks = torch.sigmoid(run.explainer.eval()(images))
    assert masks.mean() < 0.2  # 0.5 without the prior


def test_initial_mask_area_needs_an_output_conv():
    from attrsearch.errors import UserError
    from attrsearch.train.explainer import set_mask_prior

    with pytest.raises(UserError, match="explainer.initial_mask_area"):
        set_mask_prior(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1)), 0.1)
