"""``train.runtime.lr_factor``: warm-up then cosine, checked against torch's own CosineAnnealingLR."""

import math

import pytest
import torch

from attrsearch.train.runtime import lr_factor


def test_constant_is_one_everywhere():
    assert {lr_factor(s, name="constant", warmup_steps=3, total_steps=10, final_ratio=0.0) for s in range(20)} == {1.0}


def test_warmup_is_linear_from_one_hundredth():
    f = [lr_factor(s, name="cosine", warmup_steps=4, total_steps=20, final_ratio=0.0) for s in range(5)]
    assert f[0] == pytest.approx(0.01) and f[4] == pytest.approx(1.0)
    assert all(b - a == pytest.approx(0.2475) for a, b in zip(f, f[1:]))


def test_cosine_part_matches_torch_cosine_annealing():
    """After the warm-up the factor is torch.optim.lr_scheduler.CosineAnnealingLR's curve
    (T_max = the decay's steps, eta_min = final_ratio * lr)."""
    warmup, total, ratio, lr = 5, 45, 0.1, 0.3
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - 1 - warmup, eta_min=ratio * lr)
    for step in range(warmup, total):
        ours = lr * lr_factor(step, name="cosine", warmup_steps=warmup, total_steps=total, final_ratio=ratio)
        assert ours == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        opt.step()
        ref.step()


def test_held_at_the_final_ratio_beyond_the_plan():
    assert lr_factor(100, name="cosine", warmup_steps=0, total_steps=10, final_ratio=0.05) == pytest.approx(0.05)
    assert math.isclose(lr_factor(0, name="cosine", warmup_steps=0, total_steps=10, final_ratio=0.05), 1.0)
