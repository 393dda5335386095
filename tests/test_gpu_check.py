"""``analysis/benchmarks/gpu_check.sh --cpu``: the reduced CPU mode of the one-command GPU check runs
in the test suite, so the CUDA check's code paths cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_mode_prints_its_table():
    proc = subprocess.run(
        ["bash", str(ROOT / "analysis" / "benchmarks" / "gpu_check.sh"), "--cpu"],
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    for label in (
        "Explainer train step, float32 (autocast is CUDA-only) + channels_last",
        "maps/s: Explainer",
        "maps/s: Grad-CAM, all classes",
        "maps/s: captum LayerGradCam per class",
        "maps/s: RISE",
        "classifier forward (bfloat16)",
        "deletion + insertion",
    ):
        value = float(rows[label].split("|")[2])
        assert value > 0, label
    assert "skipped on CPU" in rows["fractional-GPU trials"]
