"""The Tuner a sweep file builds (no Ray needed to build one)."""

from __future__ import annotations

import pytest
from sweep_files import sweep_dict, write_sweep

from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.tuner import build_tuner


@pytest.mark.parametrize(("fields", "reuse"), [({}, True), ({"reuse_actors": False}, False)])
def test_trials_reuse_their_worker_process_unless_the_file_says_not(tmp_path, fields, reuse):
    tuner = build_tuner(load_sweep(write_sweep(tmp_path, sweep_dict(storage=str(tmp_path / "r"), **fields))))
    # Tune's Tuner keeps its TuneConfig on the local tuner; there is no public getter.
    assert tuner._local_tuner._tune_config.reuse_actors is reuse
