"""Counterfactual twins of the built-in data and the noise control of its context cues."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attrsearch.config import DataConfig, ShapesConfig
from attrsearch.data.shapes import generate_split
from attrsearch.data.shapes_render import Painter, confound_cue_rate
from attrsearch.data.shapes_twins import cue_cases, twin_datasets
from attrsearch.errors import UserError

SIZE = 48


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b).any(axis=-1)


def _assert_differs_exactly(twin: np.ndarray, original: np.ndarray, removed: np.ndarray) -> None:
    """Pixels outside ``removed`` are identical; inside, all but a rare coincidence differ."""
    diff = _diff(twin, original)
    assert not (diff & ~removed).any()
    assert (removed & ~diff).sum() <= 0.02 * removed.sum() + 1


@pytest.fixture(scope="module")
def one_cue():
    """One biased class (0) with its cue beside every object of it; no hard negatives."""
    cfg = ShapesConfig(num_classes=4, num_test=40, p_hard_negative=0.0, context={"biased_classes": [0], "p_test": 1.0})
    return cfg, cue_cases(cfg, SIZE, "test")


def test_original_twin_is_the_cached_image(one_cue):
    cfg, cases = one_cue
    split = generate_split(cfg, SIZE, "test")
    assert len(cases["case_index"]) >= 10 and (cases["case_class"] == 0).all()
    for name in ("images", "instances", "labels", "context", "boxes"):
        np.testing.assert_array_equal(cases["original"][name], split[name][cases["case_index"]])


def test_no_cue_twin_differs_exactly_in_the_cue(one_cue):
    _, cases = one_cue
    o, t = cases["original"], cases["no_cue"]
    for m in range(len(cases["case_index"])):
        _assert_differs_exactly(t["images"][m], o["images"][m], o["context"][m] == 1)
    assert not t["context"].any()
    np.testing.assert_array_equal(t["labels"], o["labels"])
    np.testing.assert_array_equal(t["instances"], o["instances"])


def test_no_object_twin_removes_the_class_and_keeps_its_cue(one_cue):
    _, cases = one_cue
    o, t = cases["original"], cases["no_object"]
    for m in range(len(cases["case_index"])):
        boxes = o["boxes"][m]
        ids = [j + 1 for j in range(len(boxes)) if boxes[j, 4] == 0]
        removed = np.isin(o["instances"][m], ids)
        _assert_differs_exactly(t["images"][m], o["images"][m], removed)
        assert t["labels"][m, 0] == 0
        others = np.arange(o["labels"].shape[1]) != 0
        np.testing.assert_array_equal(t["labels"][m, others], o["labels"][m, others])
        # The cue stays; pixels of it that the removed object hid come to light.
        assert (t["context"][m] >= o["context"][m]).all()


def test_cue_alone_twin_keeps_only_the_cue(one_cue):
    _, cases = one_cue
    o, t, e = cases["original"], cases["cue_alone"], cases["empty"]
    assert not t["labels"].any() and not t["instances"].any() and not e["context"].any()
    for m in range(len(cases["case_index"])):
        _assert_differs_exactly(t["images"][m], o["images"][m], o["instances"][m] > 0)
        _assert_differs_exactly(e["images"][m], t["images"][m], t["context"][m] == 1)


def test_no_cue_of_one_class_keeps_the_other_cue():
    cfg = ShapesConfig(num_classes=4, context={"biased_classes": [0, 1], "p_test": 1.0})
    painter = Painter(cfg, SIZE, "test")
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        scene = painter.scene(rng)
        full = painter.compose(scene)
        if full["cue_owners"] != [0, 1]:
            continue
        without0 = painter.compose(scene, cue_classes={1, -1, 2, 3})
        assert without0["cue_owners"] == [1]
        only1 = painter.compose(scene, cue_classes={1}, object_classes=set())
        assert only1["cue_owners"] == [1] and not only1["boxes"]
        checked += 1
    assert checked >= 3


def test_twin_datasets_cache_and_check(tmp_path):
    data = DataConfig(image_size=32, shapes={"num_test": 30, "context": {"p_test": 1.0}})
    datasets, index, classes = twin_datasets(data, "test", tmp_path, limit=20)
    assert set(datasets) == {"original", "no_cue", "no_object", "cue_alone", "empty"}
    assert len(datasets["no_cue"]) == len(index) == len(classes) > 0 and index.max() < 20
    item = datasets["original"][0]
    assert item["image"].shape == (3, 32, 32) and item["labels"][classes[0]] == 1
    again, index2, _ = twin_datasets(data, "test", tmp_path, limit=20)
    assert torch.equal(again["no_cue"][0]["image"], datasets["no_cue"][0]["image"])
    np.testing.assert_array_equal(index, index2)
    with pytest.raises(UserError, match="data.dataset"):
        twin_datasets(DataConfig(dataset="voc2007"), "test", tmp_path)
    never = DataConfig(image_size=32, shapes={"num_test": 10, "context": {"p_test": 0.0, "p_cue_alone": 0.0}})
    with pytest.raises(UserError, match="no image"):
        twin_datasets(never, "test", tmp_path)


def _cue_draws(cfg: ShapesConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, B) cue drawn, (n, B) class present, per biased class, from the scene draws alone."""
    painter = Painter(cfg, SIZE, "train")
    rng = np.random.default_rng(0)
    biased = cfg.context.biased_classes
    cue, present = np.zeros((n, len(biased)), bool), np.zeros((n, len(biased)), bool)
    for i in range(n):
        objs, free = painter._objects(rng)
        owners = {o["cls"] for o in objs if "cue" in o} | set(free)
        classes = {o["cls"] for o in objs}
        cue[i] = [k in owners for k in biased]
        present[i] = [k in classes for k in biased]
    return cue, present


@pytest.mark.parametrize("p_train,p_alone", [(1.0, 0.0), (0.7, 0.3)])
def test_noise_control_has_the_confound_rate_without_the_class(p_train, p_alone):
    n = 3000
    ctx = {"biased_classes": [0, 1, 2], "p_train": p_train, "p_cue_alone": p_alone}
    confound = ShapesConfig(num_classes=6, max_objects=3, context=ctx)
    noise = ShapesConfig(num_classes=6, max_objects=3, context=ctx | {"train_mode": "noise"})
    rate = confound_cue_rate(confound)
    se = 4 * np.sqrt(rate * (1 - rate) / n)
    cue, present = _cue_draws(confound, n)
    assert abs(cue.mean() - rate) < se  # the formula is the confound set's rate
    cue, present = _cue_draws(noise, n)
    assert abs(cue.mean() - rate) < se  # ... and the noise set's
    with_class, without = cue[present].mean(), cue[~present].mean()
    assert abs(with_class - without) < 0.05  # independent of the class
    # Val and test keep the confound layout.
    assert Painter(noise, SIZE, "test").noise_rate is None
