"""Loading sweep files: the resolved sweep, malformed files (one-line errors, no Ray), dry runs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from attrsearch.errors import UserError
from attrsearch.sweep.load import load_sweep
from attrsearch.sweep.space import AREA_A, AREA_B
from tests.support.sweep_files import REPO, TINY_BASE, sweep_dict, write_sweep


def test_load_resolves_base_and_forces_the_val_split(tmp_path):
    base = copy.deepcopy(TINY_BASE)
    base["evaluation"]["split"] = "test"
    base["data"]["root"] = "relative/folder"
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(base))
    data = sweep_dict(
        base="exp.yaml",
        search={
            "loss.min_area": {"uniform": [0.01, 0.2]},
            "loss.max_area": {"uniform": [0.1, 0.5]},
            "train.epochs": {"choice": [2, 3]},
        },
        scheduler="asha",
    )
    sweep = load_sweep(write_sweep(tmp_path, data), results=tmp_path / "res")
    assert sweep.base["evaluation"]["split"] == "val" and sweep.base_cfg.evaluation.split == "val"
    assert any("replaced by 'val'" in n for n in sweep.notes)
    assert Path(sweep.base["data"]["root"]).is_absolute() and Path(sweep.base["cache_dir"]).is_absolute()
    assert sweep.experiment_path == f"{tmp_path / 'res'}/tiny" and sweep.storage.is_local
    assert sweep.modes == ["max"] and sweep.max_epochs == 3 and sweep.num_trials() == 2
    assert set(sweep.space.paths) == {"train.epochs", AREA_A, AREA_B}


def test_num_trials_counts_grids(tmp_path):
    data = sweep_dict(
        search={"loss.lambda_tv": {"grid": [0.1, 1.0]}, "loss.lambda_area": {"grid": [0.1, 0.3, 1.0]}},
        search_alg="grid",
        num_samples=1,
    )
    assert load_sweep(write_sweep(tmp_path, data)).num_trials() == 6
    data = sweep_dict(
        search={"loss.lambda_tv": {"grid": [0.1, 1.0]}, "loss.lambda_area": {"uniform": [0.1, 1.0]}}, num_samples=3
    )
    assert load_sweep(write_sweep(tmp_path, data)).num_trials() == 7  # 2 grid points x 3 samples + the base
    data["start_from_base"] = False
    assert load_sweep(write_sweep(tmp_path, data)).num_trials() == 6


def _with(**fields):
    return sweep_dict(**fields)


def _base(**sections):
    base = copy.deepcopy(TINY_BASE)
    base.update(sections)
    return base


# (case id, file content: a mapping or raw text, fragment the one-line error must contain)
MALFORMED = [
    ("yaml", "name: [unclosed\n", "invalid YAML"),
    ("not_mapping", "- a\n- b\n", "expected a mapping"),
    ("no_name", {k: v for k, v in sweep_dict().items() if k != "name"}, "name: field required"),
    ("bad_name", _with(name="two words"), "name:"),
    ("unknown_field", {**sweep_dict(), "serach": {}}, "serach: unknown field"),
    ("unknown_path", _with(search={"loss.lambda_typo": {"uniform": [0, 1]}}), "no field 'loss.lambda_typo'"),
    ("leaf_path", _with(search={"train.epochs.max": {"choice": [1]}}), "has no sub-fields"),
    ("reserved_path", _with(search={"evaluation.split": {"choice": ["test"]}}), "cannot be searched"),
    ("out_of_range", _with(search={"loss.lambda_tv": {"uniform": [-1, 1]}}), "search.loss.lambda_tv=-1"),
    ("bad_choice", _with(search={"explanandum.arch": {"choice": ["small_cnn", "nope"]}}), "unknown explanandum 'nope'"),
    ("empty_range", _with(search={"loss.lambda_tv": {"uniform": [1, 0]}}), "low end must be below"),
    (
        "overlap",
        _with(
            search={"explanandum": {"choice": [{"arch": "small_cnn"}]}, "explanandum.arch": {"choice": ["small_cnn"]}}
        ),
        "overlap",
    ),
    ("unknown_metric", _with(objective="segmentation/iuo"), "unknown metric 'segmentation/iuo'"),
    ("record_metric", _with(objective="segmentation/images"), "is a record"),
    ("not_per_epoch", _with(objective="faithfulness/deletion_auc", scheduler="asha"), "must be reported every epoch"),
    ("pbt_with_optuna", _with(scheduler="pbt", search_alg="optuna_tpe"), "pbt perturbs"),
    (
        "pbt_on_lr",
        _with(scheduler="pbt", search={"train.lr": {"loguniform": [1e-4, 1e-2]}}),
        "can mutate only objective.lambda_",
    ),
    (
        "grid_with_optuna",
        _with(search_alg="optuna_tpe", search={"loss.lambda_tv": {"grid": [0.1, 1]}}),
        "grid is not supported",
    ),
    ("grid_alg_sampled", _with(search_alg="grid"), "needs grid distributions only"),
    ("nsga2_single", _with(search_alg="optuna_nsga2"), "for several objectives"),
    ("area_never", _with(search={"loss.min_area": {"uniform": [0.5, 0.9]}}), "a < b can never hold"),
    ("bad_base", _with(base=_base(train={"epochs": 0})), "base: train.epochs"),
    ("missing_base", _with(base="nowhere.yaml"), "no such experiment file"),
    ("unknown_scheduler", _with(scheduler="hyperband"), "scheduler"),
    ("grace_period", _with(scheduler={"name": "asha", "grace_period": 5}), "exceeds max_t"),
    ("wandb_key", _with(wandb={"mode": "online", "api_key": "abc"}), "keys are never read"),
    ("gpu_fraction", _with(resources_per_trial={"cpu": 1, "gpu": 1.5}), "whole number"),
    (
        "start_outside",
        _with(start_from_base=True, search={"loss.lambda_tv": {"uniform": [2, 3]}}),
        "outside its search space",
    ),
    ("bad_seeds", _with(seeds=[1, 1]), "seeds: lists a seed twice"),
]


def _write_case(folder: Path, case: str, content) -> Path:
    path = folder / f"{case}.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.mark.parametrize("case, content, fragment", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_sweep_files_give_one_line_errors(tmp_path, case, content, fragment):
    path = _write_case(tmp_path, case, content)
    with pytest.raises(UserError) as err:
        load_sweep(path)
    message = str(err.value)
    assert fragment in message, message
    assert "\n" not in message and str(path) in message


def test_missing_sweep_file(tmp_path):
    with pytest.raises(UserError, match="no such config file"):
        load_sweep(tmp_path / "absent.yaml")


_CLI_CHECK = r"""
import contextlib, io, json, os, sys
from attrsearch.cli import main
out = []
for path in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["sweep", path] + sys.argv[1].split())
    out.append({"path": path, "code": code, "stderr": err.getvalue()})
children = [p for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split(") ")[1].split()[1] == str(os.getpid())]
print(json.dumps({"runs": out, "ray": "ray" in sys.modules, "optuna": "optuna" in sys.modules, "children": children}))
"""


def _run_cli(args: str, files: list[Path], env_cache: Path) -> dict:
    import os

    env = {**os.environ, "ATTRSEARCH_CACHE": str(env_cache)}
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_CHECK, args, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=env_cache.parent,  # relative `storage: results` away from the checkout's own results/ (make quickstart's)
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_malformed_files_start_no_ray(tmp_path):
    """Through the CLI: exit status 2, one line on stderr, Ray never imported, no process spawned."""
    files = [_write_case(tmp_path, case, content) for case, content, _ in MALFORMED]
    report = _run_cli("", files, tmp_path / "cache")
    assert len(report["runs"]) == len(MALFORMED) >= 15
    for run, (case, _, fragment) in zip(report["runs"], MALFORMED):
        assert run["code"] == 2, (case, run)
        lines = run["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("attrsearch: error: ") and fragment in lines[0], (case, lines)
    assert report["ray"] is False and report["children"] == []


def test_dry_run_every_shipped_sweep(tmp_path):
    """--dry-run validates each file in sweeps/ and starts nothing (no Ray, no Optuna, no dataset)."""
    single_runs = {"shapes_single.yaml", "shapes_casm.yaml", "shapes_rtis.yaml", "shapes_rank.yaml"}  # experiment files
    files = sorted(p for p in (REPO / "sweeps").glob("*.yaml") if p.name not in single_runs)
    expected = {
        "quickstart",
        "shapes_full",
        "lambda_sensitivity",
        "area_bounds",
        "architecture_matrix",
        "multiobjective",
        "paper_voc_vgg16",
        "paper_voc_resnet50",
        "paper_coco_vgg16",
        "paper_coco_resnet50",
        "dependence",
    }
    assert expected <= {p.stem for p in files}
    report = _run_cli("--dry-run", files, tmp_path / "cache")
    for run in report["runs"]:
        assert run["code"] == 0, run
    assert report["ray"] is False and report["optuna"] is False and report["children"] == []
    assert not (tmp_path / "cache").exists()  # nothing generated or trained


def test_quickstart_is_sized_for_ten_minutes():
    sweep = load_sweep(REPO / "sweeps" / "quickstart.yaml")
    c = sweep.config
    assert sweep.num_trials() >= 20 and c.scheduler.name == "asha" and c.search_alg.name == "optuna_tpe"
    assert {AREA_A, AREA_B} <= set(sweep.space.paths) and any(
        p.startswith("objective.lambda_") for p in sweep.space.paths
    )
    assert c.resources_per_trial.cpu == 1 and c.max_concurrent_trials == 2 and c.resources_per_trial.gpu == 0
    assert sweep.base_cfg.data.dataset == "shapes" and sweep.base_cfg.data.image_size <= 48


def test_fault_settings_are_not_the_sweeps_identity(tmp_path):
    """How trials are watched and retried may change on --resume (a longer outage limit, a timeout)."""

    plain = load_sweep(write_sweep(tmp_path, sweep_dict(name="same"), "a.yaml")).identity()
    tuned = sweep_dict(
        name="same",
        trial_report_timeout_s=30,
        storage_retry={"attempts": 9, "max_wait_s": 5},
        testing={"hang_once_at_epoch": 2},
    )
    assert load_sweep(write_sweep(tmp_path, tuned, "b.yaml")).identity() == plain
    assert plain["testing"] == {"fail_once_at_epoch": None}
