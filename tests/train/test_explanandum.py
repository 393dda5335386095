"""Explanandum training, caching by (dataset, architecture, seed, recipe) and freezing."""

import pytest
import torch

from attrsearch.config import ExperimentConfig, validate
from attrsearch.errors import UserError
from attrsearch.train.explanandum import (
    explanandum_cache_path,
    explanandum_meta,
    get_explanandum,
    load_explanandum_file,
)


def test_trained_once_then_loaded_frozen(tiny_experiment):
    cfg = validate(ExperimentConfig, tiny_experiment)
    model = get_explanandum(cfg, "cpu")
    path = explanandum_cache_path(cfg) / "model.pt"
    stamp = path.stat().st_mtime_ns
    again = get_explanandum(cfg, "cpu")
    assert path.stat().st_mtime_ns == stamp  # loaded, not retrained
    for m in (model, again):
        assert not m.training
        assert not any(p.requires_grad for p in m.parameters())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), again(x))
    meta = explanandum_meta(cfg)
    assert 0.0 <= meta["test_map"] <= 1.0 and 0.0 <= meta["test_f1"] <= 1.0


def test_cache_key_separates_seed_arch_and_recipe(tiny_experiment):
    cfg = validate(ExperimentConfig, tiny_experiment)
    other_recipe = tiny_experiment | {
        "explanandum": {**tiny_experiment["explanandum"], "recipe": {"epochs": 2, "batch_size": 16}}
    }
    paths = {
        explanandum_cache_path(cfg),
        explanandum_cache_path(cfg, seed=1),
        explanandum_cache_path(cfg, arch="small_resnet"),
        explanandum_cache_path(validate(ExperimentConfig, other_recipe)),
    }
    assert len(paths) == 4


def test_checkpoint_for_another_class_count_is_refused(tiny_experiment):
    cfg = validate(ExperimentConfig, tiny_experiment)
    get_explanandum(cfg, "cpu")
    with pytest.raises(UserError, match="has 4 classes, the dataset has 7"):
        load_explanandum_file(explanandum_cache_path(cfg), 7, torch.device("cpu"))


def test_unreadable_explanandum_file(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_explanandum_file(bad, 4, torch.device("cpu"))


def test_a_cached_checkpoint_cut_in_half_is_retrained_not_loaded(tiny_experiment, tmp_path, caplog):
    """Issue 23, B4: the cached ``model.pt`` cut in half fails its checksum, is reported in one line
    and retrained; the model handed out is the retrained one."""
    import logging

    cfg = validate(ExperimentConfig, tiny_experiment | {"cache_dir": str(tmp_path)})
    first = get_explanandum(cfg, "cpu")
    path = explanandum_cache_path(cfg) / "model.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="attrsearch"):
        again = get_explanandum(cfg, "cpu")
    lines = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(lines) == 1 and "model.pt" in lines[0]
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(first(x), again(x))  # retrained deterministically on CPU
