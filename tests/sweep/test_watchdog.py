"""The report watchdog on its own: a fake clock, a callback instead of ending the process."""

from __future__ import annotations

import threading
import time

import pytest

from attrsearch.sweep.watchdog import ReportWatchdog


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fires_once_after_the_timeout_without_a_report_and_names_the_last_epoch():
    clock, calls = FakeClock(), []
    dog = ReportWatchdog(5.0, calls.append, clock=clock)
    clock.now += 4.9
    assert not dog.check()
    dog.feed(1)
    clock.now += 4.9  # 9.8 s since the start, 4.9 s since the report
    assert not dog.check() and calls == []
    clock.now += 0.2
    assert dog.check()
    assert calls == ["no report for 5 s after epoch 1 (trial_report_timeout_s=5)"]
    clock.now += 100
    assert not dog.check() and len(calls) == 1  # once


def test_before_the_first_report_the_clock_counts_from_the_start():
    clock, calls = FakeClock(), []
    dog = ReportWatchdog(2.5, calls.append, clock=clock)
    clock.now += 3
    assert dog.check()
    assert calls == ["no report for 3 s since training started (trial_report_timeout_s=2.5)"]


def test_time_inside_a_report_does_not_count():
    clock, calls = FakeClock(), []
    dog = ReportWatchdog(5.0, calls.append, clock=clock)
    with dog.paused():
        clock.now += 60  # a slow upload, the driver busy
        assert not dog.check()
    clock.now += 4.9
    assert not dog.check() and calls == []


def test_the_thread_calls_back_a_hung_trial_and_stays_quiet_for_a_fed_one():
    fired = threading.Event()
    reasons = []
    dog = ReportWatchdog(0.3, lambda r: (reasons.append(r), fired.set()), poll_s=0.02).start()
    for epoch in range(1, 6):  # fed every 0.1 s: never fires
        time.sleep(0.1)
        dog.feed(epoch)
    assert not fired.is_set()
    assert fired.wait(3.0)  # then silent: fires within the timeout and a poll
    dog.stop()
    assert len(reasons) == 1 and reasons[0].endswith("after epoch 5 (trial_report_timeout_s=0.3)")

    quiet = ReportWatchdog(0.3, reasons.append, poll_s=0.02).start()
    quiet.stop()  # a trial that ended: the thread is gone, nothing fires
    time.sleep(0.5)
    assert len(reasons) == 1


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="> 0"):
        ReportWatchdog(0, print)
