"""Fixtures of the model-zoo tests: an empty torch hub cache, so nothing is ever downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$TORCH_HOME``; returns its ``hub/checkpoints`` folder (not created)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # torch.hub.set_dir() would override TORCH_HOME
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    assert str(checkpoints).startswith(str(tmp_path))
    return checkpoints


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine, 2 OpenMP threads stall for seconds per call
    when the other core is busy (measured: 15 ms -> 3 s for a small_resnet forward)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
