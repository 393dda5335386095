"""Ray's ``OptunaSearch`` with the study in an Optuna journal file in the sweep's results folder.

Why: Ray pickles its searcher (``searcher-state-*.pkl``) with each experiment snapshot, and restores
it on ``Tuner.restore``; that copy can be older than the trials the driver had already started, and an
in-memory study is lost with any copy that fails (Ray issue #30861: a restored Tuner continued with a
searcher that had forgotten its history). Here the study lives in ``JournalStorage(JournalFileBackend)``
(``optuna.journal`` beside Ray's experiment state, appended to at every ask and tell), so:

- the TPE/GP/NSGA-II history after a resume is every trial the sweep ever asked for, and sampling
  continues it (the seeded sampler does not start over);
- ``optuna-dashboard <results>/<sweep>/optuna.journal`` shows the study while the sweep runs.

A journal storage holds a lock and cannot be pickled: the pickled state keeps the journal path, the
sampler (with its RNG) and Tune's trial id -> Optuna trial number map, and re-opens the study from the
journal on unpickling. On ``restore`` the Optuna trials still RUNNING that the restored map does not
know (asked after the last snapshot; Tune will ask anew) are marked FAIL so that they do not count as
pending for the sampler.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ray.air.constants import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from attrsearch.sweep.recovery import REPLAYED_KEY

JOURNAL_FILE = "optuna.journal"


def journal_storage(path: str | Path) -> Any:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


class JournalOptunaSearch(OptunaSearch):
    """``OptunaSearch(storage=JournalStorage(JournalFileBackend(journal_path)))``, picklable and restorable."""

    def __init__(self, *args: Any, journal_path: str, **kwargs: Any):
        self._journal_path = str(journal_path)
        super().__init__(*args, storage=journal_storage(journal_path), **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_storage"] = None
        state["_ot_study"] = None
        state["_ot_trials"] = {tid: t._trial_id for tid, t in self._ot_trials.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import optuna

        ids = state.pop("_ot_trials", {})
        self.__dict__.update(state)
        self._storage = journal_storage(self._journal_path)
        self._ot_study = optuna.load_study(study_name=self._study_name, storage=self._storage, sampler=self._sampler)
        self._ot_trials = {tid: optuna.trial.Trial(self._ot_study, trial_id) for tid, trial_id in ids.items()}

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__getstate__(), fh)

    def restore(self, checkpoint_path: str) -> None:
        import optuna

        with open(checkpoint_path, "rb") as fh:
            self.__setstate__(pickle.load(fh))
        known = {t._trial_id for t in self._ot_trials.values()}
        for trial in self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if trial._trial_id not in known:
                self._ot_study.tell(trial.number, state=optuna.trial.TrialState.FAIL)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate values at step = epoch: Tune's ``training_iteration`` restarts from the
        checkpoint Tune registered when a trial resumes from the ledger's newer one, and Optuna
        drops a value at a step it has. A replayed final result (logged before) is not reported."""
        if result.get(REPLAYED_KEY):
            return
        if "epoch" in result:
            result = {**result, TRAINING_ITERATION: int(result["epoch"])}
        super().on_trial_result(trial_id, result)

    def history(self) -> list[Any]:
        """Every trial of the study (for tests and reports)."""
        return self._ot_study.get_trials(deepcopy=False)
