"""The quickstart's own results and report, checked as a new user reads them.

These tests need a finished quickstart (minutes of training), so they run on demand, not in
``make test``: ``make quickstart-check`` runs them on ``results/quickstart`` after ``make quickstart``
(and, for the production section, ``attrsearch production results/quickstart --seeds 3``). Point
``ATTRSEARCH_QUICKSTART`` at another finished quickstart folder to check that one. The browser test
leaves a full-page screenshot at ``<folder>/report.png`` for a person to look at.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from attrsearch.analysis.report import SECTIONS, build_report
from attrsearch.analysis.results import read_results
from attrsearch.analysis.rungs import MIN_TRIALS
from attrsearch.results.trial import RUN_DIR, finite
from tests.analysis.test_report import _chromium, _dump_dom, _section

FOLDER = os.environ.get("ATTRSEARCH_QUICKSTART")
pytestmark = pytest.mark.skipif(
    not FOLDER, reason="needs a finished quickstart: make quickstart-check (sets ATTRSEARCH_QUICKSTART)"
)
OBJECTIVE = "segmentation/iou"
# Sections that apply to every sweep (the others say plainly why they do not apply to this one).
NOT_APPLICABLE = {
    "matrix": "architectures are fixed in this sweep",
    "pareto": "optimises one objective",
    "follows": "This sweep measured no dependence",
}


@pytest.fixture(scope="module")
def root() -> Path:
    path = Path(FOLDER or ".")
    if not (path / "sweep.yaml").is_file():
        pytest.fail(f"ATTRSEARCH_QUICKSTART={path}: no sweep.yaml there (run make quickstart first)")
    return path


@pytest.fixture(scope="module")
def report(root, tmp_path_factory) -> Path:
    return build_report(root, tmp_path_factory.mktemp("quickstart") / "report.html")


def _val_curve(trial) -> list[float]:
    """The trial's val IoU per epoch from its run's history (the fast suite on the validation split; Ray's
    result.json, which ``learning_curve`` prefers, ends with the final suite instead)."""
    history = json.loads((trial.folder / RUN_DIR / "history.json").read_text())
    records = next(iter(history.values())) if isinstance(history, dict) else history
    return [float(r[OBJECTIVE]) for r in records if finite(r.get(OBJECTIVE))]


def test_a_small_real_study(root):
    r = read_results(root)
    done = r.by_status("completed")
    assert len(r.trials) >= 20, f"{len(r.trials)} trials"
    assert not r.by_status("error"), [t.error for t in r.by_status("error")]
    assert len(done) >= max(MIN_TRIALS.values()), f"{len(done)} completed trials"
    moves = {t.trial_id: abs(c[-1] - c[-2]) for t in done if len(c := _val_curve(t)) >= 2}
    assert len(moves) == len(done)
    unconverged = {k: round(v, 4) for k, v in moves.items() if v >= 0.01}
    assert not unconverged, f"val IoU still moving by >= 0.01 over the last two epochs: {unconverged}"


def test_every_section_has_content(report, root):
    text = report.read_text()
    assert "needs at least" not in text and "more trials needed" not in text
    importance = _section(text, "importance")
    assert "completed trials (final suite)" in importance and "bootstrap resamples" in importance
    assert "plotly-graph-div" in importance and "plotly-graph-div" in _section(text, "dependence")
    assert "plotly-graph-div" in _section(text, "agreement")
    base = _section(text, "recommendation")
    assert "Against the base configuration" in base
    assert "no trial has the base" not in base and "start_from_base was off" not in base
    stopping = _section(text, "stopping")
    assert "grace period" in stopping and "plotly-graph-div" in stopping
    assert _section(text, "galleries").count('width="128"') >= 10
    for sid, why in NOT_APPLICABLE.items():
        assert why in _section(text, sid) or "plotly-graph-div" in _section(text, sid), sid
    if (root / "production").is_dir():
        production = _section(text, "production")
        assert "paired" in production and "faithfulness" in production, production[:500]


def test_report_in_a_headless_browser_with_a_screenshot(report, root, tmp_path):
    browser = _chromium()
    dom, log = _dump_dom(browser, report, tmp_path)
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom
    assert dom.count('class="plot-container plotly"') >= 6 and "main-svg" in dom
    errors = re.search(r'<div id="js-errors"[^>]*>(.*?)</div>', dom, flags=re.DOTALL)
    assert errors and errors.group(1).strip() == "", errors.group(1)
    assert "Uncaught" not in log
    shot = root / "report.png"
    subprocess.run(  # noqa: PLW1510 - checked through the file below
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'shot-profile'}",
            "--virtual-time-budget=10000",
            "--window-size=1300,16000",
            f"--screenshot={shot}",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=180,
    )
    assert shot.is_file() and shot.stat().st_size > 50_000
