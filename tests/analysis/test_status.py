"""``attrsearch status`` reads a results folder through the results contract, without Ray."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from attrsearch.analysis.status import status_lines
from attrsearch.errors import UserError

HIDE_RAY = textwrap.dedent(
    """
    import sys
    sys.modules["ray"] = None  # `import ray` now fails
    from attrsearch.cli import main
    sys.exit(main(["status", sys.argv[1]]))
    """
)


def test_status_runs_where_ray_cannot_be_imported(real_tiny, tmp_path):
    folder = tmp_path / "tiny_report"
    shutil.copytree(real_tiny, folder)
    done = subprocess.run([sys.executable, "-c", HIDE_RAY, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{folder}: 5 trials (1 completed, 4 stopped)"
    assert lines[1].startswith("top 1 of 1 completed trials by segmentation/iou (higher is better, val split):")
    assert lines[3].split()[:4] == ["1", "8bb00_00001", "completed", "2"]
    assert lines[-1] == f"report: attrsearch report {folder}  (writes {folder}/report.html)"


def test_status_names_the_best_trial_of_best_yaml(real_tiny):
    best_yaml = (real_tiny / "best.yaml").read_text()
    board = "\n".join(status_lines(real_tiny)).splitlines()[3].split()
    assert f"trial {board[1]}," in best_yaml


def test_status_of_a_folder_that_is_not_a_sweep(tmp_path):
    with pytest.raises(UserError, match="no such results folder"):
        status_lines(tmp_path / "absent")
    with pytest.raises(UserError, match="no Ray experiment state"):
        status_lines(tmp_path)
    (tmp_path / "experiment_state-2026.json").write_text("{}")
    with pytest.raises(UserError, match="no sweep.yaml: not a results folder"):
        status_lines(tmp_path)
