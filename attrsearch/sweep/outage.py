"""The driver's side of a storage outage: a trial that gave up on storage stops the sweep as Ctrl-C does.

A trial retries its uploads (``storage.with_retries``); past ``storage_retry`` it fails with
``StorageUnavailable``. ``StopOnStorageOutage`` (a Tune callback) reads that cause in the failed
trial's error file (the driver's local copy: storage is down) and interrupts Tune through its own
SIGINT handler, so every trial keeps its status and its last stored checkpoint, as after Ctrl-C:
retrying the trial, or starting others, against storage that does not answer would only fail them
too. ``run`` then prints the reason and the ``--resume`` command and exits with status 3.

Each failed attempt's line (``storage s3://... unreachable (attempt 2/5): ...; retrying in 4 s``)
goes from the trial to the driver's console through Ray's key-value store (``tell_driver``; the
workers' own output reaches the console only with ``--verbose``), printed by the same callback.

While storage is down, Ray's own periodic upload of the experiment state fails as well (Ray logs
the error and tries again at its next snapshot); the stop's final snapshot fails too, so ``--resume``
starts from the last snapshot that reached storage, and each trial from its last checkpoint there
(``recovery.latest_checkpoint``: a checkpoint the snapshot does not list yet is found in storage; a
trial whose final checkpoint is there reports its result again without training).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

CAUSE = "StorageUnavailable"
_KV_NAMESPACE = "attrsearch"
_stopped: list[str] = []  # the reason of this driver's stop (one sweep runs per driver process)


def reset() -> None:
    _stopped.clear()


def stopped() -> str | None:
    """Why the sweep was stopped for its storage (None: it was not)."""
    return _stopped[0] if _stopped else None


def storage_cause(error_text: str) -> str | None:
    """The ``StorageUnavailable`` message of the last failure in a trial's error file, if that was its cause."""
    last = error_text.rsplit("Failure # ", 1)[-1]
    lines = [line.strip() for line in last.splitlines() if f"{CAUSE}: " in line]
    return lines[-1].split(f"{CAUSE}: ", 1)[1] if lines else None


def _kv_prefix(experiment: str) -> str:
    return f"console/{experiment}/"


def tell_driver(experiment: str, line: str) -> None:
    """From a trial: a console line for the driver of sweep ``experiment`` (and the worker's stderr):
    storage retries, a trial the report watchdog ended."""
    import sys

    print(line, file=sys.stderr, flush=True)
    try:
        from ray.experimental import internal_kv

        key = f"{_kv_prefix(experiment)}{time.time_ns():020d}-{os.getpid()}"
        internal_kv._internal_kv_put(key, line.encode(), namespace=_KV_NAMESPACE)
    except Exception:  # no Ray session (a unit test): stderr only
        pass


def driver_lines(experiment: str) -> list[str]:
    """The lines trials sent with ``tell_driver`` since the last call, oldest first (taken out of the store)."""
    from ray.experimental import internal_kv

    keys = sorted(internal_kv._internal_kv_list(_kv_prefix(experiment), namespace=_KV_NAMESPACE))
    lines = []
    for key in keys:
        value = internal_kv._internal_kv_get(key, namespace=_KV_NAMESPACE)
        internal_kv._internal_kv_del(key, namespace=_KV_NAMESPACE)
        if value:
            lines.append(value.decode(errors="replace"))
    return lines


def interrupt_tune() -> None:
    """What Ctrl-C does: Tune's SIGINT handler (installed while ``Tuner.fit`` runs) ends the run."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and getattr(handler, "__name__", "") == "signal_interrupt_tune_run":
        handler(signal.SIGINT, None)
    else:  # TUNE_DISABLE_SIGINT_HANDLER: a KeyboardInterrupt, as a terminal's Ctrl-C
        os.kill(os.getpid(), signal.SIGINT)


class StopOnStorageOutage(Callback):
    """Prints the trials' console lines (``tell_driver``) and stops the sweep when a trial failed
    with ``StorageUnavailable`` (``stopped`` says why)."""

    def __init__(self, experiment: str, poll_s: float = 0.5):
        self.experiment = experiment
        self.poll_s = poll_s
        self._polled = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "poll_s": self.poll_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def _print_lines(self) -> None:
        self._polled = time.monotonic()
        try:
            lines = driver_lines(self.experiment)
        except Exception:  # Ray's store unavailable: the lines stay in the workers' logs
            return
        for line in lines:
            print(line, flush=True)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._polled >= self.poll_s:
            self._print_lines()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._print_lines()

    def _check(self, trial: Any) -> None:
        if _stopped:
            return
        path = getattr(trial, "error_file", None)
        try:
            text = Path(path).read_text(errors="replace") if path else ""
        except OSError:
            return
        cause = storage_cause(text)
        if cause:
            _stopped.append(f"trial {trial.trial_id}: {cause}")
            interrupt_tune()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print_lines()
        self._check(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print_lines()
        self._check(trial)
