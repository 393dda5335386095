"""Trial pieces that need no Ray: the trial's config, metric ordering, restoring a checkpoint."""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml

from attrsearch.config import ExperimentConfig, validate
from attrsearch.errors import UserError
from attrsearch.sweep.trainable import TrialSpec, restore_checkpoint, scalar_metrics, trial_config
from tests.support.sweep_files import TINY_BASE


def spec(**kw) -> TrialSpec:
    return TrialSpec(
        base=copy.deepcopy(TINY_BASE), seeds=None, cpus=kw.pop("cpus", 2.0), gpus=0.0, gallery_images=0, **kw
    )


def test_trial_config_applies_values_and_runtime_settings():
    cfg = trial_config(spec(), {"loss.lambda_tv": 0.3, "explanandum": {"arch": "small_resnet"}}, source="trial t1")
    assert cfg.objective.lambda_tv == 0.3 and cfg.explanandum.arch == "small_resnet"
    assert cfg.train.num_threads == 2 and cfg.train.progress is False
    assert trial_config(spec(cpus=0.5), {}, source="t").train.num_threads == 1
    with pytest.raises(UserError, match="trial t2: objective"):  # a bad combination fails the trial with its reason
        trial_config(spec(), {"loss.min_area": 0.4, "loss.max_area": 0.2}, source="trial t2")


def test_scalar_metrics_puts_objectives_first_and_drops_text():
    record = {
        "train/loss": 1.0,
        "faithfulness/deletion_substrate": "mean",
        "epoch": 2,
        "segmentation/iou": 0.5,
        "flag": True,
    }
    out = scalar_metrics(record, ("segmentation/iou",))
    assert list(out) == ["segmentation/iou", "epoch", "train/loss", "flag"]
    assert out == {"segmentation/iou": 0.5, "epoch": 2.0, "train/loss": 1.0, "flag": 1.0}


class FakeCheckpoint:
    def __init__(self, folder):
        self.folder = folder

    def to_directory(self, path):
        shutil.copytree(self.folder, path)


def test_restore_checkpoint_replaces_local_state_and_accepts_a_new_config(tmp_path):
    assert restore_checkpoint(None, tmp_path / "run", ExperimentConfig()) is False
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "last.pt").write_text("from tune")
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_text("stale")
    old = validate(ExperimentConfig, copy.deepcopy(TINY_BASE))
    (out / "config.yaml").write_text(yaml.safe_dump(old.model_dump(mode="json")))
    assert restore_checkpoint(FakeCheckpoint(ckpt), out, old) is True
    assert (out / "checkpoints" / "last.pt").read_text() == "from tune" and (out / "config.yaml").is_file()
    new = old.model_copy(update={"objective": old.objective.model_copy(update={"lambda_tv": 0.7})})  # a PBT exploit
    assert restore_checkpoint(FakeCheckpoint(ckpt), out, new) is True
    assert not (out / "config.yaml").exists()  # run_training writes the trial's own config again
