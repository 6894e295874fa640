"""One simulated multi-node Ray cluster for the module under tests/multinode: a head with no
CPUs and two worker nodes of 2 CPUs each, "node_a" and "node_b" (steerrec.local_cluster).

Module-scoped, not session-scoped: tests/ray's session fixture starts a plain local Ray in
this same process (`make test` collects tests/multinode first), and one process holds one
Ray driver at a time, so this cluster is gone before tests/ray begins.
"""

from __future__ import annotations

import os

import pytest

WORKERS = {"node_a": 2, "node_b": 2}


@pytest.fixture(scope="module")
def multinode():
    """The running LocalCluster, with this process connected as its driver."""
    import ray
    from steerrec.local_cluster import LocalCluster

    if ray.is_initialized():
        pytest.skip("another Ray session is live in this process: run tests/multinode in its own pytest command")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    with LocalCluster(WORKERS) as lc:
        # RAY_ADDRESS: Ray Train's placement-group cleaner asks the state API for "auto", which
        # fails when other Ray instances run on this machine (one per node on a real cluster)
        env = {"RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false", "RAY_ADDRESS": lc.address}
        lc.connect(configure_logging=False, runtime_env={"env_vars": env})
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        yield lc
