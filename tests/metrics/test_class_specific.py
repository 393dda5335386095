import math

import numpy as np
import pandas as pd
import torch

from attrsearch.metrics import class_specific as cs

THR = [0.1, 0.3, 0.5, 0.7, 0.9]


class Counting:
    """Wraps a classifier and counts the images it sees."""

    def __init__(self, model):
        self.model, self.seen = model, 0

    def __call__(self, x):
        self.seen += x.shape[0]
        return self.model(x)


def test_batched_equals_naive(tiny_cnn):
    torch.manual_seed(0)
    x = torch.randn(3, 3, 8, 8)
    maps = torch.rand(3, 3, 8, 8)
    fast = cs.class_specific_probs(tiny_cnn, x, maps, THR, max_elements=3 * 5 * 64 * 2)  # 2 images per group
    slow = cs.class_specific_naive(tiny_cnn, x, maps, THR)
    assert fast.shape == (3, 3, 3)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_identical_and_empty_masks_are_classified_once(tiny_cnn):
    x = torch.randn(2, 3, 8, 8)
    maps = torch.zeros(2, 3, 8, 8)
    maps[:, 0, 2:5, 2:5] = 0.95  # the same binary mask at every threshold
    maps[0, 1, 0, 0] = 0.4  # non-empty at 0.1 and 0.3 only: one distinct mask
    counting = Counting(tiny_cnn)
    fast = cs.class_specific_probs(counting, x, maps, THR)
    # 1 empty image + (image 0: class 0 and class 1) + (image 1: class 0)
    assert counting.seen == 1 + 3
    assert torch.allclose(fast, cs.class_specific_naive(tiny_cnn, x, maps, THR), atol=1e-5)


def test_table_and_summary_hand_values():
    # Two classes. Image 0 has class 0, image 1 has both.
    probs = torch.tensor(
        [
            [[0.8, 0.2], [0.4, 0.6]],  # image 0: mask k=0 -> probs over targets, mask k=1 -> ...
            [[0.6, 0.4], [0.2, 0.8]],
        ]
    )
    clean = torch.log(torch.tensor([[3.0, 1.0], [1.0, 1.0]]))  # softmax [.75, .25], [.5, .5]
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    sums, counts = cs.class_specific_sums(probs, clean, labels)
    table = cs.class_specific_table(sums, counts, ["a", "b"])
    # row a (images 0, 1): mask a -> (0.8 + 0.6) / 2, mask b -> (0.4 + 0.2) / 2, none -> (0.75 + 0.5) / 2
    # row b (image 1): mask a -> 0.4, mask b -> 0.8, none -> 0.5
    want = pd.DataFrame([[70.0, 30.0, 62.5], [40.0, 80.0, 50.0]], index=["a", "b"], columns=["a", "b", "none"])
    assert np.allclose(table[["a", "b", "none"]].to_numpy(), want.to_numpy(), atol=1e-4)
    assert table["images"].tolist() == [2, 1]
    summary = cs.class_specific_summary(table)
    assert math.isclose(summary["class_specific/diagonal"], 75.0, abs_tol=1e-4)
    assert math.isclose(summary["class_specific/off_diagonal"], 35.0, abs_tol=1e-4)
    assert math.isclose(summary["class_specific/selectivity"], 40.0, abs_tol=1e-4)


def test_rows_without_images_are_nan_and_skipped():
    sums = torch.tensor([[50.0 / 100, 10.0 / 100, 0.6], [0.0, 0.0, 0.0]])
    counts = torch.tensor([1.0, 0.0])
    table = cs.class_specific_table(sums, counts, ["a", "b"])
    assert table.loc["b", ["a", "b", "none"]].isna().all()
    summary = cs.class_specific_summary(table)
    assert math.isclose(summary["class_specific/diagonal"], 50.0, abs_tol=1e-4)
    assert math.isclose(summary["class_specific/off_diagonal"], 10.0, abs_tol=1e-4)
