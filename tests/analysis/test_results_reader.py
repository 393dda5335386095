"""The Ray-free reader: real and synthetic results folders, a running sweep, bad input."""

from __future__ import annotations

import math
import shutil

import pytest

from attrsearch.analysis.results import (
    check_metric,
    learning_curve,
    read_gallery,
    read_results,
    read_table,
    require_columns,
    require_finished,
    trial_times,
)
from attrsearch.errors import UserError


def test_reads_a_real_sweep_folder(real_tiny):
    r = read_results(real_tiny)
    assert r.from_csv and r.sweep.name == "tiny_report"
    assert r.sweep.objectives == ["segmentation/iou", "class_specific/selectivity"]
    assert r.sweep.modes == ["max", "max"] and r.sweep.seeds == [0, 1]
    assert r.sweep.space["train.batch_size"].kind == "int"  # dumped as int_
    assert r.sweep.space["loss.lambda_tv"].log and r.sweep.space["explainer.arch"].categorical
    assert r.counts() == {"completed": 1, "stopped": 4}
    best = r.by_status("completed")[0]
    assert best.trial_id == "8bb00_00001"
    assert best.values == {
        "explainer.arch": "unet_small",
        "loss.lambda_tv": pytest.approx(0.01079084044538139),
        "loss.max_area": pytest.approx(0.36946445204720263),
        "loss.min_area": pytest.approx(0.09655694016130092),
        "train.batch_size": 18,
    }
    assert isinstance(best.values["train.batch_size"], int)
    assert best.metrics["segmentation/iou"] == pytest.approx(0.07182471323903883)
    assert best.metrics["segmentation/iou_std"] == pytest.approx(0.004169517102127429)
    curve = learning_curve(best)
    assert [c["epoch"] for c in curve] == [1.0, 2.0]
    assert curve[-1]["segmentation/iou"] == pytest.approx(best.metrics["segmentation/iou"])
    start, end = trial_times(best)
    assert end - start == pytest.approx(1796119909 - (1796119901 - 18.297954559326172))  # last timestamp - first start
    table = read_table(best, "class_specific")
    assert table[0][0] == "target" and table[0][-2:] == ["none", "images"] and len(table) == 9
    gallery = read_gallery(best)
    assert gallery["images"].shape == (2, 32, 32, 3) and gallery["masks"].shape == (2, 8, 32, 32)
    assert read_gallery(r.by_status("stopped")[0]) is None


def test_running_sweep_without_trials_csv(real_running):
    r = read_results(real_running)
    assert not r.from_csv and "no trials.csv" in r.notes[0]
    assert [t.trial_id for t in r.trials] == ["3c8a5891", "6d62c444"]
    t = r.trials[0]
    # result.json is still empty (Ray had not flushed): the run's history.json tells it started
    assert t.status == "running" and t.epochs == 1.0 and math.isfinite(t.metrics["segmentation/iou"])
    assert t.values["explanandum.arch"] == "small_cnn" and t.values["loss.lambda_tv"] == pytest.approx(
        0.6074996073425692
    )
    with pytest.raises(UserError, match="no finished trial yet .*2 running"):
        require_finished(r)


def test_trial_folders_missing_from_a_stale_trials_csv(tmp_path, real_tiny):
    root = tmp_path / "tiny_report"
    shutil.copytree(real_tiny, root)
    shutil.copytree(root / "8bb00_00004", root / "8bb00_00005")
    lines = (root / "8bb00_00005" / "result.json").read_text().splitlines()
    (root / "8bb00_00005" / "result.json").write_text(
        lines[0] + "\n" + '{"segmentation/iou": 0.1, "epo'
    )  # half-written line
    r = read_results(root)
    new = r.trials[-1]
    assert new.trial_id == "8bb00_00005" and new.status == "running" and new.epochs == 1.0
    assert "not in trials.csv" in r.notes[0]


def test_bad_input_is_one_line(tmp_path, synthetic):
    with pytest.raises(UserError, match="no such results folder"):
        read_results(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no sweep.yaml: not a results folder"):
        read_results(tmp_path / "empty")
    with pytest.raises(UserError, match="unknown metric 'segmentation/iouu'"):
        check_metric("segmentation/iouu")
    with pytest.raises(UserError, match="is a record"):
        check_metric("segmentation/images")
    r = read_results(synthetic)
    with pytest.raises(UserError, match="unknown metric"):
        require_columns(r, ["nope/x"])
    with pytest.raises(UserError, match="no trial reported metric 'pointing_game/accuracy'"):
        require_columns(r, ["pointing_game/accuracy"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "sweep.yaml").write_text("name: x\nobjective: [segmentation/iouu]\n")
    with pytest.raises(UserError, match="unknown metric") as err:
        read_results(bad)
    assert "\n" not in str(err.value)


def test_synthetic_folder_reads_like_the_real_one(synthetic):
    r = read_results(synthetic)
    assert r.counts() == {"completed": 19, "stopped": 4, "error": 1}
    err = r.by_status("error")[0]
    assert err.error.startswith("RuntimeError") and err.metrics == {} and err.epochs is None
    t = r.by_status("completed")[0]
    assert set(t.values) == set(r.sweep.space) and isinstance(t.values["train.batch_size"], int)
    assert len(learning_curve(t)) == 3


def test_analysis_imports_neither_ray_nor_the_sweep_or_training_code():
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import attrsearch.analysis as pkg

    banned = ("attrsearch.sweep", "attrsearch.train", "ray", "wandb")
    for path in Path(pkg.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not any(name == b or name.startswith(b + ".") for b in banned), f"{path.name} imports {name}"
    code = (
        "import sys, attrsearch.analysis.report, attrsearch.analysis.importance; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'wandb')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
