import torch
from torch import nn

from attrsearch.metrics import faithfulness as ff


class RegionScore(nn.Module):
    """Class 0's logit grows with the first channel's sum over a fixed region; class 1 is constant."""

    def __init__(self, region):
        super().__init__()
        self.register_buffer("region", region.float())

    def forward(self, x):
        s = (x[:, 0] * self.region).sum(dim=(1, 2))
        return torch.stack([s - 4.0, torch.zeros_like(s)], dim=1)


def test_auc_hand_values():
    curves = torch.tensor([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]])
    assert torch.allclose(ff.curve_auc(curves), torch.tensor([0.5, 1.0]))
    assert torch.allclose(ff.curve_auc(torch.tensor([[0.0, 1.0, 1.0, 1.0]])), torch.tensor([2.5 / 3]))


def test_num_steps_and_ranks():
    assert ff.num_steps(64, 7) == 10 and ff.num_steps(64, 64) == 1 and ff.num_steps(4096, 64) == 64
    ranks = ff.pixel_ranks(torch.tensor([[[0.1, 0.9], [0.5, 0.5]]]))
    assert ranks.tolist() == [[3, 0, 1, 2]]  # ties by position


def test_batched_equals_naive(tiny_cnn):
    torch.manual_seed(0)
    x = torch.randn(3, 3, 8, 8)
    sal = torch.rand(3, 8, 8)
    classes = torch.tensor([0, 2, 1])
    for mode, kind in (("deletion", "mean"), ("insertion", "blur")):
        fill = ff.substrate(x, kind)
        fast = ff.causal_curves(tiny_cnn, x, sal, classes, mode, fill, pixels_per_step=7, chunk_size=5)
        slow = ff.causal_curves_naive(tiny_cnn, x, sal, classes, mode, fill, pixels_per_step=7)
        assert fast.shape == (3, 11)
        assert torch.allclose(fast, slow, atol=1e-5)


def test_curve_end_points():
    # Deletion ends on the substrate, insertion starts on it and ends on the image.
    region = torch.zeros(8, 8)
    region[2:6, 2:6] = 1
    model = RegionScore(region)
    x = torch.zeros(1, 3, 8, 8)
    x[0, 0] = region
    fill = ff.substrate(x, "mean")
    p_img = torch.sigmoid(model(x)[0, 0])
    p_fill = torch.sigmoid(model(fill)[0, 0])
    sal = torch.rand(1, 8, 8)
    cls = torch.tensor([0])
    d = ff.causal_curves(model, x, sal, cls, "deletion", fill, 16)
    i = ff.causal_curves(model, x, sal, cls, "insertion", fill, 16)
    assert torch.isclose(d[0, 0], p_img) and torch.isclose(d[0, -1], p_fill)
    assert torch.isclose(i[0, 0], p_fill) and torch.isclose(i[0, -1], p_img)


def test_perfect_and_inverted_orders_rank_the_right_way_round():
    region = torch.zeros(16, 16)
    region[4:10, 5:11] = 1
    model = RegionScore(region)
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0] = region * 0.5  # logit 36 * 0.5 - 4 = 14 on the full image
    perfect = region[None] + 0.01 * torch.rand(1, 16, 16)
    inverted = 1.0 - perfect
    cls = torch.tensor([0])
    fill = ff.substrate(x, "mean")
    auc = {}
    for name, sal in (("perfect", perfect), ("inverted", inverted)):
        for mode in ("deletion", "insertion"):
            auc[name, mode] = ff.curve_auc(ff.causal_curves(model, x, sal, cls, mode, fill, 16)).item()
    assert auc["perfect", "deletion"] < 0.2 < 0.8 < auc["inverted", "deletion"]
    assert auc["perfect", "insertion"] > 0.8 > 0.2 > auc["inverted", "insertion"]


def test_blur_substrate_keeps_constants_and_smooths():
    x = torch.full((1, 3, 16, 16), 2.0)
    assert torch.allclose(ff.substrate(x, "blur"), x, atol=1e-5)
    y = torch.zeros(1, 3, 16, 16)
    y[..., 8, 8] = 1.0
    blurred = ff.substrate(y, "blur")
    assert blurred.max() < 0.1 and torch.isclose(blurred.sum(), y.sum(), atol=1e-4)


def test_scored_classes():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    classes, use = ff.scored_classes(logits, labels, "label")
    assert classes[:2].tolist() == [2, 0] and use.tolist() == [True, True, False]
    classes, use = ff.scored_classes(logits, labels, "predicted")
    assert classes.tolist() == [0, 1, 0] and use.all()


class Counting:
    """A classify callable that counts the images it is shown."""

    def __init__(self, model):
        self.model, self.seen = model, 0

    def __call__(self, x):
        self.seen += x.shape[0]
        return self.model(x)


def test_known_end_points_and_repeated_end_images_are_not_classified_again(tiny_cnn):
    torch.manual_seed(1)
    x = torch.randn(3, 3, 8, 8)
    x[1, :, 4:] = 0.0  # half of image 1 is the mean substrate already: its deletion curve ends early
    sal = torch.rand(3, 8, 8)
    sal[1, 4:] -= 1.0  # ... because those pixels are the least salient
    classes = torch.tensor([0, 2, 1])
    fill = ff.substrate(x, "mean")
    with torch.no_grad():
        clean = torch.sigmoid(tiny_cnn(x).gather(1, classes[:, None])[:, 0])
        zero = torch.sigmoid(tiny_cnn(fill).gather(1, classes[:, None])[:, 0])
    full = ff.causal_curves_naive(tiny_cnn, x, sal, classes, "deletion", fill, pixels_per_step=8)
    counting = Counting(tiny_cnn)
    got = ff.causal_curves(counting, x, sal, classes, "deletion", fill, 8, chunk_size=4, first=clean, last=zero)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=0)
    # 9 steps each: images 0 and 2 need steps 1..7, image 1 steps 1..3 (step 4 shows the substrate)
    assert counting.seen == 7 + 3 + 7
    counting = Counting(tiny_cnn)
    got = ff.causal_curves(counting, x, sal, classes, "deletion", fill, 8)  # nothing known
    torch.testing.assert_close(got, full, atol=1e-5, rtol=0)
    assert counting.seen == 9 + 5 + 9
