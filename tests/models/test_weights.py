"""Offline weights loading: the torch hub cache path, weights files, matching by name and shape."""

from __future__ import annotations

import logging
import time

import pytest
import torch
from torch import nn
from torchvision.models import ResNet50_Weights

from attrsearch.errors import UserError
from attrsearch.models.weights import (
    imagenet_checkpoint_path,
    load_imagenet_state_dict,
    load_into_best,
    load_matching,
    match_state_dict,
    read_state_dict,
    resolve_weights,
)


def _net(num_classes: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, num_classes))


def test_imagenet_path_is_in_the_hub_cache(torch_home):
    assert imagenet_checkpoint_path(ResNet50_Weights.IMAGENET1K_V1) == torch_home / "resnet50-0676ba61.pth"


def test_missing_imagenet_weights_fail_at_once_naming_the_file(torch_home):
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        load_imagenet_state_dict(ResNet50_Weights.IMAGENET1K_V1, "explanandum.weights", "resnet50")
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert message.startswith("explanandum.weights: ImageNet weights for resnet50 not found")
    assert str(torch_home / "resnet50-0676ba61.pth") in message and "\n" not in message


def test_imagenet_weights_are_read_from_the_cache(torch_home):
    torch_home.mkdir(parents=True)
    torch.save({"w": torch.ones(2)}, torch_home / "resnet50-0676ba61.pth")
    sd = load_imagenet_state_dict(ResNet50_Weights.IMAGENET1K_V1, "f", "resnet50")
    assert torch.equal(sd["w"], torch.ones(2))


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix"])
def test_read_state_dict_unwraps_checkpoints(tmp_path, wrap):
    sd = _net().state_dict()
    obj = {
        "plain": sd,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd, "config": {"a": 1}},
        "module_prefix": {f"module.{k}": v for k, v in sd.items()},
    }[wrap]
    torch.save(obj, tmp_path / "w.pt")
    got = read_state_dict(tmp_path / "w.pt", "f")
    assert list(got) == list(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_read_state_dict_bad_files(tmp_path):
    with pytest.raises(UserError, match=r"^f: weights file .*nope.pt not found$"):
        read_state_dict(tmp_path / "nope.pt", "f")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"^f: cannot read weights file .*junk.pt"):
        read_state_dict(tmp_path / "junk.pt", "f")
    torch.save({"epoch": 3}, tmp_path / "empty.pt")
    with pytest.raises(UserError, match="holds no tensors"):
        read_state_dict(tmp_path / "empty.pt", "f")
    torch.save([torch.ones(1)], tmp_path / "list.pt")
    with pytest.raises(UserError, match="holds a list, not a state dict"):
        read_state_dict(tmp_path / "list.pt", "f")


def test_load_matching_skips_a_head_of_another_shape_and_reports(caplog):
    torch.manual_seed(0)
    source, target = _net(5), _net(3)
    head_before = target[3].weight.clone()
    sd = dict(source.state_dict(), extra=torch.zeros(1))
    with caplog.at_level(logging.WARNING, logger="attrsearch.models.weights"):
        report = load_matching(target, sd, field_name="explanandum.weights", target="toy", source="w.pt")
    assert report.mismatched == ["3.weight", "3.bias"] and report.unexpected == ["extra"] and report.missing == []
    assert torch.equal(target[0].weight, source[0].weight) and torch.equal(
        target[1].running_mean, source[1].running_mean
    )
    assert torch.equal(target[3].weight, head_before)
    assert "explanandum.weights: loaded" in caplog.text and "3.weight" in caplog.text and "extra" in caplog.text


def test_excluded_prefixes_are_not_loaded_even_if_shapes_match():
    source, target = _net(3), _net(3)
    report = match_state_dict(target, source.state_dict(), exclude=("3.",))
    assert report.mismatched == ["3.weight", "3.bias"]


def test_a_file_that_matches_nothing_is_a_user_error():
    with pytest.raises(UserError, match="explainer.weights: w.pt matches no parameter of toy"):
        load_matching(
            _net(), {"foo.weight": torch.ones(1)}, field_name="explainer.weights", target="toy", source="w.pt"
        )


def test_load_into_best_picks_the_matching_submodule(tmp_path):
    outer = nn.Sequential(nn.Conv2d(3, 3, 1), _net())
    backbone = _net()
    torch.save(backbone.state_dict(), tmp_path / "w.pt")
    weights = resolve_weights(tmp_path / "w.pt", "f", "toy")
    assert weights is not None and not weights.imagenet and weights.source == str(tmp_path / "w.pt")
    report = load_into_best({"model": outer, "backbone": outer[1]}, weights, field_name="f", arch="toy")
    assert len(report.loaded) == len(backbone.state_dict())
    assert torch.equal(outer[1][0].weight, backbone[0].weight)


def test_load_into_best_applies_the_transform_and_exclusions(tmp_path):
    source, target = _net(3), _net(3)
    torch.save({f"features.{k}": v for k, v in source.state_dict().items()}, tmp_path / "w.pt")
    weights = resolve_weights(str(tmp_path / "w.pt"), "f", "toy")

    def strip(module, sd):
        return {k.removeprefix("features."): v for k, v in sd.items()}

    report = load_into_best({"model": target}, weights, field_name="f", arch="toy", exclude=("3.",), transform=strip)
    assert report.mismatched == ["3.weight", "3.bias"]
    assert torch.equal(target[0].weight, source[0].weight) and not torch.equal(target[3].weight, source[3].weight)


def test_resolve_weights(torch_home):
    assert resolve_weights(None, "f", "toy") is None
    with pytest.raises(UserError, match="^f: toy has no ImageNet weights"):
        resolve_weights("imagenet", "f", "toy")
    with pytest.raises(UserError, match="^f: ImageNet weights for toy not found"):
        resolve_weights("imagenet", "f", "toy", ResNet50_Weights.IMAGENET1K_V1)
