"""The sweep's console for a person: one progress bar over the trials and a line per finished trial.

Ray Tune's own output (a metric table every few seconds) is what ``attrsearch sweep --verbose``
brings back; by default Tune runs at ``verbose=0`` and this callback prints instead.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from ray.tune import Callback


class ConsoleProgress(Callback):
    """A tqdm bar over ``total`` trials, and ``trial ID: status, E epochs, objective = v`` per finished trial."""

    def __init__(self, total: int, objective: str):
        self.total = total
        self.objective = objective
        self._bar: Any = None
        self._done: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:  # the callback is saved with the experiment; the bar is not
        state = dict(self.__dict__)
        state["_bar"] = None
        return state

    def _progress(self) -> Any:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc="trials", unit="trial", file=sys.stderr, dynamic_ncols=True)
            self._bar.update(len(self._done))
        return self._bar

    def _line(self, trial: Any, status: str) -> str:
        result = trial.last_result or {}
        epochs = result.get("epoch")
        value = result.get(self.objective)
        parts = [f"trial {trial.trial_id}: {status}"]
        if isinstance(epochs, (int, float)) and not math.isnan(epochs):
            parts.append(f"{int(epochs)} epochs")
        if isinstance(value, (int, float)) and not math.isnan(value):
            parts.append(f"{self.objective} = {value:.4g}")
        return ", ".join(parts)

    def _finish(self, trial: Any, status: str) -> None:
        if trial.trial_id in self._done:
            return
        self._done.add(trial.trial_id)
        bar = self._progress()
        bar.write(self._line(trial, status))
        bar.update(1)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._progress()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        finished = (trial.last_result or {}).get("trial/finished") == 1.0
        self._finish(trial, "completed" if finished else "stopped early")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "error")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
