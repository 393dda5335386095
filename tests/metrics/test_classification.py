import math

import torch

from attrsearch.metrics.classification import f1_per_image, mean_average_precision, multilabel_f1


def test_f1_per_image_hand_values():
    probs = torch.tensor([[0.9, 0.8, 0.1], [0.2, 0.1, 0.3], [0.6, 0.1, 0.1], [0.1, 0.1, 0.1]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # image 0: P={0,1}, Y={0,2}: 2*1/4; image 1: both empty -> 1; image 2: disjoint -> 0; image 3: P empty -> 0
    assert torch.allclose(f1_per_image(probs, labels), torch.tensor([0.5, 1.0, 0.0, 0.0]))
    assert math.isclose(multilabel_f1(probs, labels), 0.375)


def test_map_hand_value():
    scores = torch.tensor([[0.9], [0.8], [0.7]])
    labels = torch.tensor([[1.0], [0.0], [1.0]])
    assert math.isclose(mean_average_precision(scores, labels), (1.0 + 2 / 3) / 2, rel_tol=1e-6)
