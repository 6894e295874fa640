"""cluster.yaml is checked against Ray's own cluster config schema, without cloud calls."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_cluster_yaml_matches_ray_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config = prepare_config(raw)  # fills the provider's defaults, as `ray up` does
    validate_config(config)  # raises jsonschema.ValidationError on a bad field
    gpu = raw["available_node_types"]["gpu_worker"]["node_config"]["InstanceType"]
    assert gpu.startswith("p5."), "GPU workers must hold 8 x 80 GB GPUs for the 70B preset"
    assert any("[gpu]" in cmd for cmd in raw["setup_commands"]), "setup must install steerrec[gpu]"


def test_cluster_yaml_node_roles_match_the_simulated_cluster_tests_use():
    """tests/multinode runs steerrec.local_cluster's shape: a head with no CPUs, labelled workers."""
    from steerrec.local_cluster import WORKER_RESOURCE

    types = yaml.safe_load((REPO / "cluster.yaml").read_text())["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}, "the head schedules; it runs no tasks"
    for name in ("cpu_worker", "gpu_worker"):
        assert types[name]["resources"].get(WORKER_RESOURCE) == 1, f"{name} must carry the {WORKER_RESOURCE!r} label"
