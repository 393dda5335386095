import pytest
import torch
from torch import nn

from attrsearch.attribution import check_maps, explainer_attribution, normalize_maps
from attrsearch.errors import UserError


def test_explainer_attribution_is_the_sigmoid_of_the_logits():
    conv = nn.Conv2d(3, 4, 1)
    x = torch.randn(2, 3, 5, 5)
    got = explainer_attribution(conv)(x)
    assert torch.allclose(got, torch.sigmoid(conv(x)))


def test_auto_normalises_only_maps_outside_the_unit_range():
    maps = torch.tensor([[[[0.2, 0.4]], [[-1.0, 3.0]]], [[[0.0, 2.0]], [[0.5, 0.5]]]])  # (2, 2, 1, 2)
    got, flags = normalize_maps(maps)
    assert flags.tolist() == [[False, True], [True, False]]
    assert torch.allclose(got, torch.tensor([[[[0.2, 0.4]], [[0.0, 1.0]]], [[[0.0, 1.0]], [[0.5, 0.5]]]]))


def test_always_normalises_every_map_and_constant_maps_become_zero():
    maps = torch.tensor([[[[0.2, 0.4]], [[0.5, 0.5]]]])
    got, flags = normalize_maps(maps, "always")
    assert flags.all()
    assert torch.allclose(got, torch.tensor([[[[0.0, 1.0]], [[0.0, 0.0]]]]))


def test_bad_maps_are_user_errors():
    with pytest.raises(UserError, match="NaN"):
        normalize_maps(torch.tensor([[[[float("nan")]]]]))
    with pytest.raises(UserError, match="shape"):
        check_maps(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4), num_classes=5)


def test_per_class_attribution_stacks_targets_and_upsamples():
    from attrsearch.attribution import per_class_attribution

    def method(model, images, target):  # TorchRay style: one target, a coarse (B, 1, h, w) map
        return torch.full((images.shape[0], 1, 2, 2), float(target))

    maps = per_class_attribution(method, nn.Identity(), 3)(torch.zeros(2, 3, 4, 4))
    assert maps.shape == (2, 3, 4, 4)
    assert torch.equal(maps[:, 2], torch.full((2, 4, 4), 2.0))
