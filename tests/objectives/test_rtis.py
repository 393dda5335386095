"""Real-time saliency (Dabkowski & Gal 2017) loss terms against hand-computed values on tiny tensors."""

import math

import pytest
import torch
from torch import nn

from attrsearch.config import ExperimentConfig, validate
from attrsearch.config.objectives import RtisObjective
from attrsearch.errors import UserError
from attrsearch.objectives.rtis import (
    AREA_EPS,
    alternative_images,
    area_power,
    draw_classes,
    gaussian_blur,
    rtis_loss,
    rtis_terms,
    smoothness,
)


class MeanLogit(nn.Module):
    """logit_c = w_c * mean(x): lets the probabilities be computed by hand."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.tensor(w)

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None] * self.w


def test_smoothness_squared_differences():
    m = torch.tensor([[[0.0, 1.0], [0.0, 0.5]]])  # vertical: 0, 0.25; horizontal: 1, 0.25
    assert smoothness(m, 2.0).item() == pytest.approx((0.0 + 0.25 + 1.0 + 0.25) / 4)
    assert smoothness(m, 1.0).item() == pytest.approx((0.0 + 0.5 + 1.0 + 0.5) / 4)


def test_area_power():
    m = torch.full((1, 2, 2), 0.25)
    assert area_power(m, 0.3).item() == pytest.approx((0.25 + AREA_EPS) ** 0.3)


def test_terms_hand_computed():
    images = torch.ones(1, 3, 2, 2)
    alternative = torch.zeros(1, 3, 2, 2)
    masks = torch.zeros(1, 2, 2, 2)
    masks[0, 1] = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # class 1: half the image kept
    cfg = RtisObjective()
    clf = MeanLogit([0.0, 2.0])
    terms = rtis_terms(clf, images, masks, torch.tensor([1]), torch.tensor([True]), alternative, cfg)
    # preserved = m * 1 + (1 - m) * 0 -> mean 0.5 -> logit 1; destroyed: mean 0.5 -> logit 1.
    p = 1.0 / (1.0 + math.exp(-1.0))
    assert terms["preserver"].item() == pytest.approx(-math.log(p), rel=1e-5)
    assert terms["destroyer"].item() == pytest.approx(p**0.3, rel=1e-5)
    assert terms["area"].item() == pytest.approx((0.5 + AREA_EPS) ** 0.3, rel=1e-6)
    assert terms["tv"].item() == pytest.approx(2 / 4)  # two horizontal jumps of 1, squared
    # A fake class: classification terms drop out.
    fake = rtis_terms(clf, images, masks, torch.tensor([1]), torch.tensor([False]), alternative, cfg)
    assert fake["preserver"].item() == 0.0 and fake["destroyer"].item() == 0.0


def test_loss_combines_weights():
    torch.manual_seed(0)
    cfg = RtisObjective(fake_fraction=0.0)
    images, labels = torch.randn(2, 3, 8, 8), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    out = rtis_loss(MeanLogit([1.0, -1.0]), images, labels, logits, cfg)
    t = out.terms
    expected = 0.5 * t["tv"] + 8.0 * t["area"] + 0.3 * t["preserver"] + 5.0 * t["destroyer"]
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    out.loss.backward()
    assert logits.grad.abs().sum() > 0


def test_draw_classes_real_present_fake_absent():
    torch.manual_seed(0)
    labels = torch.tensor([[1.0, 0.0, 1.0]] * 400 + [[1.0, 1.0, 1.0]] * 10 + [[0.0, 0.0, 0.0]] * 10)
    classes, real = draw_classes(labels, 0.3)
    picked = labels[torch.arange(len(labels)), classes]
    assert torch.equal(picked.bool(), real)  # real -> a present class, fake -> an absent one
    assert real[400:410].all() and not real[410:].any()
    assert 0.25 < (~real[:400]).float().mean() < 0.35


def test_gaussian_blur_keeps_constants_and_alternatives_mix():
    flat = torch.full((1, 3, 9, 9), 0.7)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)
    torch.manual_seed(0)
    alt = alternative_images(torch.randn(200, 3, 8, 8), 1.0, 0.2, 0.2)
    assert alt.shape == (200, 3, 8, 8)
    colour = alternative_images(torch.zeros(500, 3, 8, 8), 0.0, 0.2, 0.0)
    assert colour.amin() >= -1 and colour.amax() <= 1 and colour[:, :, 0, 0].std() > 0.4


def test_rtis_options_are_its_own():
    with pytest.raises(UserError, match=r"^x.yaml: objective.lambda_r: unknown field$"):
        validate(ExperimentConfig, {"objective": {"name": "rtis", "lambda_r": 1.0}}, source="x.yaml")
