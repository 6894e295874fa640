"""LangPTune as one Ray program on a tiny world: a trainer actor and 2 generator actors, the
trainer's adapter handed to the generators after each policy phase (they then hold exactly
its weights), and a run stopped after outer iteration 0 that resumes at iteration 1 with
nothing lost (its iteration 1 equals the uninterrupted run's, byte for byte)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("peft")

from tests.tiny_data import tiny_langptune

from steerrec.config import from_dict
from steerrec.langptune.ray_program import LangPTuneProgram
from steerrec.langptune.train import LangPTuneConfig


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from steerrec.data.prepare import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("lpt_world")
    prepare(PrepareConfig(format="world", out=str(root / "data"), world={"n_users": 12, "n_items": 30}))
    return root


def _cfg(world, out) -> LangPTuneConfig:
    raw = tiny_langptune(str(world / "data"), out, outer_iterations=2, cl_sessions=6, max_train_sessions=8)
    raw["ray"] = {"generators": 2, "generator_cpus": 0.5, "trainer_cpus": 1}
    return from_dict(LangPTuneConfig, raw)


def _ending():
    """A hook raising EOS's score after 2 tokens: the tiny random policy's profiles end inside
    the budget, so RLSO has rewards to tell apart and the adapter moves. A local function:
    Ray ships it by value (this test module is not importable in the actors)."""

    def hook(policy) -> None:
        policy.generation_config.exponential_decay_length_penalty = (2, 2.0)

    return hook


def test_adapter_reaches_the_generators_and_a_stopped_run_resumes(ray_session, world):
    whole = world / "whole"
    with LangPTuneProgram(_cfg(world, whole), _ending()) as program:
        results = program.train_and_evaluate(eval_sessions=2, k=3)
        trainer, generators = program.adapters()
    assert len(generators) == 2 and all(g == trainer for g in generators)  # the last hand-over arrived
    rows = [json.loads((whole / f"iter_0{k}" / "done.json").read_text()) for k in (0, 1)]
    for row in rows:
        handover = row["handover"]
        assert handover["bytes"] == len(trainer) and handover["generators"] == 2
        assert 0 < handover["serialise_seconds"] <= handover["seconds"] and handover["load_seconds"] > 0
    assert rows[0]["policy"]["train_loss"] > 0 and rows[0]["policy"]["rollout_cut_share"] < 1.0
    adapters = [(whole / f"iter_0{k}" / "adapter.safetensors").read_bytes() for k in (0, 1)]
    assert adapters[0] != adapters[1]  # the policy moved, so the hand-over carried something new
    assert results["handover"]["count"] == 3 and results["handover"]["bytes"] == len(trainer)
    assert json.loads((whole / "run.json").read_text())["details"]["handover"]["count"] == 3

    # the run as a kill right after iteration 0 leaves it: iteration 1 gone; the rerun resumes there
    cut = world / "cut"
    after = {"iter_01", "metrics.json", "results.json", "queries.json", "run.json"}  # written later
    shutil.copytree(whole, cut, ignore=lambda folder, names: after & set(names) if folder == str(whole) else ())
    first = (cut / "iter_00" / "done.json").read_bytes()
    with LangPTuneProgram(_cfg(world, cut), _ending()) as program:
        resumed = program.train_and_evaluate(eval_sessions=2, k=3)
    assert (cut / "iter_00" / "done.json").read_bytes() == first
    for name in ("adapter.safetensors", "embedder.safetensors", "pairs.json"):
        assert (cut / "iter_01" / name).read_bytes() == (whole / "iter_01" / name).read_bytes(), name
    assert resumed["metrics"] == results["metrics"]
    assert resumed["handover"]["count"] == 3  # this run's start, and iterations 0 (from done.json) and 1
