"""Fixtures of the metric tests."""

import pytest

from tests.support.metric_models import TinyCNN


@pytest.fixture
def tiny_cnn():
    return TinyCNN()
