"""The EVAL-X encoding probe: masks whose position codes the class vs masks that follow the objects."""

from __future__ import annotations

import pytest
import torch

from attrsearch.metrics.probe import encoding_probe, probe_accuracy


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _case(n: int = 64, side: int = 16, seed: int = 0):
    """Single-label, 2 classes; each image has one 4 x 4 object at a random place (its ground truth),
    the same shape for both classes. ``coded``: a mask that sits left for class 0 and right for class 1."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, 2)
    cls = torch.randint(0, 2, (n,), generator=g)
    labels[torch.arange(n), cls] = 1
    gt = torch.zeros(n, side, side, dtype=torch.uint8)
    coded = torch.zeros(n, side, side)
    for i in range(n):
        y, x = torch.randint(0, side - 4, (2,), generator=g).tolist()
        gt[i, y : y + 4, x : x + 4] = 1
        coded[i, y : y + 4, 2 + int(cls[i]) * 8 : 6 + int(cls[i]) * 8] = 0.9
    return coded, gt, labels


def test_masks_that_encode_the_label_have_an_excess():
    coded, gt, labels = _case()
    result = encoding_probe(coded, gt, labels, steps=80)
    assert result.accuracy > 0.9
    assert result.control_accuracy < 0.75  # the object's outline says nothing about the class here
    assert result.excess > 0.3
    assert set(result.metrics()) == {"probe/accuracy", "probe/control_accuracy", "probe/encoding_excess"}


def test_masks_that_follow_the_ground_truth_have_none():
    _, gt, labels = _case(seed=1)
    result = encoding_probe(gt.float() * 0.8, gt, labels, steps=80)  # binarised, the same input as the control
    assert result.excess == 0.0


def test_void_counts_as_background_and_bad_shapes_fail():
    coded, gt, labels = _case(n=8)
    with pytest.raises(ValueError, match="differ in shape"):
        encoding_probe(coded[:, :8], gt, labels)
    with pytest.raises(ValueError, match="folds must be in 2..8"):
        probe_accuracy(coded, labels, folds=9)
    void = gt.clone()
    void[:, -1, -1] = 255  # a pixel no object reaches
    assert (
        encoding_probe(coded, void, labels, steps=5).control_accuracy
        == encoding_probe(coded, gt, labels, steps=5).control_accuracy
    )
