"""Fixtures of the metric tests."""

import pytest
from metric_fixtures import TinyCNN


@pytest.fixture
def tiny_cnn():
    return TinyCNN()
