"""Strict reading of config and sweep files: a duplicate YAML key and a non-finite number (``.inf``,
``.nan``) are one line naming the key or field (exit 2), before anything is cached or written."""

from __future__ import annotations

import math

import pytest
import yaml

from attrsearch.cli import main
from attrsearch.config import ExperimentConfig, validate
from attrsearch.config.base import non_finite, parse_yaml, read_yaml
from attrsearch.errors import UserError


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _train(tmp_path, capsys, text: str, *extra: str) -> str:
    """``attrsearch train`` of an experiment file ``text``: exit 2, nothing in --out or the cache; the line."""
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert main(["train", str(path), "--out", str(out), *extra]) == 2
    assert not out.exists()
    assert not cache.exists()
    return _one_line(capsys)


def _experiment_text(tmp_path, tiny_experiment, **train) -> str:
    tiny_experiment["cache_dir"] = str(tmp_path / "cache")
    tiny_experiment["train"].update(train)
    return yaml.safe_dump(tiny_experiment, sort_keys=False)


def test_duplicate_key_names_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\ntrain:\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    with pytest.raises(UserError) as err:
        read_yaml(path)
    assert str(err.value) == f"{path}: invalid YAML at line 5: duplicate key 'lr' (first given at line 3)"


def test_duplicate_keys_at_every_depth_and_in_flow_mappings():
    with pytest.raises(UserError, match=r"line 2: duplicate key 'a'"):
        parse_yaml("a: 1\na: 2\n")
    with pytest.raises(UserError, match=r"line 1: duplicate key 'x'"):
        parse_yaml("- {x: 1, x: 2}\n")
    with pytest.raises(UserError, match=r"duplicate key 'a'"):
        parse_yaml('a: 1\n"a": 2\n')  # the same key, quoted or not


def test_distinct_keys_and_merge_overrides_are_accepted():
    assert parse_yaml("1: a\n'1': b\n") == {1: "a", "1": "b"}  # an int and a string are two keys
    merged = parse_yaml("base: &b {p: 1, q: 2}\nother:\n  <<: *b\n  p: 3\n")
    assert merged["other"] == {"p": 3, "q": 2}


def test_duplicate_key_in_train_file_is_one_line(tmp_path, capsys, tiny_experiment):
    text = _experiment_text(tmp_path, tiny_experiment) + "seed: 4\n"  # seed is already given above
    line = _train(tmp_path, capsys, text)
    assert "duplicate key 'seed'" in line and "exp.yaml" in line and "line " in line


def test_duplicate_key_in_sweep_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nbase: {}\nobjective: segmentation/iou\nnum_samples: 2\nnum_samples: 3\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    expected = f"{path}: invalid YAML at line 5: duplicate key 'num_samples' (first given at line 4)"
    assert _one_line(capsys) == f"attrsearch: error: {expected}"


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_float_field_in_a_file(tmp_path, capsys, tiny_experiment, value):
    text = _experiment_text(tmp_path, tiny_experiment).replace("lr: 0.001", f"lr: {value}")
    assert f"lr: {value}" in text
    line = _train(tmp_path, capsys, text)
    assert "train.lr" in line and "finite" in line


@pytest.mark.parametrize("value", [".inf", ".nan", "inf"])
def test_non_finite_set_override(tmp_path, capsys, tiny_experiment, value):
    line = _train(tmp_path, capsys, _experiment_text(tmp_path, tiny_experiment), "--set", f"train.lr={value}")
    assert "train.lr" in line and "finite" in line


def test_non_finite_inside_free_form_options(tmp_path, capsys, tiny_experiment):
    tiny_experiment["explainer"]["options"]["decoder_width"] = float("inf")
    text = _experiment_text(tmp_path, tiny_experiment)
    line = _train(tmp_path, capsys, text)
    assert "explainer.options" in line and "inf at decoder_width" in line


def test_non_finite_in_a_loss_weight_is_refused(tiny_experiment):
    tiny_experiment["objective"]["min_area"] = float("nan")
    with pytest.raises(UserError, match=r"min_area: Input should be a finite number"):
        validate(ExperimentConfig, tiny_experiment)


def test_non_finite_walks_nested_values():
    assert non_finite({"a": [1.0, {"b": math.inf}]}) == ("a.1.b", math.inf)
    assert non_finite([1, 2.5, "x", None]) is None
    assert non_finite(math.nan)[0] == ""


@pytest.mark.parametrize(
    "dist, field",
    [
        ({"uniform": [0, ".inf"]}, "uniform"),
        ({"loguniform": [".nan", 1]}, "loguniform"),
        ({"choice": [0.1, ".inf"]}, "choice"),
        ({"grid": [".nan"]}, "grid"),
    ],
)
def test_non_finite_sweep_distribution(tmp_path, capsys, dist, field):
    ((kind, values),) = dist.items()
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nbase: {}\nobjective: segmentation/iou\n"
        f"search:\n  loss.min_area: {{{kind}: [{', '.join(str(v) for v in values)}]}}\n"
    )
    assert main(["sweep", str(path), "--dry-run"]) == 2
    line = _one_line(capsys)
    assert f"search.loss.min_area.{field}" in line and "finite" in line, line
