"""The README's worked example ("Your own classifier and data") runs as written: its shell block is
cut out of README.md and run by bash in a fresh folder, up to the sweep's dry run (the real sweep and
the report are the same commands the sweep and report tests run; they were run by hand for the README)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def worked_example() -> str:
    """The README's indented shell block of the worked example, dedented, without the real sweep and report."""
    text = (REPO / "README.md").read_text()
    start = text.index("    # 1. a COCO-format folder")
    end = text.index("attrsearch report results/my_sweep", start)
    end = text.index("\n", end)
    lines = [line[4:] for line in text[start:end].splitlines()]
    skipped = ("attrsearch sweep my_sweep.yaml  ", "attrsearch report")
    return "\n".join(line for line in lines if not line.startswith(skipped)) + "\n"


@pytest.mark.slow
def test_the_worked_example_runs_as_written(tmp_path):
    script = worked_example()
    assert "attrsearch sweep my_sweep.yaml --dry-run" in script and "attrsearch train my_experiment.yaml" in script
    env = {
        **os.environ,
        "ATTRSEARCH_CACHE": str(tmp_path / "cache"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "runs" / "my_data" / "metrics.json").read_text())
    assert metrics["segmentation/ground_truth"] == "boxes" and metrics["sanity/zero/iou"] == 0.0
    assert json.loads((tmp_path / "runs" / "gradcam" / "metrics.json").read_text())["attribution/method"] == "gradcam"
    assert "dry run: nothing started" in done.stdout
    assert "segmentation/ground_truth = boxes" in done.stderr  # the run says what the pixel metrics are scored against
