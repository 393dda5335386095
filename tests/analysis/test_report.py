"""The HTML report: sections, numbers, offline plotly, the CLI, and a headless-browser check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from attrsearch.analysis import stats
from attrsearch.analysis.report import SECTIONS, build_report
from attrsearch.analysis.results import read_results
from attrsearch.cli import main
from attrsearch.errors import UserError
from tests.support.results_folders import write_dependence_results, write_results


@pytest.fixture(scope="module")
def report(synthetic, tmp_path_factory) -> Path:
    return build_report(synthetic, tmp_path_factory.mktemp("out") / "report.html", resamples=5)


def _section(text: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', text, flags=re.DOTALL)
    assert match, sid
    return match.group(1)


def test_every_section_with_heading_and_plotly_inlined_once(report):
    text = report.read_text()
    for sid, title in SECTIONS.items():
        assert f'<section id="{sid}"><h2>{title}</h2>' in text
        assert f'href="#{sid}"' in text  # table of contents
    assert text.count("plotly.js v") >= 1 and len(re.findall(r"<script[^>]*\bsrc=", text)) == 0  # no CDN or file
    bundles = len(re.findall(r"\*\s*plotly\.js v\d", text))
    assert bundles == 1
    assert text.count('class="plotly-graph-div"') >= 10
    assert "could not be drawn" not in text  # no section fell back to its error note


def test_numbers_in_the_sections(report, synthetic):
    text = report.read_text()
    r = read_results(synthetic)
    summary = _section(text, "summary")
    assert "19 completed, 1 error, 4 stopped" in summary and "RuntimeError: CUDA out of memory" in summary
    assert "3 per configuration (0, 1, 2)" in summary and "loguniform [0.01, 1]" in summary
    assert "470 s" in summary  # 24 trials 20 s apart, the last one 10 s long
    board = _section(text, "leaderboard")
    best = stats.ranked(r.by_status("completed"), "segmentation/iou", "max")[0]
    mean, std = best.metrics["segmentation/iou"], best.metrics["segmentation/iou_std"]
    lo, hi = stats.confidence_interval(mean, std, 3)
    assert f"{best.trial_id}</td>" in board.split("<tr>")[2]  # first data row
    assert f"{mean:.4g} ± {std:.2g}" in board and f"[{lo:.4g}, {hi:.4g}]" in board
    assert "Stopped early by the scheduler" in board and board.count('class="stopped"') == 5  # heading + 4 rows
    assert "↓ lower is better" in board  # deletion AUC
    shares = stats.anova(r, "segmentation/iou").shares
    assert f"{shares['explanandum.arch']:.1%}" in _section(text, "matrix")
    front = {t.trial_id for t in stats.pareto(r).front}
    assert f"{len(front)} trials on the front" in _section(text, "pareto")
    rec = stats.recommend(r)
    assert f"Train trial {rec.trial.trial_id}" in _section(text, "recommendation")
    assert "attrsearch train" in _section(text, "recommendation")
    assert _section(text, "galleries").count("data:image/png;base64,") >= 3 * 5
    assert "importance (19 completed trials (final suite))" in _section(text, "importance")
    stopping = _section(text, "stopping")  # the planted curves keep their final order at every epoch
    assert "grace period" in stopping and "100%" in stopping and "ranks the trials well" in stopping


def test_sections_without_data_say_why(real_tiny, tmp_path):
    text = build_report(real_tiny, tmp_path / "r.html", resamples=3).read_text()
    importance = _section(text, "importance")
    assert "Only 1 completed trials report segmentation/iou; importance needs at least 10" in importance
    assert "no epoch was reached by 10 trials (at most 5): 5 more trials needed" in importance
    assert "share one value" in _section(text, "matrix")
    assert "This sweep measured no dependence" in _section(text, "follows")
    assert "a rank correlation needs at least 10" in _section(text, "agreement")
    assert "plotly-graph-div" not in _section(text, "agreement")  # no matrix from 5 trials
    assert "8bb00_00001" in _section(text, "galleries")  # the real gallery and class-specific table
    assert "Class-specific matrix of trial 8bb00_00001" in text
    single = write_results(tmp_path / "single", n=6, objectives=("segmentation/iou",), archs=False, seeds=None)
    text = build_report(single, tmp_path / "s.html", resamples=3).read_text()
    assert "optimises one objective" in _section(text, "pareto")
    assert "architectures are fixed in this sweep (Explanandum small_cnn, Explainer explanandum_encoder)" in _section(
        text, "matrix"
    )
    assert "one seed per trial" in _section(text, "recommendation")


def test_no_finished_trial_and_unwritable_out(real_running, synthetic, tmp_path, capsys):
    with pytest.raises(UserError, match="no finished trial yet"):
        build_report(real_running, tmp_path / "x.html")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["report", str(synthetic), "--out", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attrsearch: error: ") and "cannot write the report" in err and err.count("\n") == 1


def test_cli_default_out(tmp_path, capsys):
    root = write_results(tmp_path, n=6, archs=False)
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out.strip() == str(root / "report.html")
    assert (root / "report.html").stat().st_size > 1_000_000  # plotly.js inside


# ----------------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("headless Chromium is required in CI (apt-get install chromium, or set CHROMIUM)")
        pytest.skip("no chromium on PATH (set CHROMIUM to run the browser check)")
    return path


def _dump_dom(browser: str, page: Path, tmp_path: Path) -> tuple[str, str]:
    proc = subprocess.run(  # noqa: PLW1510 - the return code is asserted below with the log
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def test_report_renders_in_a_headless_browser(report, tmp_path):
    browser = _chromium()
    dom, log = _dump_dom(browser, report, tmp_path)
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom
    assert dom.count('class="plot-container plotly"') >= 10 and "main-svg" in dom  # plotly drew the figures
    errors = re.search(r'<div id="js-errors"[^>]*>(.*?)</div>', dom, flags=re.DOTALL)
    assert errors and errors.group(1).strip() == "", errors.group(1)
    assert "Uncaught" not in log


def test_follows_section_in_a_headless_browser(tmp_path):
    """The section "Does the explanation follow the classifier?" from a small dependence results folder:
    drawn by plotly in the browser, with the planted verdicts, deltas and the extras' notes."""
    folder = write_dependence_results(tmp_path / "results", cases=24)
    page = build_report(folder, tmp_path / "report.html", resamples=3)
    html = _section(page.read_text(), "follows")
    assert "could not be drawn" not in html
    assert "True cue effect vs attributed reliance" in html and "plotly-graph-div" in html
    rows = {m.group(1): m.group(2) for m in re.finditer(r"<tr><td>(\w+) <small>.*?<b>([\w ]+)</b>", html)}
    assert rows["gradcam"] == "follows" and rows["wysiwyc"] == "salience", rows
    assert "Model-free deltas" in html and ">0.15<" in html  # gradcam IoU minus center's
    assert "No randomised-retrain test" in html and "No encoding probe" in html
    (folder / "randomisation.json").write_text(
        '{"split": "test", "images": 8, "metrics": {"randomisation/reseed/ssim": 0.8, "randomisation/control/ssim": 0.1,'
        ' "randomisation/random_init/ssim": 0.2, "randomisation/random_init/ssim/index": 0.75,'
        ' "randomisation/random_init/ssim/index_low": 0.6, "randomisation/random_init/ssim/index_high": 0.9}}'
    )
    (folder / "probe.json").write_text(
        '{"member": "confound p_train=1", "sources": {"gradcam": {"probe/accuracy": 0.7,'
        ' "probe/control_accuracy": 0.6, "probe/encoding_excess": 0.1}}}'
    )
    assert "Model randomisation of the baselines" not in html  # no randomisation_methods.json yet
    (folder / "randomisation_methods.json").write_text(
        '{"member": "confound p_train=1", "sources": {"rise": {"metrics": {"randomisation/reseed/top10": 0.9,'
        ' "randomisation/control/top10": 0.1, "randomisation/shuffled_labels/top10": 0.45,'
        ' "randomisation/shuffled_labels/top10/index": 0.5, "randomisation/shuffled_labels/top10/index_low": 0.41,'
        ' "randomisation/shuffled_labels/top10/index_high": 0.58}}}}'
    )
    page = build_report(folder, tmp_path / "report2.html", resamples=3)
    html = _section(page.read_text(), "follows")
    assert "random_init" in html and "[0.6, 0.9]" in html and "Encoding probe" in html and ">0.1<" in html
    assert "Model randomisation of the baselines" in html and "<td>rise</td>" in html and "[0.41, 0.58]" in html
    browser = _chromium()
    dom, log = _dump_dom(browser, page, tmp_path)
    section = re.search(r'<section id="follows">(.*?)</section>', dom, flags=re.DOTALL)
    assert section and 'class="plot-container plotly"' in section.group(1) and "main-svg" in section.group(1)
    assert section.group(1).count('class="scatterlayer') >= 1
    errors = re.search(r'<div id="js-errors"[^>]*>(.*?)</div>', dom, flags=re.DOTALL)
    assert errors and errors.group(1).strip() == "", errors.group(1)
    assert "Uncaught" not in log


def test_follows_section_of_a_real_tiny_sweep(tmp_path):
    """The real tiny dependence sweep (tests/analysis/data/dependence_tiny, with the randomisation.json and
    probe.json that analysis/dependence_extras.py wrote for it): every part of the section is drawn."""
    folder = Path(__file__).parent / "data" / "dependence_tiny"
    html = _section(build_report(folder, tmp_path / "r.html", resamples=3).read_text(), "follows")
    assert "could not be drawn" not in html and "plotly-graph-div" in html
    assert "Model-free deltas" in html and "shuffled_labels" in html and "Encoding probe" in html
    assert "No randomised-retrain test" not in html and "No encoding probe" not in html


def test_browser_check_sees_a_javascript_error(report, tmp_path):
    """The same check on a copy with a broken script: proves the check can fail."""
    browser = _chromium()
    broken = tmp_path / "broken.html"
    broken.write_text(report.read_text().replace("</body>", "<script>notDefinedAnywhere();</script></body>"))
    dom, log = _dump_dom(browser, broken, tmp_path)
    errors = re.search(r'<div id="js-errors"[^>]*>(.*?)</div>', dom, flags=re.DOTALL)
    assert "notDefinedAnywhere" in errors.group(1)
    assert "Uncaught" in log


def test_recommendation_against_the_base_and_reproducibility(tmp_path):
    import yaml

    from attrsearch.results.choice import base_trial

    root = write_results(tmp_path, n=12, archs=False, stopped_every=0, error_trials=0)
    r = read_results(root)
    text = build_report(root, tmp_path / "none.html", resamples=2).read_text()
    assert "No trial ran the base configuration (start_from_base was off)" in _section(text, "recommendation")
    # make the worst completed trial the base: the recommendation beats it, the sentence says by how much
    worst = stats.ranked(r.by_status("completed"), "segmentation/iou", "max")[-1]
    data = yaml.safe_load((root / "sweep.yaml").read_text())
    for path, value in worst.values.items():
        node = data["base"]
        *head, last = path.split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[last] = value
    data["start_from_base"] = True
    (root / "sweep.yaml").write_text(yaml.safe_dump(data))
    r = read_results(root)
    assert base_trial(r.trials, stats.base_values(r)).trial_id == worst.trial_id
    rec = stats.recommend(r)
    versus = stats.compare_with_base(r, rec.trial, "segmentation/iou")
    assert versus.gain.verdict == "beats" and "Welch t-interval over 3 seeds" in versus.sentence
    text = build_report(root, tmp_path / "base.html", resamples=2).read_text()
    section = _section(text, "recommendation")
    assert f"Trial {rec.trial.trial_id} beats the base (trial {worst.trial_id})" in section
    assert f"difference {versus.gain.diff:+.4g}, 95% interval [{versus.gain.low:+.4g}" in section
    repro = _section(text, "reproducibility")
    assert "torch " in repro and "optuna_tpe (" in repro and "n_startup_trials=4" in repro and "[0, 1, 2]" in repro
    assert "FanovaImportanceEvaluator (n_trees=16, max_depth=8" in repro


def test_gallery_panels_are_heat_maps_with_the_ground_truth_outline():
    import numpy as np

    from attrsearch.analysis.report.galleries import PANEL, heatmap, mask_score

    image = np.full((16, 16, 3), 128, np.uint8)
    mask = np.zeros((16, 16), np.float32)
    mask[4:8, 4:12] = 1.0  # 32 pixels kept
    gt = np.zeros((16, 16), np.uint8)
    gt[4:12, 4:12] = 1  # 64 object pixels, the mask covers half of them
    gt[0, 0] = 255  # void: left out
    out = heatmap(image, mask, gt)
    assert out.shape == (PANEL, PANEL, 3) and PANEL >= 128
    cyan = (out[..., 0] == 0) & (out[..., 1] == 255) & (out[..., 2] == 255)
    s = PANEL // 16
    assert cyan[4 * s, 8 * s] and cyan[8 * s, 4 * s] and not cyan[8 * s, 8 * s]  # on the outline, not inside
    assert out[2 * s, 6 * s].mean() < out[6 * s, 6 * s].mean()  # removed is darker than kept (inferno)
    assert mask_score(mask, gt) == f"IoU 0.5, kept {32 / 256:.0%}"


def test_gallery_and_leaderboard_markup(report):
    text = report.read_text()
    galleries = _section(text, "galleries")
    assert galleries.count('width="128" height="128" title="click to enlarge"') >= 3 * 5
    assert "IoU " in galleries and "red_disc</b>" in galleries
    assert '<table class="board">' in _section(text, "leaderboard")
