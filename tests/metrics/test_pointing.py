import math

import torch

from attrsearch.metrics.pointing import pointing_accuracy, pointing_hits


def test_hits_within_tolerance_inclusive():
    maps = torch.zeros(3, 20, 20)
    maps[:, 2, 2] = 1.0  # the point is (2, 2) in every case
    gt = torch.zeros(3, 20, 20, dtype=torch.bool)
    gt[0, 2, 7] = True  # distance 5: a hit with tolerance 5
    gt[1, 6, 6] = True  # distance sqrt(32) > 5: a miss
    gt[2, 2, 2] = True  # on the point
    assert pointing_hits(maps, gt, 5).tolist() == [True, False, True]
    assert pointing_hits(maps, gt, 0).tolist() == [False, False, True]


def test_accuracy_is_a_mean_over_classes():
    hits = torch.tensor([True, True, False, False, True])
    classes = torch.tensor([0, 0, 0, 0, 2])  # class 0: 2/4, class 1: no cases, class 2: 1/1
    score, per_class = pointing_accuracy(hits, classes, 3)
    assert math.isclose(score, 0.75)
    assert per_class[0] == 0.5 and math.isnan(per_class[1]) and per_class[2] == 1.0
