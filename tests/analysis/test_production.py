"""The production comparison: recommendation vs base per metric, paired over seeds (values by hand)."""

from __future__ import annotations

import json

import pytest

from attrsearch.analysis import production
from attrsearch.analysis.report import build_report
from tests.support.results_folders import write_results


def _write(root, kind, values):
    for seed, metrics in values.items():
        folder = root / "production" / kind / "seeds" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(metrics))


def test_paired_comparison_by_hand(tmp_path):
    root = write_results(tmp_path, n=6, archs=False, seeds=None)
    best = {
        0: {"segmentation/iou": 0.50, "faithfulness/deletion_auc": 0.30},
        1: {"segmentation/iou": 0.52, "faithfulness/deletion_auc": 0.31},
        2: {"segmentation/iou": 0.48, "faithfulness/deletion_auc": 0.29},
    }
    base = {
        0: {"segmentation/iou": 0.40, "faithfulness/deletion_auc": 0.20},
        1: {"segmentation/iou": 0.40, "faithfulness/deletion_auc": 0.215},
        2: {"segmentation/iou": 0.40, "faithfulness/deletion_auc": 0.19},
    }
    for values in (*best.values(), *base.values()):
        values["sanity/zero/iou"] = 0.0  # a reference map's score: the same for both, left out
    _write(root, "best", best)
    _write(root, "base", base)
    rows, seeds = production.compare(root)
    assert seeds == 3
    by = {x.metric: x for x in rows}
    assert set(by) == {"segmentation/iou", "faithfulness/deletion_auc"}
    iou = by["segmentation/iou"]
    # differences 0.10, 0.12, 0.08: mean 0.1, sd 0.02; t = 0.1 / (0.02 / sqrt 3) = 8.660; p (2 dof) = 0.01307
    assert iou.diff[0] == pytest.approx(0.1) and iou.p == pytest.approx(0.013072, rel=1e-3)
    assert iou.best[0] == pytest.approx(0.5) and iou.base[1] == pytest.approx(0.4)  # no spread: a zero-width interval
    assert iou.verdict == "better"
    auc = by["faithfulness/deletion_auc"]  # lower is better: 0.1 higher everywhere, the gain cost faithfulness
    assert auc.diff[0] == pytest.approx((0.1 + 0.095 + 0.1) / 3) and auc.verdict == "worse"
    text = build_report(root, tmp_path / "r.html", resamples=2).read_text()
    assert "worse than the base (p &lt; 0.05) on: faithfulness/deletion_auc" in text
    assert "segmentation/iou <b>(optimised)</b>" in text


def test_without_production_runs_the_section_says_the_command(tmp_path):
    root = write_results(tmp_path, n=6, archs=False, seeds=None)
    text = build_report(root, tmp_path / "r.html", resamples=2).read_text()
    assert f"attrsearch production {root} --seeds 3" in text
