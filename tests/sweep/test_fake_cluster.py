"""cluster.yaml's fake-provider twin (analysis/chaos/fake_cluster.py): derived in one place, valid for Ray."""

from __future__ import annotations

import importlib.util

import yaml

from tests.support.sweep_files import REPO


def _module():
    spec = importlib.util.spec_from_file_location("fake_cluster", REPO / "analysis" / "chaos" / "fake_cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fake_cluster_config_is_cluster_yaml_with_the_provider_swapped():
    from ray.autoscaler._private.util import validate_config

    fake = _module()
    cluster = yaml.safe_load((REPO / "cluster.yaml").read_text())
    derived = fake.derive(cluster, gcs_address="127.0.0.1:6379")
    validate_config(derived)
    assert derived["provider"]["type"] == "fake_multinode" and derived["provider"]["disable_node_updaters"]
    # the fake nodes share one IP: without it the autoscaler never matches a worker's idle time (no scale-down)
    assert derived["provider"]["use_node_id_as_ip"]
    for key in ("setup_commands", "head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
                "worker_start_ray_commands", "max_workers", "cluster_name"):  # fmt: skip
        assert derived[key] == cluster[key], key
    workers = {k: v for k, v in cluster["available_node_types"].items() if k != cluster["head_node_type"]}
    for name, spec in workers.items():
        assert derived["available_node_types"][name]["resources"] == spec["resources"]
        assert derived["available_node_types"][name]["max_workers"] == spec["max_workers"]
    assert derived["head_node_type"] == fake.FAKE_HEAD_TYPE
    assert "docker" not in derived


def test_smoke_sweeps_are_the_quickstart_with_results_moved_and_a_gpu_per_trial(tmp_path):
    from attrsearch.sweep.load import load_sweep

    fake = _module()
    quickstart = yaml.safe_load(fake.QUICKSTART.read_text())
    for tiny in (False, True):
        variant = fake.sweep_variant(quickstart, str(tmp_path / "results"), tiny=tiny)
        path = tmp_path / f"{variant['name']}.yaml"
        path.write_text(yaml.safe_dump(variant))
        sweep = load_sweep(path)
        assert sweep.config.storage == str(tmp_path / "results") and sweep.config.resources_per_trial.gpu == 1
        for key in ("search", "search_alg", "objective", "max_concurrent_trials"):
            assert variant[key] == quickstart[key], key
    assert variant["num_samples"] == 4 and quickstart["num_samples"] == 24
