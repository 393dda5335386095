"""Experiment schema: presets, bounds, one-line errors that name the field and file."""

import pytest
import yaml

from attrsearch.config import ExperimentConfig, load_experiment, validate
from attrsearch.config.presets import LOSS_PRESETS, PRESET_LR
from attrsearch.errors import UserError
from attrsearch.resolve import resolve_experiment


def _write(tmp_path, data, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("preset", sorted(LOSS_PRESETS))
def test_presets_fill_loss_weights_and_lr(preset):
    cfg = validate(ExperimentConfig, {"objective": {"preset": preset}})
    for key, value in LOSS_PRESETS[preset].items():
        assert getattr(cfg.objective, key) == value
    assert cfg.train.lr == PRESET_LR[preset]


def test_explicit_fields_beat_the_preset():
    cfg = validate(ExperimentConfig, {"objective": {"preset": "resnet50_voc", "lambda_tv": 0.5}, "train": {"lr": 3e-4}})
    assert cfg.objective.lambda_tv == 0.5
    assert cfg.objective.lambda_entropy == 3.0
    assert cfg.train.lr == 3e-4


def test_published_preset_values():
    assert LOSS_PRESETS["vgg16_voc"]["lambda_area"] == 0.1
    assert LOSS_PRESETS["vgg16_voc"]["lambda_nontarget_area"] == 0.3
    assert LOSS_PRESETS["resnet50_coco"]["lambda_tv"] == 0.05
    assert PRESET_LR["resnet50_voc"] == 1e-4


@pytest.mark.parametrize(
    "data, field",
    [
        ({"objective": {"min_area": 0.3, "max_area": 0.1}}, "objective"),
        ({"objective": {"min_area": 0.2, "max_area": 0.2}}, "objective"),
        ({"objective": {"lambda_entropy": -1.0}}, "objective.lambda_entropy"),
        ({"objective": {"lambda_tv": -0.1}}, "objective.lambda_tv"),
        ({"objective": {"preset": "vgg19_voc"}}, "objective.preset"),
        ({"explanandum": {"arch": "resnet9000"}}, "explanandum.arch"),
        ({"explainer": {"arch": "nope"}}, "explainer.arch"),
        ({"data": {"dataset": "imagenet"}}, "data.dataset"),
        ({"data": {"image_size": 16}}, "data.image_size"),
        ({"data": {"dataset": "voc2007"}}, "data"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"trian": {"epochs": 3}}, "trian"),
    ],
)
def test_bad_fields_give_one_line_errors_naming_the_field(tmp_path, data, field):
    path = _write(tmp_path, data)
    with pytest.raises(UserError) as err:
        resolve_experiment(load_experiment(path), str(path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}")


def test_a_b_message_names_both_bounds(tmp_path):
    with pytest.raises(UserError, match=r"min_area \(a=0.3\) must be < max_area \(b=0.1\)"):
        load_experiment(_write(tmp_path, {"objective": {"min_area": 0.3, "max_area": 0.1}}))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="no such config file"):
        load_experiment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("objective: [unclosed\n")
    with pytest.raises(UserError, match="invalid YAML at line"):
        load_experiment(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="expected a mapping"):
        load_experiment(listy)


def test_overrides_use_dotted_paths(tmp_path):
    cfg = load_experiment(_write(tmp_path, {}), overrides={"loss.lambda_tv": 0.25, "train.epochs": 3})
    assert cfg.objective.lambda_tv == 0.25 and cfg.train.epochs == 3


def test_shipped_single_run_config_loads():
    cfg = load_experiment("sweeps/shapes_single.yaml")
    assert cfg.data.dataset == "shapes"
    assert cfg.objective.min_area < cfg.objective.max_area
