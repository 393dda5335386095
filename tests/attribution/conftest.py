"""Fixtures of the attribution-method tests: tiny seeded frozen models and images."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attrsearch.models import create_explanandum


def frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def small_cnn():
    """small_cnn, width 8, C=3, random weights with a head strong enough to move the scores."""
    torch.manual_seed(0)
    model = create_explanandum("small_cnn", 3, image_size=32, width=8)
    with torch.no_grad():
        nn.init.normal_(model.head[-1].weight, 0.0, 1.0)
    return frozen(model)


@pytest.fixture
def small_resnet():
    torch.manual_seed(1)
    model = create_explanandum("small_resnet", 3, image_size=32, width=8, blocks_per_stage=1)
    with torch.no_grad():
        nn.init.normal_(model.head[-1].weight, 0.0, 1.0)
        for name, p in model.named_parameters():
            if name.endswith("bn2.weight"):
                p.fill_(1.0)  # undo the zero-init of the residual branches, so every block matters
    return frozen(model)


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(2, 3, 32, 32)


@pytest.fixture
def bias_free_net():
    """conv-ReLU-conv-ReLU-GAP-Linear without biases or BatchNorm: LRP conserves relevance exactly here."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4, bias=False),
    )
    return frozen(net)
