"""``attrsearch evaluate --method``: a baseline method scored end to end, bad input refused before work,
and an experiment with ``method:`` run as a trial that trains nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from attrsearch.cli import main
from attrsearch.config import ExperimentConfig, validate
from attrsearch.errors import UserError
from attrsearch.resolve import resolve_experiment
from attrsearch.train.explanandum import explanandum_key


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory, make_tiny_experiment):
    path = tmp_path_factory.mktemp("tiny") / "tiny.yaml"
    path.write_text(yaml.safe_dump(make_tiny_experiment()))
    return path


def _fail(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_evaluate_method_end_to_end(tiny_file, tmp_path, capsys):
    out = tmp_path / "gc"
    assert main(["evaluate", "--method", "gradcam", "--config", str(tiny_file), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["attribution/method"] == "gradcam"
    # the default layer, resolved for the model (small_cnn: the last conv block of the last stage)
    assert json.loads(metrics["attribution/options"]) == {"layer": "stages.3.0", "strategy": "auto"}
    assert "layer=stages.3.0" in metrics["attribution/description"]
    assert metrics["attribution/seconds_per_image"] > 0 and metrics["attribution/images"] == 16
    for key in ("segmentation/iou", "sanity/half/iou", "class_specific/diagonal", "pointing_game/accuracy"):
        assert key in metrics
    assert (out / "tables" / "class_specific.csv").is_file()


def test_evaluate_method_caps_images_and_describes_lrp(tiny_file, tmp_path):
    out = tmp_path / "lrp"
    argv = [
        "evaluate",
        "--method",
        "lrp",
        "--option",
        "composite=alpha2_beta1",
        "--config",
        str(tiny_file),
        "--max-images",
        "4",
        "--suite",
        "fast",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["attribution/images"] == 4
    assert "EpsilonAlpha2Beta1" in metrics["attribution/description"]
    assert "SequentialMergeBatchNorm" in metrics["attribution/description"]


@pytest.fixture
def no_work(monkeypatch):
    """Any dataset build or Explanandum load fails the test: errors must come before work."""

    def boom(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr("attrsearch.data.build_dataset", boom)
    monkeypatch.setattr("attrsearch.train.explanandum.get_explanandum", boom)
    monkeypatch.setattr("attrsearch.evaluate.pipeline.build_dataset", boom)
    monkeypatch.setattr("attrsearch.evaluate.pipeline.get_explanandum", boom)


def test_unknown_method_and_option(tiny_file, tmp_path, capsys, no_work):
    base = ["evaluate", "--config", str(tiny_file), "--out", str(tmp_path / "x")]
    assert "unknown attribution method 'nope'" in _fail(capsys, [*base, "--method", "nope"])
    assert "unknown option for method rise" in _fail(capsys, [*base, "--method", "rise", "--option", "cellz=3"])
    assert "greater than or equal to 1" in _fail(capsys, [*base, "--method", "rise", "--option", "cells=0"])


def test_gradcam_layer_the_model_lacks_lists_valid_ones(tiny_file, tmp_path, capsys, no_work):
    argv = [
        "evaluate",
        "--method",
        "gradcam",
        "--option",
        "layer=features.99",
        "--config",
        str(tiny_file),
        "--out",
        str(tmp_path / "x"),
    ]
    err = _fail(capsys, argv)
    assert "no layer 'features.99'" in err and "valid layers:" in err and "stages.3" in err


def test_lrp_on_a_layer_without_rule(tmp_path, make_tiny_experiment, capsys, no_work):
    data = make_tiny_experiment()
    data["explanandum"] = {"arch": "vit_b_16", "recipe": {"epochs": 0}}
    path = tmp_path / "vit.yaml"
    path.write_text(yaml.safe_dump(data))
    err = _fail(capsys, ["evaluate", "--method", "lrp", "--config", str(path), "--out", str(tmp_path / "x")])
    assert "no LRP rule for" in err


def test_method_needs_one_source(tiny_file, tmp_path, capsys):
    assert "exactly one of --config" in _fail(capsys, ["evaluate", "--method", "center", "--out", str(tmp_path)])


def test_method_config_is_resolved(make_tiny_experiment):
    data = make_tiny_experiment()
    data["method"] = {"name": "rise", "options": {"cells": 0}}
    with pytest.raises(UserError, match=r"^x: method\.options\.cells"):
        resolve_experiment(validate(ExperimentConfig, data, source="x"), "x")
    data["method"] = {"name": "nope"}
    with pytest.raises(UserError, match=r"method\.name: unknown attribution method"):
        resolve_experiment(validate(ExperimentConfig, data, source="x"), "x")


@pytest.mark.slow
def test_run_training_with_a_method_trains_nothing_and_reports_once(make_tiny_experiment, tmp_path):
    from attrsearch.evaluate.experiment import run_experiment as run_training

    data = make_tiny_experiment()
    data["method"] = {"name": "center", "max_images": 6}
    data["evaluation"]["split"] = "val"
    cfg = validate(ExperimentConfig, data, source="tiny")
    reports = []
    summary = run_training(cfg, tmp_path / "run", report=lambda rec, ckpt, done: reports.append((rec, ckpt, done)))
    assert len(reports) == 1
    record, ckpt, done = reports[0]
    assert done and record["epoch"] == 1.0 and record["attribution/method"] == "center"
    assert "segmentation/iou" in record and record["attribution/images"] == 6
    assert (ckpt / "metrics.json").is_file() and not list(ckpt.glob("*.pt"))
    # resuming a finished method run reports nothing and returns the saved metrics
    again = run_training(cfg, tmp_path / "run", report=lambda *a: reports.append(a))
    assert len(reports) == 1 and again["metrics"]["segmentation/iou"] == summary["metrics"]["segmentation/iou"]


def test_shuffle_labels_is_part_of_the_cache_key_only_when_set(make_tiny_experiment):
    data = make_tiny_experiment()
    plain = validate(ExperimentConfig, data, source="t")
    assert "shuffle_labels" not in explanandum_key(plain)["recipe"]  # keys cached before the flag stay valid
    data["explanandum"]["recipe"]["shuffle_labels"] = True
    shuffled = validate(ExperimentConfig, data, source="t")
    assert explanandum_key(shuffled)["recipe"]["shuffle_labels"] is True


def test_shuffled_labels_permute_the_label_vectors(make_tiny_experiment):
    import torch

    from attrsearch.data import build_dataset
    from attrsearch.train.explanandum import shuffled_labels

    cfg = validate(ExperimentConfig, make_tiny_experiment(), source="t")
    ds = build_dataset(cfg.data, "train", cfg.cache_dir)
    labels = torch.stack([ds[i]["labels"] for i in range(len(ds))])
    shuffled = shuffled_labels(ds, 0)
    assert torch.equal(shuffled.sum(0), labels.sum(0)) and not torch.equal(shuffled, labels)
    assert torch.equal(shuffled, shuffled_labels(ds, 0))


def test_rise_cells_sweep_dry_run(capsys):
    from pathlib import Path

    sweep = Path(__file__).resolve().parents[2] / "sweeps" / "rise_cells.yaml"
    assert main(["sweep", str(sweep), "--dry-run"]) == 0
    assert "method.options.cells" in capsys.readouterr().out
