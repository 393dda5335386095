"""Time ``attrsearch report`` on a large synthetic sweep (goal: <= 60 s for 1,000 trials).

Usage: ``python analysis/benchmarks/bench_report.py [--trials 1000] [--resamples 20] [--keep DIR]``

The results folder is written by the test suite's writer (``tests/support/results_folders.py``), which
mirrors the layout ``attrsearch sweep`` produces: ``sweep.yaml``, ``trials.csv``, a folder per
trial with Ray's ``result.json`` lines, ``run/metrics.json``, ``run/history.json``, tables and a
mask gallery; 3 seeds, both architectures searched, 3 objectives, 1 in 5 trials stopped early.
Prints seconds for reading, each section and the whole report, and the file size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from attrsearch.analysis import report  # noqa: E402
from attrsearch.analysis.results import read_results  # noqa: E402
from tests.support.results_folders import write_results  # noqa: E402  (the repository, on the path above)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=20)
    parser.add_argument(
        "--keep", default=None, help="write the results folder and report here (default: a temp folder)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        t0 = time.perf_counter()
        folder = write_results(root, n=args.trials, error_trials=max(1, args.trials // 100))
        print(f"wrote {args.trials} synthetic trials in {time.perf_counter() - t0:.1f} s: {folder}")

        t0 = time.perf_counter()
        r = read_results(folder)
        print(f"read_results: {time.perf_counter() - t0:.2f} s ({r.counts()})")
        page = report.Page()
        sections = [
            ("summary", lambda: report.section_summary(r, [])),
            ("leaderboard", lambda: report.section_leaderboard(r)),
            ("importance", lambda: report.section_importance(r, page, args.resamples)),
            ("dependence", lambda: report.section_dependence(r, page)),
            ("matrix", lambda: report.section_matrix(r, page)),
            ("pareto", lambda: report.section_pareto(r, page)),
            ("agreement", lambda: report.section_agreement(r, page)),
            ("galleries", lambda: report.section_galleries(r, page)),
            ("curves", lambda: report.section_curves(r, page)),
            ("recommendation", lambda: report.section_recommendation(r)),
        ]
        for name, fn in sections:
            t0 = time.perf_counter()
            fn()
            print(f"  {name:15s} {time.perf_counter() - t0:6.2f} s")

        t0 = time.perf_counter()
        out = report.build_report(folder, folder / "report.html", resamples=args.resamples)
        total = time.perf_counter() - t0
        size = out.stat().st_size / 1e6
        verdict = "within" if total <= 60 else "OVER"
        print(
            f"build_report ({args.trials} trials, {args.resamples} resamples): {total:.1f} s, {size:.1f} MB "
            f"({verdict} the 60 s goal)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
