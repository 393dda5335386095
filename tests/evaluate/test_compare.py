"""``attrsearch compare`` on the tiny experiment: the Explainer and two baselines, the paper's tables."""

from __future__ import annotations

import contextlib
import io
import re

import pandas as pd
import pytest
import yaml

from attrsearch.cli import main

SHOWN: dict[str, str] = {}  # what the fixture's compare run printed


@pytest.fixture(scope="module")
def compared(tmp_path_factory, make_tiny_experiment):
    root = tmp_path_factory.mktemp("compare")
    cfg = root / "tiny.yaml"
    data = make_tiny_experiment()
    data["train"]["progress"] = True  # the progress lines are checked below, from this one run
    cfg.write_text(yaml.safe_dump(data))
    out = root / "out"
    argv = ["compare", str(cfg), "--methods", "explainer,gradcam,center", "--out", str(out), "--max-images", "center=8"]
    with contextlib.redirect_stdout(io.StringIO()) as shown_out, contextlib.redirect_stderr(io.StringIO()) as shown_err:
        assert main(argv) == 0
    SHOWN.update(out=shown_out.getvalue(), err=shown_err.getvalue())
    return cfg, out


def test_tables_are_written(compared):
    _, out = compared
    for name in ("explainer", "gradcam", "center"):
        table = pd.read_csv(out / "tables" / f"class_specific_{name}.csv", index_col=0)
        assert "none" in table.columns and len(table) == 4  # Table 1: targets x (mask classes + none)
        assert (out / "methods" / name / "metrics.json").is_file()
    assert (out / "explainer" / "checkpoints" / "best.pt").is_file()  # trained like attrsearch train
    frame = pd.read_csv(out / "comparison.csv", index_col=0)
    assert list(frame.index) == ["explainer", "gradcam", "center"]
    for col in (
        "segmentation/iou",
        "sanity/half/iou",
        "attribution/seconds_per_image",
        "pointing_game/accuracy",
        "sanity/randomization/passed",
    ):
        assert col in frame.columns
    assert frame.at["center", "attribution/images"] == 8 and frame.at["gradcam", "attribution/images"] == 16
    assert frame.at["center", "sanity/randomization/passed"] == 0.0  # model-independent maps fail


def test_markdown_has_tables_2_3_sanity_and_the_cap(compared):
    _, out = compared
    md = (out / "comparison.md").read_text()
    assert "## Table 2" in md and "## Table 1" in md and "## Sanity checks" in md and "## Every other metric" in md
    for row in ("| *sanity 0* |", "| *sanity 0.5* |", "| *sanity 1* |", "| *sanity GT* |", "| center | 8 |"):
        assert row in md
    assert "center on the first 8 images" in md and "s / image" in md
    assert "**Map normalisation** (`attribution_normalization: auto`)" in md
    methods = md.split("## Methods")[1]
    assert "- **explainer**: " in methods and "maps scored as they are" in methods.split("- **gradcam**")[0]
    assert "maps min-max normalised" in methods.split("- **gradcam**")[1]
    sanity = md.split("## Sanity checks")[1].split("##")[0]
    assert "| center | 2 |" not in sanity and "**fail**" in sanity


def test_reuses_the_trained_explainer(compared, capsys):
    cfg, out = compared
    assert main(["compare", str(cfg), "--methods", "explainer", "--out", str(out), "--suite", "fast"]) == 0
    assert "reusing" in capsys.readouterr().out


def test_bad_input_is_one_line_before_work(compared, tmp_path, capsys):
    cfg, _ = compared
    cases = [
        (["--methods", "gradcam,nope"], "unknown attribution method 'nope'"),
        (["--methods", "gradcam,gradcam"], "listed twice"),
        (["--methods", "rise", "--max-images", "gradcam=3"], "--max-images gradcam=3"),
        (["--methods", "gradcam", "--option", "gradcam.layer=x"], "no layer 'x'"),
    ]
    for extra, message in cases:
        assert main(["compare", str(cfg), "--out", str(tmp_path / "x"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_data_randomisation_covers_the_explainer(tmp_path, make_tiny_experiment):
    """--sanity-data: every method, the Explainer included (one trained against the shuffled-label
    Explanandum), gets the data-randomisation Spearman / SSIM and a pass / fail; the centre baseline,
    whose maps ignore the model, fails."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(make_tiny_experiment()))
    out = tmp_path / "out"
    argv = ["compare", str(cfg), "--methods", "explainer,center", "--out", str(out), "--suite", "fast", "--sanity-data"]
    assert main(argv) == 0
    assert (out / "explainer_shuffled_labels" / "checkpoints" / "best.pt").is_file()
    frame = pd.read_csv(out / "comparison.csv", index_col=0)
    for name in ("explainer", "center"):
        assert 0.0 <= frame.at[name, "sanity/data_randomization/ssim"] <= 1.0 + 1e-6
        assert frame.at[name, "sanity/data_randomization/passed"] in (0.0, 1.0)
    assert frame.at["center", "sanity/data_randomization/spearman"] == pytest.approx(1.0)
    assert frame.at["center", "sanity/data_randomization/passed"] == 0.0
    assert frame.at["explainer", "sanity/data_randomization/spearman"] < 0.999  # a retrained Explainer's maps differ
    sanity = (out / "comparison.md").read_text().split("## Sanity checks")[1].split("## Table 1")[0]
    assert (
        "data rand. check" in sanity
        and "trained into explainer_shuffled_labels/" in (out / "comparison.md").read_text()
    )


def test_long_stages_show_progress(compared):
    """Each entry says which of how many with the time left; the sanity cascade shows a bar (n of N)."""
    assert "compare: entry 3 of 3 (center);" in SHOWN["out"] and "s left" in SHOWN["out"]
    assert "compare: center: sanity, cascading randomisation" in SHOWN["err"]
    assert re.search(r"cascading randomisation: +\d+%\|.*?\| \d+/\d+ \[", SHOWN["err"])  # n of N, [elapsed<left]
