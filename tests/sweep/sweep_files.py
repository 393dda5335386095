"""Tiny sweep files for the sweep tests (imported by the test modules)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

# A few-seconds trial: 32 px, 64 training images, a 1-epoch Explanandum, 2 Explainer epochs.
TINY_BASE: dict[str, Any] = {
    "seed": 0,
    "data": {"dataset": "shapes", "image_size": 32, "shapes": {"num_train": 64, "num_val": 32, "num_test": 32}},
    "explanandum": {"arch": "small_cnn", "recipe": {"epochs": 1, "batch_size": 32}},
    "explainer": {"arch": "explanandum_encoder"},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.002},
    "evaluation": {
        "fast_subsample": 8,
        "class_specific_max_images": 8,
        "faithfulness": {"max_images": 4},
        "transfer": {"panel": [{"arch": "small_cnn", "seed": 1}]},
    },
}


def sweep_dict(name: str = "tiny", **fields: Any) -> dict[str, Any]:
    """A valid tiny sweep; ``fields`` replace top-level entries."""
    data: dict[str, Any] = {
        "name": name,
        "base": copy.deepcopy(TINY_BASE),
        "search": {"loss.lambda_tv": {"loguniform": [0.01, 1.0]}},
        "objective": "segmentation/iou",
        "num_samples": 2,
        "resources_per_trial": {"cpu": 1},
        "wandb": {"mode": "disabled"},
    }
    data.update(fields)
    return data


def write_sweep(folder: Path, data: dict[str, Any], filename: str | None = None) -> Path:
    path = folder / (filename or f"{data.get('name', 'sweep')}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
