"""The Optuna searcher's intermediate values follow the trial's epochs, not Tune's iteration counter."""

from __future__ import annotations

import pytest

from attrsearch.sweep.recovery import REPLAYED_KEY
from attrsearch.sweep.searcher import JournalOptunaSearch


def test_intermediate_values_are_reported_by_epoch_and_replays_are_not(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = JournalOptunaSearch(
        space=lambda trial: {"x": trial.suggest_float("x", 0.0, 1.0)},
        metric="segmentation/iou",
        mode="max",
        journal_path=tmp_path / "optuna.journal",
    )
    assert search.suggest("t0") is not None
    search.on_trial_result("t0", {"segmentation/iou": 0.1, "epoch": 1.0, "training_iteration": 1})
    # Resumed from the ledger's epoch-2 checkpoint while Tune had registered epoch 1's: iteration 2 is epoch 3.
    search.on_trial_result("t0", {"segmentation/iou": 0.3, "epoch": 3.0, "training_iteration": 2})
    search.on_trial_result("t0", {"segmentation/iou": 0.9, "epoch": 3.0, "training_iteration": 3, REPLAYED_KEY: 1.0})
    (trial,) = search.history()
    assert trial.intermediate_values == {1: 0.1, 3: 0.3}
