import math

import torch

from attrsearch.metrics.transfer import inpaint_masked_out, normalized_entropy, transfer_images

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _normalise(rgb):
    return (rgb - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_masked_in_and_out_are_complementary():
    x = torch.randn(2, 3, 6, 6)
    mask = torch.rand(2, 6, 6)
    sets = transfer_images(x, mask, 0.5, MEAN, STD, 3)
    binary = (mask > 0.5)[:, None]
    assert torch.equal(sets["masked_in"], x * binary)
    assert torch.equal(sets["masked_out"], x * ~binary)
    assert torch.allclose(sets["masked_in"] + sets["masked_out"], x)


def test_inpainting_fills_the_hole_from_its_surroundings():
    rgb = torch.zeros(1, 3, 16, 16)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 0.8, 0.2, 0.4  # a flat colour ...
    rgb[:, :, 6:10, 6:10] = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)  # ... with a green object
    hole = torch.zeros(1, 16, 16, dtype=torch.bool)
    hole[:, 5:11, 5:11] = True
    out = inpaint_masked_out(_normalise(rgb), hole, MEAN, STD, 3)
    back = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert torch.allclose(back[0, :, 8, 8], torch.tensor([0.8, 0.2, 0.4]), atol=2 / 255)
    # pixels outside the hole are unchanged (up to uint8 rounding)
    assert torch.allclose(back[0, :, 0, 0], rgb[0, :, 0, 0], atol=1 / 255)


def test_normalized_entropy():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0], [math.log(2), 0.0, 0.0, 0.0]])
    p = torch.tensor([0.4, 0.2, 0.2, 0.2])
    want = -(p * p.log()).sum() / math.log(4)
    assert torch.allclose(
        normalized_entropy(logits), torch.stack([torch.tensor(1.0), torch.tensor(0.0), want]), atol=1e-6
    )
