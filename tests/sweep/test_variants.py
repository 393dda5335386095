"""``search.variant.<name>``: grids over mappings of fields set together (the dependence study's members and methods)."""

from __future__ import annotations

import pytest

from attrsearch.config.search import expand_variants
from attrsearch.errors import UserError
from attrsearch.sweep.experiment import trial_experiment
from attrsearch.sweep.explananda import needed_explananda
from attrsearch.sweep.load import load_sweep
from tests.support.sweep_files import sweep_dict, write_sweep

MEMBERS = [
    {"data.shapes.context.p_train": 0.0, "data.shapes.context.train_mode": "confound"},
    {"data.shapes.context.p_train": 1.0, "data.shapes.context.train_mode": "noise"},
]
METHODS = [{"objective.name": "casm"}, {"method.name": "gradcam"}, {"method.name": "center"}]


def _sweep(tmp_path, search, **fields):
    data = sweep_dict(search=search, search_alg={"name": "grid"}, start_from_base=False, num_samples=1, **fields)
    data["base"]["cache_dir"] = str(tmp_path / "cache")
    return write_sweep(tmp_path, data)


def test_expand_variants_in_order():
    values = {"variant.a": {"x.y": 1, "x.z": 2}, "x.z": 3, "variant.b": {"w": 4}}
    assert expand_variants(values) == {"x.y": 1, "x.z": 3, "w": 4}


def test_grid_of_members_and_methods(tmp_path):
    sweep = load_sweep(_sweep(tmp_path, {"variant.member": {"grid": MEMBERS}, "variant.method": {"grid": METHODS}}))
    assert sweep.num_trials() == 6
    cfg = trial_experiment(sweep.base, {"variant.member": MEMBERS[1], "variant.method": METHODS[0]}, "t")
    assert cfg.data.shapes.context.train_mode == "noise" and cfg.data.shapes.context.p_train == 1.0
    assert cfg.objective.name == "casm" and cfg.method is None
    cfg = trial_experiment(sweep.base, {"variant.member": MEMBERS[0], "variant.method": METHODS[1]}, "t")
    assert cfg.method.name == "gradcam" and cfg.data.shapes.context.p_train == 0.0
    jobs, _ = needed_explananda(sweep)  # the members change the Explanandum's data: one each, methods do not
    assert len({j.cache_path for j in jobs if j.role == "explanandum"}) == 2


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"variant.member": {"choice": [{"data.shapes.nope": 1}]}}, "no field 'data.shapes.nope'"),
        ({"variant.member": {"grid": [5]}}, "expected a mapping of dotted fields"),
        ({"variant.member": {"grid": [{}]}}, "expected a mapping of dotted fields"),
        ({"variant.a.b": {"grid": [{"seed": 1}]}}, "variant.<name>"),
        ({"variant.m": {"uniform": [0, 1]}}, "give grid or choice"),
        ({"variant.m": {"grid": [{"objective.lambda_nope": 1}]}}, "no objective has a field 'lambda_nope'"),
        ({"variant.m": {"grid": [{"seed": 1}]}, "seed": {"grid": [1, 2]}}, "which search.seed also sets"),
        ({"variant.a": {"grid": [{"seed": 1}]}, "variant.b": {"grid": [{"seed": 2}]}}, "also sets"),
        ({"variant.m": {"grid": [{"method.name": "no_such_method"}]}}, "no_such_method"),
        ({"variant.m": {"grid": [{"data.shapes.context.p_train": 2.0}]}}, "p_train"),
    ],
)
def test_bad_variants_are_one_line_errors(tmp_path, search, message):
    with pytest.raises(UserError, match="search.") as err:
        load_sweep(_sweep(tmp_path, search))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_base_is_no_variant(tmp_path):
    data = sweep_dict(search={"variant.m": {"choice": METHODS}}, num_samples=2, start_from_base=True)
    data["base"]["cache_dir"] = str(tmp_path / "cache")
    with pytest.raises(UserError, match="none of the values of search.variant.m"):
        load_sweep(write_sweep(tmp_path, data))


def test_the_shipped_dependence_sweep():
    """sweeps/dependence.yaml: 5 members x 8 methods, one Explanandum per member, dependence measured."""
    from pathlib import Path

    sweep = load_sweep(Path(__file__).resolve().parents[2] / "sweeps" / "dependence.yaml")
    assert sweep.num_trials() == 40 and sweep.config.max_concurrent_trials == 2
    assert sweep.base_cfg.evaluation.dependence.enabled and sweep.base_cfg.data.image_size == 48
    methods = sweep.space.discrete_values("variant.method")
    names = {v.get("objective.name") or v.get("method.name") for v in methods}
    assert names == {"wysiwyc", "casm", "rtis", "rank", "gradcam", "rise", "sobel", "center"}
    members = sweep.space.discrete_values("variant.member")
    assert {m["data.shapes.context.train_mode"] for m in members} == {"confound", "noise"}
    jobs, _ = needed_explananda(sweep)
    assert len({j.cache_path for j in jobs if j.role == "explanandum"}) == 5


@pytest.mark.slow
def test_a_tiny_dependence_sweep_end_to_end(tmp_path, ray_address):
    """Members x methods through Ray: each trial writes run/tables/dependence.csv with its member and
    source, and the report's section reads them back (the study's whole path, at toy size)."""
    from attrsearch.analysis import follows
    from attrsearch.analysis.results import read_results
    from attrsearch.sweep.run import run_sweep

    members = [MEMBERS[0], {"data.shapes.context.p_train": 1.0, "data.shapes.context.train_mode": "confound"}]
    data = sweep_dict(
        name="dep",
        search={"variant.member": {"grid": members}, "variant.method": {"grid": METHODS[1:]}},
        search_alg={"name": "grid"},
        start_from_base=False,
        num_samples=1,
        max_concurrent_trials=2,
        storage=str(tmp_path / "results"),
    )
    data["base"]["cache_dir"] = str(tmp_path / "cache")
    data["base"]["evaluation"]["dependence"] = {"enabled": True, "images": 16}
    data["base"]["evaluation"]["transfer"] = {"panel": []}
    assert run_sweep(load_sweep(write_sweep(tmp_path, data)), address=ray_address, verbose=0) == 0
    results = read_results(tmp_path / "results" / "dep")
    cases = follows.read_cases(results)
    assert set(cases["source"]) == {"gradcam", "center"} and cases["trial_id"].nunique() == 4
    assert set(cases["member"]) == {"confound p_train=0", "confound p_train=1"}
    assert all(t.metrics["dependence/cases"] > 0 for t in results.trials)
    got = {s.source: s for s in follows.follows(results, n_resamples=50)}
    assert got["center"].verdict == "undetermined"  # no noise control in this family
    assert got["center"].tracking["slope"] == pytest.approx(0.0, abs=1e-9)  # a model-free map does not move
