"""Building blocks and option checks of the model zoos."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrsearch.errors import UserError
from attrsearch.models.layers import (
    ClassifierHead,
    bool_option,
    check_options,
    conv_bn_relu,
    fraction_option,
    int_option,
    resize,
    to_channels_last,
)


def _builder(num_classes, weights=None, *, width=8, depth=2):
    return None


def test_check_options_accepts_keyword_only_arguments():
    check_options(_builder, {"width": 4, "depth": 1}, ("num_classes", "weights"), "explanandum.options", "toy")


def test_check_options_names_the_unknown_option():
    with pytest.raises(
        UserError, match=r"explanandum.options: unknown option 'widht' for toy \(options: width, depth\)"
    ):
        check_options(_builder, {"widht": 4}, ("num_classes", "weights"), "explanandum.options", "toy")


def test_check_options_rejects_reserved_names():
    with pytest.raises(UserError, match=r"explanandum.options.weights"):
        check_options(_builder, {"weights": "imagenet"}, ("num_classes", "weights"), "explanandum.options", "toy")


@pytest.mark.parametrize("value", [0, -1, 2.5, "8", True, None])
def test_int_option_rejects(value):
    with pytest.raises(UserError, match="f.width: expected an integer >= 1"):
        int_option("f.width", value)


def test_option_helpers_accept_good_values():
    assert int_option("f", 3) == 3
    assert fraction_option("f", 0) == 0.0 and fraction_option("f", 0.5) == 0.5
    assert bool_option("f", False) is False
    for bad in (1.0, -0.1, "0.1"):
        with pytest.raises(UserError):
            fraction_option("f", bad)
    with pytest.raises(UserError):
        bool_option("f", 1)


def test_resize_is_bilinear_and_a_noop_at_the_same_size():
    x = torch.tensor([[[[0.0, 2.0]]]])  # (1, 1, 1, 2)
    assert resize(x, (1, 2)) is x
    # align_corners=False: output pixel centres at 0.25, 0.75, 1.25, 1.75 input-px units -> clamp, 0.5, 1.5, clamp
    assert torch.allclose(resize(x, (1, 4)), torch.tensor([[[[0.0, 0.5, 1.5, 2.0]]]]))


def test_conv_bn_relu_keeps_size_and_head_gives_logits():
    block = conv_bn_relu(3, 5)
    y = block(torch.randn(2, 3, 7, 9))
    assert y.shape == (2, 5, 7, 9) and (y >= 0).all()
    assert ClassifierHead(5, 4, 0.1)(y).shape == (2, 4)


def test_channels_last_weights_keep_results():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 9, 9)
    expected = conv(x)
    to_channels_last(conv)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(conv(x), expected, atol=1e-5)


def test_1x1_conv_commutes_with_bilinear_resize():
    """Why the U-Net and the CASM decoder reduce channels before upsampling: same map, 1/4 the cost."""
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 3, 1)
    x = torch.randn(2, 6, 5, 7)
    assert torch.allclose(conv(resize(x, (11, 13))), resize(conv(x), (11, 13)), atol=1e-5)
