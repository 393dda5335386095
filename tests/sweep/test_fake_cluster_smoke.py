"""`ray up` offline: cluster.yaml's fake-provider twin runs a sweep on Ray's autoscaler and scales to zero.

analysis/chaos/fake_cluster.py smoke --tiny (a smaller quickstart, 1 GPU per trial) on its own head with
its own temp dir and port: workers are added for the pending work, every trial runs on one of them, and the
autoscaler removes them as idle afterwards. About 1.5 minutes on 2 idle cores; 5.5 minutes measured while other
trainings held them (Ray runs its workers at niceness 15), hence the generous timeouts.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.support.sweep_files import REPO

pytestmark = [pytest.mark.slow]


def _module():
    spec = importlib.util.spec_from_file_location("fake_cluster", REPO / "analysis" / "chaos" / "fake_cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_quickstart_on_the_autoscaled_fake_cluster_scales_up_then_down_when_idle():
    pytest.importorskip("ray")
    figures = _module().smoke(tiny=True, sweep_timeout_s=600)
    print(figures)
    assert figures["sweep_rc"] == 0, figures
    assert figures["trials"] == 4 and set(figures["trial_statuses"]) <= {"completed", "stopped"}, figures
    assert figures["peak_workers"] >= 1 and figures["peak_raylets"] >= 2, figures
    assert "00000" not in figures["trial_nodes"], figures  # no trial on the head (1 CPU, no GPU)
    assert figures["workers_left"] == 0 and figures["raylets_left"] == 1, figures
    assert figures["all_removed_as_idle"], figures
    assert figures["ok"] and figures["processes_left"] == 0, figures
