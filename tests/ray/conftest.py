"""One local Ray session for every test under tests/ray (started once, shut down at the end).

Test modules here that write `from conftest import dataset_dir` get this module (pytest
puts tests/ray first on sys.path), so it re-exports the helpers of tests/conftest.py.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("_steerrec_tests_conftest", Path(__file__).parents[1] / "conftest.py")
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
REPO = _root.REPO
SHARED_DATASETS = _root.SHARED_DATASETS
dataset_dir = _root.dataset_dir


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray cluster sized for this machine: 2 CPUs, no dashboard, no usage stats.

    Yields the `ray` module; tests use `ray_session.data.from_items(...)` and sort results.
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray.data

    import ray

    if ray.is_initialized():  # a session already started in this process: reuse it
        yield ray
        return
    ray.init(
        address="local",  # always a fresh local cluster, never one another process started
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
