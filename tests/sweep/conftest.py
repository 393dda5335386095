"""Shared pieces of the sweep tests: one local Ray for the whole session.

Ray start-up is most of a toy sweep's time, so every test that needs Ray shares ``ray_address``
(2 CPUs). Tests that must prove no Ray was started run their commands in a subprocess instead.
Tiny sweep files come from ``sweep_files``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_address() -> str:
    """One local Ray (2 CPUs) for every sweep test of the session; its GCS address."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        from attrsearch.sweep.ray_node import start_embedded_ray

        start_embedded_ray(2)  # as `attrsearch sweep` starts it: loopback only
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
