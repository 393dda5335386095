"""LRP through zennit: conservation, variants in words, refusal of layers without a rule."""

from __future__ import annotations

import pytest
import torch

from attrsearch.attribution.methods.lrp import describe, lrp
from attrsearch.errors import UserError
from attrsearch.models import create_explanandum


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_gamma_box", "alpha2_beta1"])
def test_relevance_is_conserved_without_biases(bias_free_net, composite):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 12)
    maps = lrp(bias_free_net, x, composite=composite)
    logits = bias_free_net(x)
    assert maps.shape == (2, 4, 12, 12)
    torch.testing.assert_close(maps.sum((2, 3)), logits, atol=1e-4 * logits.abs().max().item(), rtol=1e-3)


def test_canonized_resnet_is_close_to_conservative(small_resnet, images):
    maps = lrp(small_resnet, images)
    logits = small_resnet(images)
    # biases (from merged BatchNorm) absorb part of the relevance; the sign and size stay close
    assert torch.corrcoef(torch.stack([maps.sum((2, 3)).flatten(), logits.flatten()]))[0, 1] > 0.9


def test_describe_names_composite_and_canonizer(small_cnn, small_resnet):
    assert describe({}, small_cnn) == "zennit EpsilonPlusFlat (epsilon 1e-06), canonizers SequentialMergeBatchNorm"
    assert describe({"composite": "epsilon_gamma_box"}, small_resnet).startswith(
        "zennit EpsilonGammaBox (epsilon 1e-06, gamma 0.25)"
    )
    assert describe({"composite": "alpha2_beta1"}, small_resnet).endswith("canonizers ResNetCanonizer")


def test_canonizers_leave_the_model_unchanged(small_cnn, images):
    before = small_cnn(images)
    lrp(small_cnn, images)
    torch.testing.assert_close(small_cnn(images), before)


def test_layer_without_rule_is_refused_before_work():
    model = create_explanandum("vit_b_16", 2, image_size=32).eval()
    with pytest.raises(UserError, match="no LRP rule for LayerNorm"):
        lrp(model, torch.randn(1, 3, 32, 32))
