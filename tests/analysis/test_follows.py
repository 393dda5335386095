"""The dependence study's numbers (analysis/follows.py) on results folders with planted answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attrsearch.analysis import follows as fl
from attrsearch.analysis.results import read_results
from tests.support.results_folders import write_dependence_results


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_dependence_results(tmp_path_factory.mktemp("dep"))


def test_verdicts_of_the_planted_sources(folder):
    got = {s.source: s for s in fl.follows(read_results(folder), n_resamples=200)}
    assert list(got) == ["wysiwyc", "center", "gradcam", "sobel"]  # explainers first
    follower = got["gradcam"]
    assert follower.verdict == "follows"
    # share = 0.1 + 0.5 * true: the slope over the member means is 0.5, the correlations 1
    assert follower.tracking["slope"] == pytest.approx(0.5, abs=0.02)
    assert follower.tracking["pearson"] > 0.99 and follower.tracking["spearman"] == pytest.approx(1.0)
    assert follower.tracking["slope_low"] <= 0.5 <= follower.tracking["slope_high"]
    # strongest shortcut (p=1: true 0.8 x effect) minus noise (true 0): 0.5 x 0.8 x mean(base effect)
    m = follower.members
    expected_gap = float(m.loc[m["member"] == "confound p_train=1", "attributed_share"].iloc[0]) - float(
        m.loc[m["noise"], "attributed_share"].iloc[0]
    )
    assert follower.gap["gap"] == pytest.approx(expected_gap, abs=1e-9) and follower.gap["gap_low"] > 0.2
    assert got["wysiwyc"].verdict == "salience"  # tracks the confound members, the noise member as high
    assert got["wysiwyc"].gap["gap"] == pytest.approx(0.0, abs=1e-12)
    for flat in ("sobel", "center"):
        assert got[flat].verdict == "does not follow"  # slope 0 and gap 0 exactly (correlations undefined)
        assert got[flat].tracking["slope"] == pytest.approx(0.0, abs=1e-12) and got[flat].gap["gap"] == 0.0
        assert math.isnan(got[flat].tracking["pearson"])
    assert list(follower.members["member"]) == [
        "confound p_train=0",
        "confound p_train=0.5",
        "confound p_train=0.9",
        "confound p_train=1",
        "noise p_train=1",
    ]


def test_family_arrays_align_the_shared_cases():
    rows = []
    for member, p, mode, cases in (
        ("a", 0.0, "confound", [(0, 1), (1, 0), (2, 1)]),
        ("b", 1.0, "confound", [(2, 1), (0, 1)]),
        ("n", 1.0, "noise", [(0, 1), (2, 1), (5, 0)]),
    ):
        for image, klass in cases:
            rows.append(
                {
                    "member": member,
                    "p_train": p,
                    "train_mode": mode,
                    "image": image,
                    "class": klass,
                    "cue_effect": 10 * image + klass + p,
                    "attributed_share": image / 10,
                }
            )
    a = fl.family_arrays(pd.DataFrame(rows))
    assert a["members"] == ["a", "b", "n"] and a["noise"] == 2
    np.testing.assert_allclose(a["true"], [[1, 21], [2, 22], [2, 22]])  # cases (0, 1) and (2, 1) only
    np.testing.assert_allclose(a["attributed"], [[0, 0.2]] * 3)


@pytest.mark.parametrize(
    ("slope_low", "gap_low", "expected"),
    [
        (0.1, 0.1, "follows"),
        (0.1, -0.1, "salience"),
        (-0.1, 0.1, "gap only"),
        (-0.1, -0.1, "does not follow"),
        (math.nan, 0.1, "undetermined"),
        (0.1, math.nan, "undetermined"),
    ],
)
def test_verdict_rules(slope_low, gap_low, expected):
    assert fl.verdict({"slope_low": slope_low, "pearson_low": -1.0}, {"gap_low": gap_low}) == expected


def test_model_free_deltas_against_the_best_reference(folder):
    table = fl.model_free_deltas(fl.source_scores(read_results(folder))).set_index(["source", "metric"])
    # iou (max): best reference center 0.35; deletion AUC (min): best reference center 0.30
    assert table.loc[("gradcam", "segmentation/iou"), "delta"] == pytest.approx(0.15)
    assert table.loc[("wysiwyc", "segmentation/iou"), "advantage"] == pytest.approx(0.25)
    assert table.loc[("gradcam", "faithfulness/deletion_auc"), "delta"] == pytest.approx(-0.10)
    assert table.loc[("gradcam", "faithfulness/deletion_auc"), "advantage"] == pytest.approx(0.10)
    assert table.loc[("gradcam", "segmentation/iou"), "references"] == "center"
    assert (table["members"] == 5).all() and "sobel" not in table.index.get_level_values(0)


def test_no_dependence_tables_and_extras(tmp_path, folder):
    from tests.support.results_folders import write_results

    plain = write_results(tmp_path / "plain", n=4, stopped_every=0, error_trials=0)
    assert fl.follows(read_results(plain)) == []
    assert fl.read_extra(folder, fl.RANDOMISATION_FILE) is None
    (tmp_path / "x.json").write_text("not json")
    assert fl.read_extra(tmp_path, "x.json") is None


def test_a_real_tiny_dependence_sweep():
    """tests/analysis/data/dependence_tiny: the tiny end-to-end sweep (3 members x wysiwyc 1 epoch,
    gradcam, sobel, center; checkpoints removed): the family's true effect spans >= 0.3, the
    model-free references do not move and Grad-CAM sits higher on the shortcut than on the noise control."""
    from pathlib import Path

    results = read_results(Path(__file__).parent / "data" / "dependence_tiny")
    got = {s.source: s for s in fl.follows(results, n_resamples=200)}
    assert set(got) == {"wysiwyc", "gradcam", "sobel", "center"}
    effects = got["gradcam"].members.set_index("member")["cue_effect"]
    assert effects["confound p_train=1"] - effects["confound p_train=0"] >= 0.3
    assert abs(effects["noise p_train=1"]) < 0.1
    for reference in ("sobel", "center"):
        assert got[reference].verdict == "does not follow"
    assert got["gradcam"].gap["gap_low"] > 0 and got["gradcam"].verdict == "follows"
    deltas = fl.model_free_deltas(fl.source_scores(results))
    assert set(deltas["source"]) == {"wysiwyc", "gradcam"} and (deltas["members"] == 3).all()
