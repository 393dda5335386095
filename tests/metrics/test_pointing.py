"""The pointing game as TorchRay's benchmark defines it: strict tolerance, scaled radius, box ground truth,
Zhang et al. 2018's difficult subset."""

import math

import torch

from attrsearch.metrics.pointing import difficult_cases, pointing_accuracy, pointing_hits, pointing_tolerance


def test_hits_need_a_pixel_strictly_closer_than_the_tolerance():
    maps = torch.zeros(4, 20, 20)
    maps[:, 2, 2] = 1.0  # the point is (2, 2) in every case
    gt = torch.zeros(4, 20, 20, dtype=torch.bool)
    gt[0, 2, 7] = True  # distance exactly 5: a miss with tolerance 5 (TorchRay: d^2 < r^2)
    gt[1, 2, 6] = True  # distance 4: a hit
    gt[2, 6, 6] = True  # distance sqrt(32) > 5: a miss
    gt[3, 2, 2] = True  # on the point
    assert pointing_hits(maps, gt, 5).tolist() == [False, True, False, True]
    assert pointing_hits(maps, gt, 5.01).tolist() == [True, True, False, True]
    assert pointing_hits(maps, gt, 0).tolist() == [False, False, False, False]


def test_tolerance_scales_with_the_image_side_unless_given():
    assert pointing_tolerance(None, 224, 224) == 15.0
    assert math.isclose(pointing_tolerance(None, 64, 64), 15 * 64 / 224)
    assert math.isclose(pointing_tolerance(None, 448, 300), 15 * 300 / 224)  # the shorter side
    assert pointing_tolerance(15, 64, 64) == 15.0  # an explicit value stays as it is


def test_scaled_tolerance_on_a_64px_map():
    maps = torch.zeros(2, 64, 64)
    maps[:, 10, 10] = 1.0
    gt = torch.zeros(2, 64, 64, dtype=torch.bool)
    gt[0, 10, 14] = True  # 4 px: inside 4.29 px
    gt[1, 10, 15] = True  # 5 px: outside the scaled radius, inside a fixed 15 px
    tol = pointing_tolerance(None, 64, 64)
    assert pointing_hits(maps, gt, tol).tolist() == [True, False]
    assert pointing_hits(maps, gt, 15).tolist() == [True, True]


def test_difficult_cases_small_ground_truth_and_a_distractor():
    gt = torch.zeros(3, 10, 10, dtype=torch.bool)
    gt[0, :2, :2] = True  # small, another class present: difficult
    gt[1, :2, :2] = True  # small, alone: easy
    gt[2, :6, :6] = True  # 36% of the image: easy
    labels = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 0, 1]])
    assert difficult_cases(gt, labels).tolist() == [True, False, False]


def test_accuracy_is_a_mean_over_classes():
    hits = torch.tensor([True, True, False, False, True])
    classes = torch.tensor([0, 0, 0, 0, 2])  # class 0: 2/4, class 1: no cases, class 2: 1/1
    score, per_class = pointing_accuracy(hits, classes, 3)
    assert math.isclose(score, 0.75)
    assert per_class[0] == 0.5 and math.isnan(per_class[1]) and per_class[2] == 1.0


def test_scorer_boxes_on_voc_and_difficult_subset():
    from types import SimpleNamespace

    from attrsearch.config import EvaluationConfig
    from attrsearch.metrics.pointing import PointingScorer

    h = w = 32
    maps = torch.zeros(1, 2, h, w)
    maps[0, 0, 20, 20] = 1.0  # class 0 points inside its box, outside its pixel mask
    maps[0, 1, 0, 0] = 1.0  # class 1 points far away
    masks = torch.zeros(1, 2, h, w, dtype=torch.uint8)
    masks[0, 0, 2:4, 2:4] = 1
    masks[0, 1, 28:30, 28:30] = 1
    boxes = [torch.tensor([[2.0, 2.0, 24.0, 24.0], [28.0, 28.0, 30.0, 30.0]])]
    box_labels = [torch.tensor([0, 1])]
    labels = torch.tensor([[1.0, 1.0]])
    from attrsearch.metrics.common import class_boxes, class_pairs

    def ctx():
        pairs = class_pairs(labels)
        return SimpleNamespace(
            pairs=pairs,
            case_boxes=class_boxes(boxes, box_labels, pairs[0], pairs[1]),
            maps=maps,
            images=torch.zeros(1, 3, h, w),
            annotated=torch.tensor([True]),
            masks=masks,
            labels=labels,
            cfg=cfg,
        )

    for name, expected in (("voc2007", 0.5), ("shapes", 0.0)):
        cfg = EvaluationConfig()
        info = SimpleNamespace(name=name, image_size=h, num_classes=2, class_names=("a", "b"))
        scorer = PointingScorer(SimpleNamespace(cfg=cfg, info=info))
        scorer.update(ctx())
        metrics, _ = scorer.compute()
        assert math.isclose(metrics["pointing_game/accuracy"], expected), name
        assert math.isclose(metrics["pointing_game/tolerance"], 15 * 32 / 224)
    # VOC: class 0's box covers 22x22/32^2 = 47% (easy); class 1's 2x2 box with a distractor: difficult, a miss
    assert metrics["pointing_game/difficult_cases"] == 2.0  # shapes: both pixel masks are small
