import math

import torch

from attrsearch.metrics import segmentation as seg

M = torch.tensor([[[1.0, 0.5], [0.0, 0.25]]])
G = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
ALL = torch.ones(1, 2, 2, dtype=torch.bool)
VOID_11 = torch.tensor([[[True, True], [True, False]]])


def test_pixel_metrics_hand_values():
    # accuracy: (1 + 0.5 + 1 + 0.75) / 4; IoU: (1 + .5) / (1 + 1 + .25); MAE: (0 + .5 + 0 + .25) / 4
    assert torch.allclose(seg.soft_accuracy(M, G, ALL), torch.tensor([0.8125]))
    assert torch.allclose(seg.continuous_iou(M, G, ALL), torch.tensor([1.5 / 2.25]))
    assert torch.allclose(seg.mean_absolute_error(M, G, ALL), torch.tensor([0.1875]))


def test_void_pixels_are_not_counted():
    assert torch.allclose(seg.soft_accuracy(M, G, VOID_11), torch.tensor([2.5 / 3]))
    assert torch.allclose(seg.continuous_iou(M, G, VOID_11), torch.tensor([1.5 / 2.0]))
    assert torch.allclose(seg.mean_absolute_error(M, G, VOID_11), torch.tensor([0.5 / 3]))


def test_ground_truth_row_is_perfect_and_constant_rows_behave():
    g = (torch.rand(3, 8, 8) > 0.6).float()
    valid = torch.rand(3, 8, 8) > 0.1
    gt = seg.constant_mask("gt", g)
    assert torch.allclose(seg.continuous_iou(gt, g, valid), torch.ones(3))
    assert torch.allclose(seg.soft_accuracy(gt, g, valid), torch.ones(3))
    assert torch.allclose(seg.mean_absolute_error(gt, g, valid), torch.zeros(3))
    zero, half = seg.constant_mask("zero", g), seg.constant_mask("half", g)
    assert torch.allclose(seg.continuous_iou(zero, g, valid), torch.zeros(3))
    assert torch.allclose(seg.soft_accuracy(half, g, valid), torch.full((3,), 0.5))
    assert torch.allclose(seg.mean_absolute_error(half, g, valid), torch.full((3,), 0.5))


def test_iou_of_two_empty_masks_is_one():
    z = torch.zeros(1, 2, 2)
    assert seg.continuous_iou(z, z, ALL).item() == 1.0


def test_saliency_hand_values():
    logits = torch.log(torch.tensor([[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]]))  # softmax 0.25, 0.25, 0.5
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    area = torch.tensor([0.5, 0.01])  # the second is floored at 0.05
    got = seg.saliency_from_logits(logits, labels, area)
    want = torch.tensor([math.log(0.5) - math.log(0.75), math.log(0.05) - math.log(0.75)])
    assert torch.allclose(got, want, atol=1e-6)


def test_salient_boxes():
    b = torch.zeros(2, 6, 8, dtype=torch.bool)
    b[0, 1:3, 2:7] = True
    b[0, 4, 4] = True
    boxes, empty = seg.salient_boxes(b)
    assert boxes[0].tolist() == [2.0, 1.0, 7.0, 5.0]
    assert empty.tolist() == [False, True]
    assert boxes[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_crop_of_the_whole_image_is_the_image():
    x = torch.randn(1, 3, 8, 8)
    crops, area = seg.crop_salient(x, torch.ones(1, 8, 8, dtype=torch.bool))
    assert torch.allclose(crops, x, atol=1e-5)
    assert area.item() == 1.0


def test_crop_keeps_the_aspect_ratio():
    # A full-width, 2-row box: scale 1, centred vertically, padding above and below, no stretching.
    x = torch.randn(1, 3, 8, 8)
    binary = torch.zeros(1, 8, 8, dtype=torch.bool)
    binary[0, 2:4, :] = True
    crops, area = seg.crop_salient(x, binary)
    assert torch.allclose(crops[0, :, 3:5], x[0, :, 2:4], atol=1e-5)
    assert crops[0, :, :3].abs().max() == 0 and crops[0, :, 5:].abs().max() == 0
    assert area.item() == 2 * 8 / 64


def test_crop_upscales_a_small_square():
    # A 2x2 box fills the 8x8 output (4x upscale); a constant region stays constant.
    x = torch.zeros(1, 3, 8, 8)
    x[0, :, 2:4, 2:4] = 7.0
    binary = torch.zeros(1, 8, 8, dtype=torch.bool)
    binary[0, 2:4, 2:4] = True
    crops, area = seg.crop_salient(x, binary)
    assert torch.allclose(crops[0, :, 2:6, 2:6], torch.full((3, 4, 4), 7.0), atol=1e-5)
    assert area.item() == 4 / 64


def test_crop_of_an_empty_region_is_the_mean_image():
    crops, area = seg.crop_salient(torch.randn(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.bool))
    assert crops.abs().max() == 0 and area.tolist() == [0.0, 0.0]
