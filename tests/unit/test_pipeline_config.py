"""The whole pipeline config is checked at load: a typo in any section fails at once,
naming the file and the key's dotted path; the configs in configs/ load."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from steerrec.config import ConfigError
from steerrec.pipeline import PipelineConfig, load_pipeline, stages

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny.yaml"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


ALIGN_CONFIGS = sorted((REPO / "configs").glob("align_*.yaml"))  # AlignConfig files (jobs/align.py --config)
PIPELINE_CONFIGS = sorted(set((REPO / "configs").glob("*.yaml")) - set(ALIGN_CONFIGS))


@pytest.mark.parametrize("config", ALIGN_CONFIGS, ids=lambda p: p.name)
def test_every_alignment_config_in_the_repository_loads(config):
    from steerrec.alignment.config import AlignConfig
    from steerrec.config import load

    assert isinstance(load(AlignConfig, config), AlignConfig)


@pytest.mark.parametrize("config", PIPELINE_CONFIGS, ids=lambda p: p.name)
def test_every_config_in_the_repository_loads(config, tmp_path):
    cfg = load_pipeline(config, [f"out={tmp_path}"])
    assert isinstance(cfg, PipelineConfig) and Path(cfg.out) == tmp_path
    assert set(cfg.models) <= set(cfg.train_per_model)
    plan = stages(cfg)
    assert plan[0].name == "prepare" and any(s.name.startswith("evaluate") for s in plan)


# (section path, typo'd key): one per section, nested ones included
TYPOS = [
    (("data",), "formt"),
    (("data",), "max_histroy"),
    (("preferences",), "sourse"),
    (("preferences", "engine"), "enigne"),
    (("preferences", "engine", "local"), "concurency"),
    (("preferences", "generation"), "tempreature"),
    (("benchmark",), "candidtes"),
    (("benchmark", "embedder"), "modle"),
    (("semantic_ids",), "collision_limt"),
    (("semantic_ids", "scaling"), "num_workrs"),
    (("train",), "beam_sise"),
    (("train", "loop"), "epohcs"),
    (("train_per_model", "tiger"), "mixtur"),
    (("train_per_model", "sasrec", "loop"), "lr_"),
    (("evaluate",), "max_exampels"),
]


@pytest.mark.parametrize("section,key", TYPOS, ids=lambda v: ".".join(v) if isinstance(v, tuple) else v)
def test_a_typo_in_any_section_fails_at_load_naming_file_and_dotted_key(section, key, tmp_path):
    data = copy.deepcopy(yaml.safe_load(TINY.read_text()))
    node = data
    for part in section:
        node = node.setdefault(part, {})
    node[key] = 1
    path = _write(tmp_path, data)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, [f"out={tmp_path / 'run'}"])
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert message.startswith(f"{path}: ") and f"'{'.'.join((*section, key))}'" in message, message


@pytest.mark.parametrize(
    "override,expected",
    [
        ("evaluate.beam_size=5", "evaluate: beam_size must be >= 10"),
        ("train.loop.epochs=two", "train.loop.epochs must be int, got 'two'"),
        ("train_per_model.tiger.mixture=nope", "train_per_model.tiger: mixture must be one of"),
        ("preferences.granularity=huge", "preferences: prompt.granularity must be one of"),
        ("models=[tiger, nope]", "train_per_model.nope: model must be one of"),
        ("data.format=amazon2018", "data: input is required for format 'amazon2018'"),
    ],
)
def test_a_bad_value_fails_at_load_naming_the_section(override, expected, tmp_path):
    with pytest.raises(ConfigError, match=r"^" + str(TINY).replace(".", r"\.") + ": ") as info:
        load_pipeline(TINY, [f"out={tmp_path}", override])
    assert expected in str(info.value)


def test_paths_are_filled_from_out_and_may_not_be_set(tmp_path):
    cfg = load_pipeline(TINY, ["out=run"], root=tmp_path)
    out = tmp_path / "run"
    assert cfg.out == str(out) and cfg.data.out == str(out / "data")
    assert cfg.benchmark.preferences == str(out / "data" / "truth.parquet")
    assert cfg.train_per_model["tiger"].semantic_ids == str(out / "ids" / "semantic_ids.parquet")
    assert cfg.train_per_model["sasrec"].semantic_ids == ""
    # train_per_model.<model> replaces the train section's top-level keys
    assert cfg.train_per_model["tiger"].loop.epochs == 1 and cfg.train_per_model["tiger"].beam_size == 10
    with pytest.raises(ConfigError, match=r"\['benchmark\.out'\]: set by the pipeline"):
        load_pipeline(TINY, ["out=run", "benchmark.out=/elsewhere"], root=tmp_path)
    with pytest.raises(ConfigError, match="out is required"):
        load_pipeline(TINY, ["out="])


def test_each_seed_gets_its_own_run_folder_and_loop_seed(tmp_path):
    cfg = load_pipeline(TINY, [f"out={tmp_path}", "seeds=[0, 3]", "models=[tiger]"])
    plan = {s.name: s for s in stages(cfg)}
    assert [n for n in plan if n.startswith("train")] == ["train tiger s0", "train tiger s3"]
    assert plan["train tiger s3"].output == tmp_path / "runs" / "tiger-s3"


@pytest.mark.parametrize(
    ("models", "with_ids"), [("[sasrec]", False), ("[idgenrec]", False), ("[sasrec, tiger]", True)]
)
def test_the_semantic_ids_stage_runs_only_for_models_that_read_them(tmp_path, models, with_ids):
    plan = [s.name for s in stages(load_pipeline(TINY, [f"out={tmp_path}", f"models={models}"]))]
    assert ("semantic_ids" in plan) == with_ids


def test_the_world_options_are_checked_at_load(tmp_path):
    with pytest.raises(ConfigError, match=r"tiny\.yaml: data: unknown key\(s\) \['world\.n_userz'\] for WorldConfig"):
        load_pipeline(TINY, [f"out={tmp_path}", "data.world.n_userz=10"])
    with pytest.raises(ConfigError, match=r"tiny\.yaml: data: world\.n_users must be >= 5, got 2"):
        load_pipeline(TINY, [f"out={tmp_path}", "data.world.n_users=2"])


def test_a_section_given_in_part_keeps_its_default_factory_values():
    """EvalConfig's steering section defaults to enabled=False (SteeringConfig's own default
    is True): setting one other key must not switch the evaluator's steering on."""
    from steerrec.config import from_dict
    from steerrec.evaluation.report import EvalConfig

    cfg = from_dict(EvalConfig, {"runs": ["r"], "out": "o", "steering": {"match": "threshold"}})
    assert cfg.steering.enabled is False and cfg.steering.match == "threshold"
    assert cfg.steering.embedder.model == "minilm" and cfg.steering.embedder.max_seq_length == 64
    deeper = from_dict(EvalConfig, {"runs": ["r"], "out": "o", "steering": {"embedder": {"max_seq_length": 32}}})
    assert deeper.steering.enabled is False
    assert (deeper.steering.embedder.model, deeper.steering.embedder.max_seq_length) == ("minilm", 32)
