"""Ray's bookkeeping as a share of the summed trial time, read from a finished sweep's results folder.

    make quickstart   # or any sweep
    .venv/bin/python analysis/benchmarks/bench_quickstart_bookkeeping.py results/quickstart

Every report of a trial carries the trial's wall clock (``trial/started_at``: the trainable began;
``trial/reported_at``: this report was sent; ``trial/report_wait_s``: seconds spent inside earlier
``tune.report`` calls). Trial time = last report - start, summed over trials. Ray's bookkeeping =

- the gaps in which a trial slot (``max_concurrent_trials``, or the CPUs over the trial's CPUs) was
  free while trials were still waiting: a finished trial's actor going away, the next one being
  scheduled, started and handed its config (slots are assigned greedily in start order);
- the time trials spent inside ``tune.report`` (the result handed to the driver, the checkpoint
  persisted to storage; counted in full, though copying our own checkpoint is part of it);
- the start of the first trial after the Tuner began (``sweep.yaml`` is written just before
  ``Tuner.fit``).

The end of the sweep (one slot idle while the last trial finishes) is not bookkeeping and is shown
apart. Results written before these keys existed fall back to Ray's integer ``timestamp`` (1 s
resolution; the printout says so). The issue's goal: under 5% of the summed trial time.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import yaml

from attrsearch.analysis.results import read_result_lines


def trial_spans(exp: Path) -> tuple[list[dict[str, float]], bool]:
    """Per trial (start, end, report wait, reports) and whether the precise clock was present."""
    spans, precise = [], True
    for result in sorted(exp.glob("*/result.json")):
        rows = read_result_lines(result.parent)
        if not rows:
            continue
        first, last = rows[0], rows[-1]
        if "trial/started_at" in last:
            start, end = float(last["trial/started_at"]), float(last["trial/reported_at"])
            wait = float(last["trial/report_wait_s"])  # earlier reports; the last one's own wait is unknown
        else:
            precise = False
            start, end, wait = (
                float(first["timestamp"]) - float(first["time_this_iter_s"]),
                float(last["timestamp"]),
                0.0,
            )
        spans.append({"trial": result.parent.name, "start": start, "end": end, "wait": wait, "reports": len(rows)})
    return sorted(spans, key=lambda s: s["start"]), precise


def slots_of(exp: Path) -> int:
    sweep = yaml.safe_load((exp / "sweep.yaml").read_text()) or {}
    concurrent = sweep.get("max_concurrent_trials")
    cpus = float((sweep.get("resources_per_trial") or {}).get("cpu", 1))
    by_cpus = max(1, int((os.cpu_count() or 1) // max(cpus, 1e-9)))
    return int(concurrent) if concurrent else by_cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a sweep's experiment folder (e.g. results/quickstart)")
    parser.add_argument("--slots", type=int, default=None, help="concurrent trials (default: from sweep.yaml)")
    args = parser.parse_args()
    exp = args.results
    spans, precise = trial_spans(exp)
    if not spans:
        raise SystemExit(f"{exp}: no trial result.json files")
    slots = args.slots or slots_of(exp)
    fit_start = (exp / "sweep.yaml").stat().st_mtime
    trial_time = sum(s["end"] - s["start"] for s in spans)
    free = [min(fit_start, spans[0]["start"])] * slots
    gaps = []
    for s in spans:
        free.sort()
        gaps.append(max(0.0, s["start"] - free[0]))
        free[0] = s["end"]
    waits = sum(s["wait"] for s in spans)
    end = max(s["end"] for s in spans)
    tail = sum(end - f for f in sorted(free)[:-1])  # slots idle after their last trial
    status = {}
    if (exp / "trials.csv").is_file():
        with open(exp / "trials.csv") as fh:
            for row in csv.DictReader(fh):
                status[row["trial_id"]] = row.get("status", "")
    print(
        f"{exp}: {len(spans)} trials, {slots} slots, clock: {'trial wall clock' if precise else 'Ray timestamp (1 s)'}"
    )
    print(
        f"{'trial':>10} {'start s':>8} {'end s':>8} {'time s':>7} {'reports':>7} {'gap s':>6} {'in report s':>11}  status"
    )
    t0 = min(fit_start, spans[0]["start"])
    for s, gap in zip(spans, gaps):
        print(
            f"{s['trial']:>10} {s['start'] - t0:8.1f} {s['end'] - t0:8.1f} {s['end'] - s['start']:7.1f} "
            f"{s['reports']:7d} {gap:6.2f} {s['wait']:11.2f}  {status.get(s['trial'], '')}"
        )
    book = sum(gaps) + waits
    print(f"summed trial time           {trial_time:8.1f} s")
    print(f"gaps between trials         {sum(gaps):8.1f} s  (first trial after Tuner start: {gaps[0]:.1f} s)")
    print(f"inside tune.report          {waits:8.1f} s")
    print(
        f"Ray bookkeeping             {book:8.1f} s  = {100 * book / trial_time:.1f}% of the summed trial time (goal < 5%)"
    )
    print(f"sweep span {end - t0:.1f} s; slots idle at the end (not bookkeeping): {tail:.1f} s")


if __name__ == "__main__":
    main()
