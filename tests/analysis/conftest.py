"""Fixtures of the analysis tests: results folders in the sweep's own layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.results_folders import write_results

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """24 trials, 3 seeds, both architectures varied, 3 objectives; early-stopped and failed trials."""
    return write_results(tmp_path_factory.mktemp("results"))


@pytest.fixture()
def real_tiny() -> Path:
    """A real tiny sweep's folder (5 trials, 2 seeds, ASHA: 1 completed, 4 stopped), checkpoints removed."""
    return DATA / "tiny_report"


@pytest.fixture()
def real_running() -> Path:
    """A real sweep caught while running: no trials.csv, result.json not flushed yet, history.json written."""
    return DATA / "running"
