import torch

from attrsearch.metrics.context import attribution_shares


def test_shares_hand_values():
    maps = torch.tensor([[[1.0, 1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    region = torch.tensor([[[True, False], [True, False]], [[True, True], [True, True]]])
    assert torch.allclose(attribution_shares(maps, region), torch.tensor([0.75, 0.0]))
