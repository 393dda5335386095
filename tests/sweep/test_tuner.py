"""The Tuner a sweep file builds (no Ray needed to build one)."""

from __future__ import annotations

import pytest

from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.tuner import build_tuner
from tests.support.sweep_files import sweep_dict, write_sweep


@pytest.mark.parametrize(("fields", "reuse"), [({}, True), ({"reuse_actors": False}, False)])
def test_trials_reuse_their_worker_process_unless_the_file_says_not(tmp_path, fields, reuse):
    tuner = build_tuner(load_sweep(write_sweep(tmp_path, sweep_dict(storage=str(tmp_path / "r"), **fields))))
    # Tune's Tuner keeps its TuneConfig on the local tuner; there is no public getter.
    assert tuner._local_tuner._tune_config.reuse_actors is reuse


@pytest.mark.parametrize(("scheduler", "listed", "retain"), [("none", None, True), ("pbt", 4, False)])
def test_tune_deletes_no_checkpoint_and_the_ledger_keeps_one_except_under_pbt(tmp_path, scheduler, listed, retain):
    """Tune forces a whole-experiment snapshot once a trial has checkpointed ``num_to_keep`` times since
    the last one; with 1 that is every checkpoint (a cost that grows with the trial count)."""
    from attrsearch.sweep.recovery import CheckpointLedger

    sched = {"name": "pbt", "perturbation_interval": 2} if scheduler == "pbt" else {"name": "none"}
    tuner = build_tuner(load_sweep(write_sweep(tmp_path, sweep_dict(storage=str(tmp_path / "r"), scheduler=sched))))
    run_config = tuner._local_tuner._run_config
    assert run_config.checkpoint_config.num_to_keep == listed
    (ledger,) = [cb for cb in run_config.callbacks if isinstance(cb, CheckpointLedger)]
    assert ledger.retain is retain
