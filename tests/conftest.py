"""Shared test helpers: where the real datasets are (a clear skip when they are not), one torch thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("STEERREC_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset_dir(name: str) -> Path:
    """The real dataset folder `name` under ../shared/datasets, or skip saying why."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(
            f"real dataset {name!r} not found at {path}: CI and `make test` expect ../shared "
            "beside the repository (or STEERREC_SHARED_DATASETS pointing at it)"
        )
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores).

    A module opts in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
