"""cluster.yaml passes Ray's own autoscaler schema check, offline (prepare_config + validate_config)."""

from __future__ import annotations

import copy

import yaml

from tests.support.sweep_files import REPO


def test_cluster_yaml_validates_with_rays_autoscaler():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((REPO / "cluster.yaml").read_text())
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    nodes = prepared["available_node_types"]
    assert prepared["head_node_type"] in nodes
    assert any(n["resources"].get("GPU", 0) >= 1 for n in nodes.values())
    assert prepared["docker"]["image"].startswith("rayproject/ray:2.60") and prepared["docker"]["image"].endswith(
        "-gpu"
    )
    assert any("pip install" in c and "attrsearch" in c for c in prepared["setup_commands"])
    assert "WANDB_API_KEY" not in yaml.safe_dump(raw)  # keys never live in config files
