import torch

from attrsearch.metrics.mask_stats import mask_area, mask_entropy


def test_area_and_entropy_hand_values():
    m = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]], [[0.25, 0.0], [0.0, 0.0]]])
    assert torch.allclose(mask_area(m), torch.tensor([0.5, 0.5, 0.0625]))
    h = -(0.25 * torch.log2(torch.tensor(0.25)) + 0.75 * torch.log2(torch.tensor(0.75))) / 4
    assert torch.allclose(mask_entropy(m), torch.stack([torch.tensor(0.0), torch.tensor(1.0), h]))
