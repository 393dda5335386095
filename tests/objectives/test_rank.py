"""Learning to rank (Schinagl et al. 2025): Gumbel-Sinkhorn soft sort, soft top-k masks, the soft
deletion / insertion AUCs and their hard limits, by hand on tiny tensors."""

import pytest
import torch
from torch import nn

from attrsearch.config import ExperimentConfig, validate
from attrsearch.config.objectives import RankObjective
from attrsearch.errors import UserError
from attrsearch.objectives.rank import (
    auc,
    cell_scores,
    hard_auc,
    hard_permutation,
    neuralsort_scores,
    perturbation_curves,
    rank_loss,
    reference_image,
    soft_auc,
    soft_permutation,
    step_counts,
    topk_masks,
)


class MeanLogit(nn.Module):
    """logit_c = w_c * mean(x) (a linear, hand-computable classifier)."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.tensor(w)

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None] * self.w


class WeightedPixels(nn.Module):
    """logit = sum of pixel * weight map: a classifier with a real pixel ranking."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return (x.mean(dim=1) * self.weight).sum(dim=(1, 2))[:, None]


def test_neuralsort_rows_peak_at_the_sorted_entries():
    a = torch.tensor([[0.2, 0.9, 0.5]])
    s = neuralsort_scores(a)
    assert s[0].argmax(dim=1).tolist() == [1, 2, 0]
    # Row 0 (largest), hand-computed: (n - 1) a_j - sum_k |a_j - a_k| with n = 3.
    assert s[0, 0].tolist() == pytest.approx([2 * 0.2 - 1.0, 2 * 0.9 - 1.1, 2 * 0.5 - 0.7])


@pytest.mark.parametrize("tau, noise", [(0.1, 0.0), (0.1, 0.1), (1.0, 1.0), (0.01, 0.0)])
def test_soft_permutation_is_doubly_stochastic(tau, noise):
    torch.manual_seed(0)
    p = soft_permutation(torch.rand(4, 64), tau, noise, iterations=30)
    assert torch.allclose(p.sum(dim=1), torch.ones(4, 64), atol=1e-4)
    assert torch.allclose(p.sum(dim=2), torch.ones(4, 64), atol=1e-4)


def test_soft_permutation_tends_to_the_hard_sort():
    torch.manual_seed(0)
    a = torch.stack([torch.randperm(16) for _ in range(3)]).float() / 16  # distinct values, spacing 1/16
    hard = hard_permutation(a)
    errors = [(soft_permutation(a, tau, 0.0, 50) - hard).abs().max().item() for tau in (1.0, 0.1, 0.01, 0.001)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-3


def test_topk_masks_hand_computed():
    perm = hard_permutation(torch.tensor([[0.1, 0.7, 0.4, 0.9]]))  # order: 3, 1, 2, 0
    assert step_counts(4, 2) == [0, 2, 4]
    masks = topk_masks(perm, 2)
    assert masks[0].tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 1]]


def test_auc_is_the_normalised_trapezoid():
    assert auc(torch.tensor([[1.0, 0.5, 0.0]])).item() == pytest.approx((1.5 - 0.5) / 2)


def test_cell_scores_pool_to_the_grid():
    maps = torch.arange(16.0).view(1, 4, 4)
    assert cell_scores(maps, 2)[0].tolist() == [2.5, 4.5, 10.5, 12.5]


def test_curves_hand_computed():
    # 2 x 2 image, G = 2, S = 2: deletion removes the 2 brightest cells (mean reference 0), then all.
    images = torch.tensor([[[[4.0, 0.0], [2.0, 0.0]]]]).expand(1, 3, 2, 2)
    cells = topk_masks(hard_permutation(torch.tensor([[0.9, 0.1, 0.8, 0.2]])), 2)
    clf = MeanLogit([1.0])
    d, i = perturbation_curves(clf, images, reference_image(images, "mean"), cells, torch.tensor([0]), 2)
    sig = torch.sigmoid
    expected_d = [sig(torch.tensor(1.5)), sig(torch.tensor(0.0)), sig(torch.tensor(0.0))]
    expected_i = [sig(torch.tensor(0.0)), sig(torch.tensor(1.5)), sig(torch.tensor(1.5))]
    assert d[0].tolist() == pytest.approx([float(v) for v in expected_d])
    assert i[0].tolist() == pytest.approx([float(v) for v in expected_i])


def test_soft_auc_tends_to_the_hard_auc():
    torch.manual_seed(0)
    weight = torch.rand(8, 8) * 4 - 2
    clf = WeightedPixels(weight)
    images = torch.rand(6, 3, 8, 8)
    cells = torch.stack([torch.randperm(16) for _ in range(6)]).float().view(6, 1, 4, 4) / 16  # distinct cells
    maps = torch.nn.functional.interpolate(cells, size=(8, 8), mode="nearest")[:, 0]
    classes = torch.zeros(6, dtype=torch.long)
    hd, hi = hard_auc(clf, images, maps, classes, 4, 4, "mean")
    gaps = []
    for tau in (1.0, 0.1, 0.01, 0.001):
        cfg = RankObjective(grid=[4], steps=4, temperature=tau, reference="mean", sinkhorn_iterations=50)
        sd, si = soft_auc(clf, images, maps, classes, cfg)
        gaps.append(max((sd - hd).abs().max().item(), (si - hi).abs().max().item()))
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-3


def test_rank_loss_combines_terms_and_trains_the_scored_map():
    torch.manual_seed(0)
    clf = WeightedPixels(torch.rand(8, 8))
    images, labels = torch.rand(2, 3, 8, 8), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    logits = torch.randn(2, 2, 8, 8, requires_grad=True)
    cfg = RankObjective(grid=[4], steps=4, lambda_area=0.5)
    out = rank_loss(clf, images, labels, logits, cfg)
    t = out.terms
    assert out.loss.item() == pytest.approx((t["deletion_auc"] - t["insertion_auc"] + 0.5 * t["area"]).item(), rel=1e-5)
    out = rank_loss(clf, images, labels, logits, cfg.model_copy(update={"lambda_area": 0.0}))
    out.loss.backward()
    grad = logits.grad.abs().sum(dim=(2, 3))
    assert (grad[:, 0] > 0).all() and (grad[:, 1] == 0).all()  # only the scored class (the label) is ranked


def test_reference_images():
    images = torch.randn(2, 3, 6, 6)
    assert torch.equal(reference_image(images, "mean"), torch.zeros_like(images))
    black = reference_image(images, "black")
    assert torch.equal(black[0, :, 0, 0], images.amin(dim=(0, 2, 3)))
    assert reference_image(images, "blur").std() < images.std()


@pytest.mark.parametrize(
    "objective, message",
    [
        ({"name": "rank", "grid": [65]}, "objective.grid: side 65 is larger than data.image_size (64)"),
        ({"name": "rank", "temperature": 0.0}, "objective.temperature: Input should be greater than 0"),
        ({"name": "rank", "lambda_entropy": 1.0}, "objective.lambda_entropy: unknown field"),
    ],
)
def test_bad_rank_options_are_one_line_errors(objective, message):
    with pytest.raises(UserError) as err:
        validate(ExperimentConfig, {"objective": objective}, source="x.yaml")
    assert str(err.value).startswith(f"x.yaml: {message}") and "\n" not in str(err.value)
