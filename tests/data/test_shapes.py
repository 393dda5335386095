from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from attrsearch.config import DataConfig, ShapesConfig, validate
from attrsearch.data import build_dataset, collate_samples, denormalize
from attrsearch.data import shapes as shapes_mod
from attrsearch.data.shapes import COLOURS, class_names, class_table, generate_split, hard_negatives
from attrsearch.errors import UserError


def test_class_table_needs_shape_and_colour():
    for C in (4, 8, 16):
        table = class_table(C)
        assert len(set(table)) == C
        shapes = [s for s, _ in table]
        colours = [c for _, c in table]
        assert all(shapes.count(s) == 2 for s in set(shapes))  # no shape names a class
        assert all(colours.count(c) == 2 for c in set(colours))  # no colour names a class
    assert class_names(8)[:2] == ("red_disc", "green_square")
    assert len(set(class_names(16))) == 16


def test_generation_is_deterministic_and_seeded():
    cfg = ShapesConfig(num_train=6, num_val=6, num_test=6)
    a = generate_split(cfg, 40, "train")
    b = generate_split(cfg, 40, "train")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    other = generate_split(cfg.model_copy(update={"seed": 1}), 40, "train")
    assert not np.array_equal(a["images"], other["images"])
    val = generate_split(cfg, 40, "val")
    assert not np.array_equal(a["images"], val["images"])  # independent split streams
    # The test split does not depend on the size of the other splits.
    t1 = generate_split(cfg, 40, "test")
    t2 = generate_split(cfg.model_copy(update={"num_train": 50}), 40, "test")
    np.testing.assert_array_equal(t1["images"], t2["images"])


@pytest.fixture(scope="module")
def train_set(tmp_path_factory, tiny_shapes):
    cfg = tiny_shapes(num_train=120, max_objects=3, p_hard_negative=0.5)
    return build_dataset(cfg, "train", tmp_path_factory.mktemp("cache"))


def test_sample_interface(train_set):
    ds = train_set
    assert ds.info.has_context and ds.info.num_classes == 8 and ds.info.image_size == 48
    s = ds[3]
    assert s["image"].shape == (3, 48, 48) and s["image"].dtype == torch.float32
    assert s["labels"].shape == (8,) and s["labels"].dtype == torch.float32
    assert s["masks"].shape == (8, 48, 48) and s["masks"].dtype == torch.uint8
    assert s["has_masks"] is True
    assert s["boxes"].dtype == torch.float32 and s["boxes"].shape[1] == 4
    assert s["box_labels"].dtype == torch.int64 and len(s["box_labels"]) == len(s["boxes"])
    assert s["context"].shape == (48, 48) and s["context"].dtype == torch.uint8
    assert s["index"] == 3
    # Normalisation round trip gives the stored uint8 image back.
    rgb = denormalize(s["image"][None], ds.info.mean, ds.info.std)[0].permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(rgb, ds.arrays["images"][3], atol=1e-3)
    batch = collate_samples([ds[i] for i in range(4)])
    assert batch["masks"].shape == (4, 8, 48, 48)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_masks_labels_boxes_are_consistent(train_set):
    ds = train_set
    saw_overlap = False
    for i in range(len(ds)):
        s = ds[i]
        masks, labels = s["masks"].numpy(), s["labels"].numpy()
        assert set(np.unique(masks)) <= {0, 1}
        np.testing.assert_array_equal(masks.reshape(8, -1).any(1), labels > 0)  # labelled iff mask
        assert masks.sum(0).max() <= 1  # visible pixels belong to one object
        assert labels.sum() >= 1
        assert not (s["context"].numpy().astype(bool) & masks.any(0)).any()  # cues never over objects
        inst, cls = ds.instance_masks(i)
        np.testing.assert_array_equal(cls, s["box_labels"].numpy())
        for m, k, box in zip(inst, cls, s["boxes"].numpy()):
            ys, xs = np.nonzero(m)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            assert (masks[k][m > 0] == 1).all()
        for k in range(8):  # class mask = union of its instances
            np.testing.assert_array_equal(masks[k], inst[cls == k].any(0) if (cls == k).any() else 0)
        b = s["boxes"].numpy()
        for p in range(len(b)):
            for q in range(p + 1, len(b)):
                if min(b[p, 2], b[q, 2]) > max(b[p, 0], b[q, 0]) and min(b[p, 3], b[q, 3]) > max(b[p, 1], b[q, 1]):
                    saw_overlap = True
    assert saw_overlap  # objects do overlap in this many images


def test_masks_are_the_visible_pixels(train_set):
    """Occlusion: each class pixel shows its class's colour, not the colour of an occluder."""
    ds = train_set
    palette = np.array(list(COLOURS.values()), np.float32)[:4]
    chroma = palette / palette.sum(1, keepdims=True)
    table = class_table(8)
    hits = total = 0
    for i in range(len(ds)):
        img = ds.arrays["images"][i].astype(np.float32)
        masks = ds[i]["masks"].numpy()
        for k in np.flatnonzero(masks.reshape(8, -1).any(1)):
            px = img[masks[k] > 0]
            c = px / np.maximum(px.sum(1, keepdims=True), 1.0)
            nearest = np.abs(c[:, None, :] - chroma[None]).sum(-1).argmin(1)
            hits += int((nearest == table[k][1]).sum())
            total += len(px)
    assert hits / total > 0.97


def test_context_rates(tmp_path):
    cfg = DataConfig(
        image_size=48,
        shapes={
            "num_train": 400, "num_val": 1, "num_test": 400, "max_objects": 2, "p_hard_negative": 0.0,
            "context": {"biased_classes": [0], "p_train": 0.9, "p_test": 0.2, "p_cue_alone": 0.1},
        },
    )  # fmt: skip
    rates = {}
    for split in ("train", "test"):
        a = build_dataset(cfg, split, tmp_path).arrays
        with_class = a["labels"][:, 0] > 0
        has_cue = a["context"].reshape(len(with_class), -1).any(1)
        rates[split] = (has_cue[with_class].mean(), has_cue[~with_class].mean())
        assert with_class.sum() > 50
    assert 0.75 <= rates["train"][0] <= 1.0
    assert 0.08 <= rates["test"][0] <= 0.35
    for split in rates:  # cue alone
        assert 0.03 <= rates[split][1] <= 0.2


def test_cache_is_reused_and_capped(tmp_path, monkeypatch, tiny_shapes):
    cfg = tiny_shapes(num_train=10)
    first = build_dataset(cfg, "train", tmp_path)
    calls = []
    monkeypatch.setattr(shapes_mod, "generate_split", lambda *a, **k: calls.append(a))
    second = build_dataset(cfg, "train", tmp_path)
    assert calls == []
    assert isinstance(second.arrays["images"], np.memmap)
    np.testing.assert_array_equal(first.arrays["images"], second.arrays["images"])
    capped = build_dataset(cfg.model_copy(update={"max_train": 4}), "train", tmp_path)
    assert len(capped) == 4 and calls == []  # max_train caps the split, same cache entry
    entries = [e for e in (tmp_path / "shapes").iterdir() if e.is_dir()]
    assert len(entries) == 1 and (entries[0] / "train" / "meta.json").is_file()


def test_pickle_reopens_the_memory_map(train_set):
    clone = pickle.loads(pickle.dumps(train_set))
    assert len(pickle.dumps(train_set)) < 10_000  # the arrays are not copied
    assert isinstance(clone.arrays["images"], np.memmap)
    a, b = train_set[5], clone[5]
    for key in ("image", "labels", "masks", "boxes", "context"):
        assert torch.equal(a[key], b[key])


@pytest.mark.parametrize("num_classes", [2, 3, 4, 16])
def test_class_counts_and_hard_negatives(num_classes):
    negatives = hard_negatives(num_classes)
    assert negatives and not set(negatives) & set(class_table(num_classes))
    cfg = ShapesConfig(
        num_classes=num_classes,
        num_train=8,
        num_val=1,
        num_test=1,
        p_hard_negative=1.0,
        context={"biased_classes": [0]},
    )
    a = generate_split(cfg, 32, "train")
    assert a["labels"].shape == (8, num_classes) and a["labels"].sum(1).min() >= 1


@pytest.mark.parametrize("size", [32, 100])
def test_other_image_sizes(size):
    a = generate_split(ShapesConfig(num_train=5, num_val=1, num_test=1), size, "train")
    assert a["images"].shape == (5, size, size, 3)
    assert a["labels"].sum(1).min() >= 1


def test_bad_shapes_config():
    with pytest.raises(UserError, match="biased_classes"):
        validate(DataConfig, {"shapes": {"num_classes": 4, "context": {"biased_classes": [5]}}}, source="data")
    with pytest.raises(UserError, match="biased_classes"):
        validate(DataConfig, {"shapes": {"context": {"biased_classes": [0, 1, 2, 3, 4, 5, 6]}}}, source="data")
