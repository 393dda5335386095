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
    assert not (tmp_path / "results").exists()  # the storage folder is created only once every check passed


# Issue 23 A5/A8: every blocker in one run, nothing written, and --dry-run runs the same pre-flight.
# In-process: the pre-flight imports no Ray.


def _blocked_sweep(tmp_path, monkeypatch, inputs: bool = True):
    """A sweep with machine blockers (ImageNet weights absent from the torch cache, too many CPUs) and,
    with ``inputs``, blockers of its own inputs (two named weights files that do not exist)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.setenv("ATTRSEARCH_CACHE", str(tmp_path / "cache"))

    def no_ray(*args, **kwargs):  # the suite's shared Ray may already run in this process: check the call
        raise AssertionError("the pre-flight must stop the sweep before Ray starts")

    monkeypatch.setattr("attrsearch.sweep.run.start_ray", no_ray)
    base = {**TINY_BASE, "explainer": {"arch": "lraspp_mobilenet_v3_large", "weights": "imagenet"}}
    if inputs:
        base["explanandum"] = {**TINY_BASE["explanandum"], "weights": str(tmp_path / "nope.pt")}
    search = {"loss.lambda_tv": {"loguniform": [0.01, 1.0]}}
    if inputs:
        search["explainer.weights"] = {"choice": ["imagenet", str(tmp_path / "gone.pt")]}
    fields = dict(base=base, resources_per_trial={"cpu": (os.cpu_count() or 1) + 1}, search=search)
    return _sweep(tmp_path, **fields)


def _main(capsys, argv):
    from attrsearch.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def _nothing_written(tmp_path):
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_every_blocker_is_reported_in_one_run(tmp_path, monkeypatch, capsys):
    path = _blocked_sweep(tmp_path, monkeypatch)
    code, _, err = _main(capsys, ["sweep", str(path)])
    assert code == 2
    assert err[0] == f"attrsearch: error: {path}: 4 problems stop this sweep before it starts:", err
    expected = [
        "explanandum.weights: no such file",
        "explainer.weights: no such file",
        "explainer.weights: ImageNet weights for lraspp_mobilenet_v3_large not found",
        "resources_per_trial.cpu:",
    ]
    assert len(err) == 1 + len(expected) and all(any(e in line for line in err[1:]) for e in expected), err
    _nothing_written(tmp_path)


def test_dry_run_runs_the_same_preflight(tmp_path, monkeypatch, capsys):
    """Blockers of the sweep's inputs: exit 2 (stderr); this machine's: printed (stdout), listed as such."""
    path = _blocked_sweep(tmp_path, monkeypatch)
    code, out, err = _main(capsys, ["sweep", str(path), "--dry-run"])
    assert code == 2 and f"sweep pre ({path})" in out  # the description is still printed
    assert "pre-flight: this machine cannot run it (2; a run here would stop):" in out
    assert "ImageNet weights for lraspp_mobilenet_v3_large not found" in out and "resources_per_trial.cpu" in out
    assert err[0].endswith("2 problems stop this sweep before it starts:") and len(err) == 3, err
    assert "explanandum.weights: no such file" in err[1] and "explainer.weights: no such file" in err[2]
    _nothing_written(tmp_path)


def test_dry_run_with_only_blockers_of_this_machine_exits_0(tmp_path, monkeypatch, capsys):
    """A dry run plans a run, often for another machine (the shipped paper sweeps need GPUs and ImageNet
    weights): what this machine lacks is printed, the status stays 0."""
    path = _blocked_sweep(tmp_path, monkeypatch, inputs=False)
    code, out, err = _main(capsys, ["sweep", str(path), "--dry-run"])
    assert code == 0 and err == []
    assert "pre-flight: this machine cannot run it (2; a run here would stop):" in out
    assert out.strip().endswith("dry run: nothing started")
    _nothing_written(tmp_path)
    clean = _sweep(tmp_path)
    code, out, _ = _main(capsys, ["sweep", str(clean), "--dry-run"])
    assert code == 0 and "dry run: nothing started; the pre-flight found no blocker" in out
    _nothing_written(tmp_path)


def _stored(tmp_path, sweep, **identity):
    """A results folder as a started sweep leaves it: Ray's state file and sweep.yaml (its identity)."""
    import yaml

    folder = tmp_path / "results" / sweep.name
    folder.mkdir(parents=True)
    (folder / "experiment_state-2026-12-05.json").write_text("{}")
    (folder / "sweep.yaml").write_text(yaml.safe_dump({**sweep.identity(), **identity}))


def test_resume_of_a_sweep_started_when_start_from_base_defaulted_off(tmp_path):
    from attrsearch.errors import UserError
    from attrsearch.sweep.load import load_sweep
    from attrsearch.sweep.preflight import check_results_folder

    sweep = load_sweep(_sweep(tmp_path))  # start_from_base unset: on where it can be
    assert sweep.start_defaulted and sweep.config.start_from_base is True
    _stored(tmp_path, sweep, start_from_base=False)  # an earlier attrsearch stored its default, off
    check_results_folder(sweep, resume=True)
    assert sweep.config.start_from_base is False  # resumed as it was started

    explicit = load_sweep(_sweep(tmp_path, start_from_base=True))  # said on purpose: a different sweep
    with pytest.raises(UserError, match="differs from the sweep stored"):
        check_results_folder(explicit, resume=True)
    other = load_sweep(_sweep(tmp_path, num_samples=3))  # any other change is still refused
    with pytest.raises(UserError, match="differs from the sweep stored"):
        check_results_folder(other, resume=True)


def test_random_search_runs_the_base_beside_its_samples(tmp_path):
    """Tune's basic generator lets a start point replace a sample and fix the grid dimensions it names:
    the base gets a sample of its own, so a grid of 2 x num_samples 1 still runs both points."""
    from attrsearch.sweep.load import load_sweep

    data = dict(search={"train.lr": {"grid": [0.002, 1.0]}}, num_samples=1, search_alg={"name": "random"})
    sweep = load_sweep(_sweep(tmp_path, **data))
    assert sweep.config.start_from_base and sweep.base_is_extra
    assert sweep.tune_samples() == 2 and sweep.num_trials() == 3
    off = load_sweep(_sweep(tmp_path, start_from_base=False, **data))
    assert off.tune_samples() == 1 and off.num_trials() == 2
