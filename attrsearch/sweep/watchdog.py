"""A trial that stops reporting (a deadlocked data loader, a hung collective) is ended, not waited for.

``ReportWatchdog`` runs as a daemon thread inside the trial's worker process. The trial feeds it at
every report; when ``timeout_s`` passes without one, it calls ``on_timeout`` with the reason
("no report for 31 s after epoch 4 (trial_report_timeout_s=30)"). The trial's handler
(``trainable.hung_trial``) writes the reason into the trial folder (``no_report.txt``) and ends the
worker process (``os._exit(HUNG_EXIT_CODE)``): a thread blocked in C code cannot be interrupted, and
Ray records a dead worker as a failed trial, which Tune retries from its last checkpoint within
``max_failures``.

The clock starts when the trial starts training (after its imports, its checkpoint restore and its
Explananda fetch; the Explananda themselves are trained before any trial starts) and restarts at
each report, so the timeout must cover building the trial's datasets plus its first epoch, and its
longest epoch with that epoch's evaluation (the last one also writes the mask gallery). Time spent inside ``tune.report`` (waiting for the driver, retrying uploads) is not
counted (``paused``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HUNG_EXIT_CODE = 75  # EX_TEMPFAIL: the worker ended itself, the trial may be retried
REASON_FILE = "no_report.txt"


class ReportWatchdog:
    """Calls ``on_timeout(reason)`` once if ``feed`` is not called for ``timeout_s`` seconds (outside ``paused``).

    ``clock`` and ``poll_s`` exist for tests (a fake clock; the thread checks every ``poll_s``).
    """

    def __init__(
        self,
        timeout_s: float,
        on_timeout: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        poll_s: float | None = None,
    ):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 (got {timeout_s})")
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout
        self.clock = clock
        self.poll_s = poll_s if poll_s is not None else min(1.0, timeout_s / 10)
        self.fired: str | None = None
        self._last = clock()
        self._epoch: int | None = None
        self._paused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ReportWatchdog:
        self._last = self.clock()
        self._thread = threading.Thread(target=self._watch, name="attrsearch-report-watchdog", daemon=True)
        self._thread.start()
        return self

    def feed(self, epoch: int | None = None) -> None:
        """A report arrived (after ``epoch``): the clock restarts."""
        with self._lock:
            self._last = self.clock()
            if epoch is not None:
                self._epoch = epoch

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time inside this block does not count (the clock restarts when it ends)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1
                self._last = self.clock()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def reason(self, waited: float) -> str:
        after = f"after epoch {self._epoch}" if self._epoch is not None else "since training started"
        return f"no report for {waited:.0f} s {after} (trial_report_timeout_s={self.timeout_s:g})"

    def check(self) -> bool:
        """One look at the clock; True (and ``on_timeout`` called) when the timeout has passed."""
        with self._lock:
            if self._paused or self.fired is not None:
                return False
            waited = self.clock() - self._last
            if waited < self.timeout_s:
                return False
            self.fired = self.reason(waited)
        self.on_timeout(self.fired)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self.check():
                return
