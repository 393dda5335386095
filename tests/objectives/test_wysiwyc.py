"""Stalder et al. 2022 loss terms against hand-computed values on tiny tensors."""

import math

import pytest
import torch
from torch import nn

from attrsearch.config import WysiwycObjective
from attrsearch.objectives.wysiwyc import (
    aggregate_masks,
    area,
    area_bound,
    classification_loss,
    negative_entropy,
    total_variation,
    wysiwyc_loss,
)


def test_aggregate_masks_takes_max_over_present_and_absent_classes():
    masks = torch.tensor([[[[0.1, 0.9]], [[0.5, 0.2]], [[0.3, 0.4]]]])  # (1, 3, 1, 2)
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    m, n = aggregate_masks(masks, labels)
    assert torch.allclose(m, torch.tensor([[[0.3, 0.9]]]))
    assert torch.allclose(n, torch.tensor([[[0.5, 0.2]]]))


def test_aggregate_masks_empty_set_gives_zero():
    masks = torch.rand(1, 2, 3, 3)
    m, n = aggregate_masks(masks, torch.tensor([[1.0, 1.0]]))
    assert torch.equal(n, torch.zeros(1, 3, 3))
    assert torch.allclose(m, masks.amax(1))


def test_classification_loss_is_mean_bce():
    logits = torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([[1.0, 0.0]])
    expected = (math.log(2.0) + math.log(1.0 + math.e**2)) / 2
    assert classification_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_negative_entropy_uniform_and_clamped():
    # Uniform over 4 classes: (1/C) sum p log p = log(1/4) / 4.
    assert negative_entropy(torch.zeros(2, 4)).item() == pytest.approx(math.log(0.25) / 4, rel=1e-6)
    # A confident prediction: p = (1, ~0) with the tiny one clamped at 1e-16 -> about 0.
    value = negative_entropy(torch.tensor([[100.0, 0.0]])).item()
    assert value == pytest.approx((1e-16 * math.log(1e-16)) / 2, abs=1e-12)


def test_area_is_mean():
    assert area(torch.tensor([[[0.0, 1.0], [0.5, 0.5]]])).item() == pytest.approx(0.5)


def test_area_bound_hand_computed():
    # Z = 4, a = 0.25 -> 1 pixel must be on, b = 0.5 -> at most 2 pixels on.
    # sorted: [0.9, 0.6, 0.2, 0.0]; below-min: (1 - 0.9) = 0.1; above-max: 0.2 + 0.0 = 0.2.
    masks = torch.tensor([[[[0.9, 0.2], [0.6, 0.0]]]])
    labels = torch.tensor([[1.0]])
    assert area_bound(masks, labels, 0.25, 0.5).item() == pytest.approx(0.3 / 4)


def test_area_bound_ignores_absent_classes_and_averages_per_image():
    ones = torch.ones(1, 1, 2, 2)
    zeros = torch.zeros(1, 1, 2, 2)
    # image 0: present class 0 all ones -> B = 2/4 (two pixels above b); class 1 absent (ignored).
    # image 1: present classes 0 (zeros -> B = 1/4) and 1 (ones -> B = 2/4): mean 3/8.
    masks = torch.cat([torch.cat([ones, zeros], 1), torch.cat([zeros, ones], 1)])
    labels = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = (0.5 + 3 / 8) / 2
    assert area_bound(masks, labels, 0.25, 0.5).item() == pytest.approx(expected)


def _literal_bound(masks, labels, a, b):
    """Eqs. 4-6 written out with a full sort and step vectors, one image and class at a time."""
    per_image = []
    for i in range(masks.shape[0]):
        values = []
        for c in range(masks.shape[1]):
            if labels[i, c] == 0:
                continue
            q = masks[i, c].flatten().sort(descending=True).values
            z = q.numel()
            q_min = torch.zeros(z)
            q_min[: int(z * a)] = 1
            q_max = torch.zeros(z)
            q_max[: int(z * b)] = 1
            values.append(torch.relu(q_min - q).sum() / z + torch.relu(q - q_max).sum() / z)
        if values:
            per_image.append(torch.stack(values).mean())
    return torch.stack(per_image).mean()


@pytest.mark.parametrize("shape", [(3, 4, 7, 9), (2, 5, 16, 16)])
def test_area_bound_equals_literal_formula(shape):
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(*shape, generator=g)
    labels = (torch.rand(shape[0], shape[1], generator=g) > 0.5).float()
    labels[:, 0] = 1
    got = area_bound(masks, labels, 0.05, 0.3)
    assert got.item() == pytest.approx(_literal_bound(masks, labels, 0.05, 0.3).item(), rel=1e-5)


def test_area_bound_gradient_matches_literal():
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(2, 3, 6, 6, generator=g)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    m1 = masks.clone().requires_grad_(True)
    m2 = masks.clone().requires_grad_(True)
    area_bound(m1, labels, 0.1, 0.4).backward()
    _literal_bound(m2, labels, 0.1, 0.4).backward()
    assert torch.allclose(m1.grad, m2.grad, atol=1e-7)


def test_total_variation_hand_computed():
    x = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]])
    # vertical |1-0| + |1-1| = 1, horizontal |1-0| + |1-1| = 1, Z = 4.
    assert total_variation(x).item() == pytest.approx(0.5)
    assert total_variation(torch.ones(2, 3, 5, 5)).item() == 0.0


class _CountingClassifier(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.linear = nn.Linear(3, num_classes)
        self.calls = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return self.linear(x.mean(dim=(2, 3)))


def test_objective_is_weighted_sum_with_one_forward_pass():
    torch.manual_seed(0)
    clf = _CountingClassifier(3).requires_grad_(False).eval()
    images = torch.randn(2, 3, 8, 8)
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    cfg = WysiwycObjective(
        lambda_entropy=2.0,
        lambda_area=0.5,
        lambda_nontarget_area=0.25,
        lambda_bound=3.0,
        lambda_tv=0.1,
        min_area=0.1,
        max_area=0.4,
    )
    out = wysiwyc_loss(clf, images, labels, logits, cfg)
    assert clf.calls == [4]  # masked and inverted images share one forward pass
    t = out.terms
    expected = (
        t["classification"]
        + 2.0 * t["entropy"]
        + 0.5 * t["area"]
        + 0.25 * t["nontarget_area"]
        + 3.0 * t["bound"]
        + 0.1 * t["tv"]
    )
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Terms recomputed independently.
    masks = torch.sigmoid(logits)
    m, n = aggregate_masks(masks, labels)
    assert t["tv"].item() == pytest.approx((total_variation(m) + total_variation(n)).item(), rel=1e-6)
    out.loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert clf.linear.weight.grad is None
