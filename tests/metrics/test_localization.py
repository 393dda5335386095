import torch

from attrsearch.metrics import localization as loc


def test_mean_fraction_binarize_keeps_the_mean():
    maps = torch.tensor([[[0.9, 0.1], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    got = loc.mean_fraction_binarize(maps)
    assert got[0].tolist() == [[True, False], [True, False]]  # 2 of 4 pixels, ties by position
    assert not got[1].any()


def test_largest_component_uses_4_connectivity_and_stays_in_its_map():
    b = torch.zeros(3, 6, 6, dtype=torch.bool)
    b[0, 0, 0] = b[0, 1, 1] = b[0, 2, 2] = True  # a diagonal: three components of one pixel
    b[0, 4, 0:2] = True  # a 2-pixel bar: the largest
    b[1, 1:4, 2:5] = True  # a square; map 2 stays empty
    boxes = loc.largest_component_boxes(b)
    assert boxes.tolist() == [[0.0, 4.0, 2.0, 5.0], [2.0, 1.0, 5.0, 4.0], [0.0, 0.0, 0.0, 0.0]]


def test_scores_hand_values():
    maps = torch.zeros(3, 8, 8)
    maps[0, 2:6, 2:6] = 1.0  # exactly the GT box
    maps[1, 0:3, 0:3] = 1.0  # a big blob on GT box A ...
    maps[1, 7, 7] = 1.0  # ... and a stray pixel inside GT box B
    gt = torch.tensor([[2.0, 2.0, 6.0, 6.0], [0.0, 0.0, 3.0, 3.0], [5.0, 5.0, 8.0, 8.0], [1.0, 1.0, 4.0, 4.0]])
    case = torch.tensor([0, 1, 1, 2])
    predicted = torch.tensor([True, False, True])
    s = loc.localization_scores(maps, gt, case, predicted)
    assert s["le"].tolist() == [0.0, 0.0, 1.0]
    assert s["om"].tolist() == [0.0, 1.0, 1.0]
    # case 1: box A: P = 9/10, R = 9/9 -> 2*.9/(1.9); box B: P = .1, R = 1/9 -> smaller
    assert torch.allclose(s["f1"], torch.tensor([1.0, 1.8 / 1.9, 0.0]))


def test_iou_threshold_is_strict():
    # Predicted box 4x4 vs GT 4x8: IoU exactly 0.5 is not a hit.
    maps = torch.zeros(1, 8, 8)
    maps[0, 0:4, 0:4] = 1.0
    s = loc.localization_scores(maps, torch.tensor([[0.0, 0.0, 8.0, 4.0]]), torch.tensor([0]), torch.tensor([True]))
    assert s["le"].item() == 1.0
