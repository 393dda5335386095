"""Bad sweep inputs stop the command before Ray starts or anything is trained: one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.sweep_files import REPO, TINY_BASE, sweep_dict, write_sweep


def _sweep(tmp_path, **fields):
    data = sweep_dict(name="pre", **{"storage": str(tmp_path / "results"), **fields})
    return write_sweep(tmp_path, data)


def _run(path, cache):
    env = {**os.environ, "ATTRSEARCH_CACHE": str(cache)}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "attrsearch.cli", "sweep", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _cases(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {
        "storage_is_a_file": (dict(storage=str(afile)), "storage: "),
        "storage_not_writable": (dict(storage=str(afile / "sub")), "is not writable"),
        "missing_weights": (
            dict(base={**TINY_BASE, "explanandum": {**TINY_BASE["explanandum"], "weights": str(tmp_path / "nope.pt")}}),
            "explanandum.weights",
        ),
        "too_many_cpus": (dict(resources_per_trial={"cpu": (os.cpu_count() or 1) + 1}), "resources_per_trial.cpu"),
        "gpu_without_gpu": (dict(resources_per_trial={"cpu": 1, "gpu": 1}), "resources_per_trial.gpu"),
        "unknown_explainer_option": (
            dict(base={**TINY_BASE, "explainer": {"arch": "explanandum_encoder", "options": {"no_such_option": 1}}}),
            "explainer.options",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "storage_is_a_file",
        "storage_not_writable",
        "missing_weights",
        "too_many_cpus",
        "gpu_without_gpu",
        "unknown_explainer_option",
    ],
)
def test_bad_sweep_input_is_one_line_before_ray(tmp_path, case):
    fields, needle = _cases(tmp_path)[case]
    if case == "gpu_without_gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    cache = tmp_path / "cache"
    path = _sweep(tmp_path, **fields)
    done = _run(path, cache)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(err) == 1 and needle in err[0], done.stderr
    assert "Started a local Ray instance" not in done.stdout + done.stderr
    assert not (cache / "explananda").exists()  # nothing trained or cached
    results = tmp_path / "results" / "pre"
    assert not results.exists() or not any(results.iterdir())
