"""Test-time refinement with the ranking objective (Schinagl et al. 2025): ``refine_maps`` on a tiny
seeded classifier lowers the soft objective, keeps shapes and ranges and leaves the classifier alone."""

import pytest
import torch
from torch import nn

from attrsearch.config.objectives import RankObjective
from attrsearch.objectives.rank import refine_maps, refine_objective

CFG = RankObjective(grid=[4], steps=4)


class TinyClassifier(nn.Module):
    """A seeded 3-class conv net whose logits weight each pixel's features by a fixed per-class map, so
    the classes depend on different pixels (its weights require grad, to check that they get none)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1))
        self.where = nn.Parameter(torch.randn(3, 16, 16))

    def forward(self, x):
        return (self.features(x) * self.where).mean(dim=(2, 3)) * 4.0


def tiny_classifier() -> nn.Module:
    return TinyClassifier().eval()


@pytest.fixture
def problem():
    classifier = tiny_classifier()
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 16, 16, generator=generator)
    maps = torch.rand(2, 3, 16, 16, generator=generator)
    return classifier, images, maps


def test_zero_steps_return_the_maps(problem):
    classifier, images, maps = problem
    assert refine_maps(classifier, images, maps, CFG, 0) is maps


@pytest.mark.parametrize("lambda_area", [0.0, 0.1])
def test_refinement_lowers_the_soft_objective_of_every_row(problem, lambda_area):
    classifier, images, maps = problem
    cfg = CFG.model_copy(update={"lambda_area": lambda_area})
    before = refine_objective(classifier, images, maps, cfg)
    with torch.no_grad():  # as in evaluate / explain
        refined = refine_maps(classifier, images, maps, cfg, steps=5)
    after = refine_objective(classifier, images, refined, cfg)
    assert before.shape == after.shape == (2, 3)
    assert (after < before - 1e-3).all(), (before, after)
    assert (before - after).mean() > 5e-3


def test_shapes_ranges_and_the_classifier_untouched(problem):
    classifier, images, maps = problem
    weights = [p.detach().clone() for p in classifier.parameters()]
    with torch.inference_mode():  # maps of an Explainer are inference tensors
        refined = refine_maps(classifier, images.clone(), maps.clone(), CFG, steps=3)
    assert refined.shape == maps.shape and refined.dtype == torch.float32
    assert 0.0 <= refined.min() and refined.max() <= 1.0
    assert not torch.allclose(refined, maps, atol=1e-3)
    assert all(p.grad is None for p in classifier.parameters())
    assert all(torch.equal(w, p) for w, p in zip(weights, classifier.parameters()))
    assert not classifier.training


def test_rows_are_independent_of_the_chunking(problem):
    classifier, images, maps = problem
    one = refine_maps(classifier, images, maps, CFG, steps=2, chunk=1)
    all_rows = refine_maps(classifier, images, maps, CFG, steps=2, chunk=64)
    assert torch.allclose(one, all_rows, atol=1e-5)


def test_negative_steps_are_refused(problem):
    classifier, images, maps = problem
    with pytest.raises(ValueError, match="steps"):
        refine_maps(classifier, images, maps, CFG, -1)
