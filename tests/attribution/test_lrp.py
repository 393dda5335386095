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


def test_a_dense_bias_absorbs_exactly_its_share(bias_free_net):
    """Epsilon rule at the last layer: sum R = z (z - b) / (z + eps) = logit - b up to epsilon."""
    head = bias_free_net[-1]
    head.bias = torch.nn.Parameter(torch.tensor([0.5, -0.3, 0.2, 1.0]), requires_grad=False)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 12)
    maps = lrp(bias_free_net, x)
    logits = bias_free_net(x)
    torch.testing.assert_close(maps.sum((2, 3)), logits - head.bias, atol=1e-4, rtol=1e-3)


def test_canonized_resnet_is_close_to_conservative(small_resnet, images):
    maps = lrp(small_resnet, images)
    logits = small_resnet(images)
    # biases (from merged BatchNorm) absorb part of the relevance; the sign and size stay close
    assert torch.corrcoef(torch.stack([maps.sum((2, 3)).flatten(), logits.flatten()]))[0, 1] > 0.9


def test_describe_names_composite_and_canonizer(small_cnn, small_resnet):
    text = describe({}, small_cnn)
    assert text.startswith("zennit EpsilonPlusFlat (epsilon 1e-06), canonizers SequentialMergeBatchNorm; ")
    assert "biases (BatchNorm shifts included)" in text and "flat rule at the input" in text
    assert describe({"composite": "epsilon_gamma_box"}, small_resnet).startswith(
        "zennit EpsilonGammaBox (epsilon 1e-06, gamma 0.25)"
    )
    assert "canonizers ResNetCanonizer; " in describe({"composite": "alpha2_beta1"}, small_resnet)


def test_canonizers_leave_the_model_unchanged(small_cnn, images):
    before = small_cnn(images)
    lrp(small_cnn, images)
    torch.testing.assert_close(small_cnn(images), before)


def test_layer_without_rule_is_refused_before_work():
    model = create_explanandum("vit_b_16", 2, image_size=32).eval()
    with pytest.raises(UserError, match="no LRP rule for LayerNorm"):
        lrp(model, torch.randn(1, 3, 32, 32))
