"""Test-wide settings: an isolated cache, offline W&B, few threads."""

from __future__ import annotations

import os
import tempfile

# One cache for the whole session, so the built-in data and Explananda are made once.
os.environ.setdefault("ATTRSEARCH_CACHE", tempfile.mkdtemp(prefix="attrsearch-test-cache-"))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import pytest  # noqa: E402

TINY_EXPERIMENT = {
    "name": "tiny",
    "seed": 3,
    "data": {
        "dataset": "shapes",
        "image_size": 32,
        "shapes": {
            "num_classes": 4,
            "num_train": 48,
            "num_val": 16,
            "num_test": 16,
            "context": {"biased_classes": [0]},
        },
    },
    "explanandum": {"arch": "small_cnn", "options": {"width": 8}, "recipe": {"epochs": 1, "batch_size": 16}},
    "explainer": {"arch": "explanandum_encoder", "options": {"decoder_width": 8, "image_width": 4, "fuse_width": 8}},
    "objective": {"min_area": 0.02, "max_area": 0.2},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.001, "progress": False},
    "evaluation": {"fast_subsample": 8, "transfer": {"panel": [{"arch": "small_cnn", "seed": 1}]}},
}


@pytest.fixture
def tiny_experiment():
    """A deep copy of a seconds-sized experiment mapping (32 px, 48 train images, 2 epochs)."""
    import copy

    return copy.deepcopy(TINY_EXPERIMENT)


@pytest.fixture(scope="session")
def make_tiny_experiment():
    """A session-scoped factory of fresh copies of the tiny experiment mapping (for module fixtures)."""
    import copy

    return lambda: copy.deepcopy(TINY_EXPERIMENT)


@pytest.fixture(scope="session")
def tiny_trained_run(tmp_path_factory, make_tiny_experiment):
    """The tiny experiment trained for one epoch (fast final suite), once per session:
    (config, run folder, best checkpoint). Tests must not write into the run folder."""
    from pathlib import Path

    from attrsearch.config import ExperimentConfig, validate
    from attrsearch.evaluate.experiment import run_experiment as run_training

    data = make_tiny_experiment()
    data["train"]["epochs"] = 1
    data["evaluation"]["final_suite"] = "fast"
    cfg = validate(ExperimentConfig, data)
    out = tmp_path_factory.mktemp("tiny_run")
    summary = run_training(cfg, out)
    return cfg, out, Path(summary["checkpoint_path"])
