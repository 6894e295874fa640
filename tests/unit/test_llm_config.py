"""Engine configuration: checks naming the field, presets, the ray.data.llm configs we build,
secrets kept out of reprs, and the sampling parameter mapping per engine. No Ray cluster."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from steerrec.config import ConfigError, load
from steerrec.llm import EngineConfig, make_sampling_params, read_sampling
from steerrec.llm.base import HttpSection, VLLMSection
from steerrec.llm.presets import PRESETS, preset

SCHEMA = {
    "type": "object",
    "properties": {"preferences": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5}},
    "required": ["preferences"],
}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Likes?"}]


def test_import_llm_modules_leaves_ray_vllm_torch_out():
    code = (
        "import sys, steerrec.llm, steerrec.llm.presets, steerrec.llm.models, steerrec.llm.vllm_engine,"
        " steerrec.llm.http_engine, steerrec.llm.local_engine;"
        "print([m for m in ('ray', 'vllm', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "overrides, field",
    [
        (["engine=gpt"], "engine"),
        (["vllm.tensor_parallel_size=0"], "vllm.tensor_parallel_size"),
        (["vllm.gpu_memory_utilization=1.5"], "vllm.gpu_memory_utilization"),
        (["http.url=localhost:8000"], "http.url"),
        (["http.max_retries=-1"], "http.max_retries"),
        (["local.backend=onnx"], "local.backend"),
        (["local.concurrency=0"], "local.concurrency"),
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        load(EngineConfig, None, overrides)


def test_unknown_key_and_yaml_file(tmp_path):
    with pytest.raises(ConfigError, match=r"vllm\.tp"):
        load(EngineConfig, None, ["vllm.tp=4"])
    path = tmp_path / "engine.yaml"
    path.write_text("engine: http\nmodel: gpt-4o-mini\nhttp:\n  qps: 5\n  api_key_env: OPENAI_API_KEY\n")
    cfg = load(EngineConfig, path, ["http.max_retries=1"])
    assert (cfg.engine, cfg.model, cfg.http.qps, cfg.http.max_retries) == ("http", "gpt-4o-mini", 5, 1)
    assert cfg.http.api_key_env == "OPENAI_API_KEY"


def test_presets():
    big = preset("llama3-70b-instruct")
    assert big.engine == "vllm" and big.model == "meta-llama/Meta-Llama-3-70B-Instruct"
    assert big.vllm.tensor_parallel_size == 4
    # two 4-GPU engines fill one 8-GPU node
    assert big.vllm.concurrency * big.vllm.tensor_parallel_size * big.vllm.pipeline_parallel_size == 8
    assert big.vllm.accelerator_type == "H100"
    small = preset("llama3-8b-instruct")
    assert small.vllm.tensor_parallel_size == 1 and small.model.endswith("Llama-3-8B-Instruct")
    assert preset("llama3-8b-instruct") is not small  # fresh objects: editing one leaves the next alone
    with pytest.raises(ValueError, match="llama3-8b-instruct"):
        preset("llama-2")
    assert set(PRESETS) >= {"llama3-70b-instruct", "llama3-8b-instruct"}


def test_vllm_processor_config_fields():
    pytest.importorskip("ray.data.llm")
    from steerrec.llm.vllm_engine import vllm_processor_config

    cfg = preset("llama3-70b-instruct")
    cfg.vllm.engine_kwargs = {"enable_chunked_prefill": True}
    pc = vllm_processor_config(cfg)
    assert type(pc).__name__ == "vLLMEngineProcessorConfig"
    assert pc.model_source == "meta-llama/Meta-Llama-3-70B-Instruct"
    kw = pc.engine_kwargs
    assert kw["tensor_parallel_size"] == 4 and kw["pipeline_parallel_size"] == 1
    assert kw["enable_prefix_caching"] is True and kw["max_model_len"] == 8192
    assert kw["enable_chunked_prefill"] is True
    assert (pc.concurrency, pc.batch_size, pc.accelerator_type) == ((2, 2), 128, "H100")
    assert pc.log_engine_metrics is False
    cfg.vllm.engine_kwargs = {"tensor_parallel_size": 8}
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        vllm_processor_config(cfg)


def test_sampling_params_checked_and_mapped_for_vllm():
    from steerrec.llm.vllm_engine import postprocess, preprocess, vllm_sampling_params

    params = make_sampling_params(temperature=0.7, top_p=0.9, max_tokens=64, seed=5, json_schema=SCHEMA)
    assert isinstance(params["json_schema"], str)  # JSON text: Arrow keeps it as one string column
    assert read_sampling(params).schema() == SCHEMA
    mapped = vllm_sampling_params(params)
    assert mapped == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 64,
        "seed": 5,
        "structured_outputs": {"json": json.dumps(SCHEMA)},
    }
    assert "structured_outputs" not in vllm_sampling_params(make_sampling_params(seed=None))
    assert "seed" not in vllm_sampling_params({"temperature": 0.0, "seed": None})

    row = {"user_id": "u1", "messages": MESSAGES, "sampling_params": params}
    engine_row = {**row, **preprocess(row)}
    assert engine_row["sampling_params"] == mapped
    engine_row.update(
        generated_text='{"preferences": ["x"]}',
        num_input_tokens=30,
        num_generated_tokens=9,
        prompt="<chat>",
        generated_tokens=[1, 2],
        metrics={},
    )
    out = postprocess(engine_row)
    assert set(out) == {
        "user_id",
        "messages",
        "sampling_params",
        "generated_text",
        "num_input_tokens",
        "num_generated_tokens",
    }
    assert out["sampling_params"] == params and out["num_generated_tokens"] == 9


@pytest.mark.parametrize(
    "params, field",
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"json_schema": "{not json"}, "json_schema"),
        ({"json_schema": "[1]"}, "json_schema"),
        ({"temprature": 1.0}, "temprature"),
    ],
)
def test_bad_sampling_params_name_the_field(params, field):
    with pytest.raises(ValueError, match=field):
        read_sampling(params)


def test_http_headers_from_env_and_never_shown(monkeypatch, caplog):
    pytest.importorskip("ray.data.llm")
    from steerrec.llm.http_engine import chat_payload, http_processor_config, secret_headers

    secret, org = "sk-test-9f8e7d6c5b4a", "org-hidden-123"
    monkeypatch.setenv("STEERREC_TEST_KEY", secret)
    monkeypatch.setenv("STEERREC_TEST_ORG", org)
    cfg = EngineConfig(
        engine="http",
        model="gpt-4o-mini",
        http=HttpSection(
            url="http://127.0.0.1:9/v1/chat/completions",
            api_key_env="STEERREC_TEST_KEY",
            header_envs={"OpenAI-Organization": "STEERREC_TEST_ORG"},
            qps=3,
            max_retries=2,
            concurrency=2,
        ),
    )
    assert secret_headers(cfg) == {"Authorization": f"Bearer {secret}", "OpenAI-Organization": org}
    with caplog.at_level("DEBUG"):
        pc = http_processor_config(cfg)
    assert (pc.url, pc.qps, pc.max_retries, pc.concurrency) == (cfg.http.url, 3, 2, 2)
    shown = " ".join([repr(cfg), str(cfg), repr(pc), str(pc), pc.model_dump_json(), caplog.text])
    assert secret not in shown and org not in shown
    assert "Authorization" in repr(pc.session_factory)

    monkeypatch.delenv("STEERREC_TEST_KEY")
    with pytest.raises(ValueError, match="STEERREC_TEST_KEY"):
        http_processor_config(cfg)

    payload = chat_payload(
        "gpt-4o-mini",
        {
            "messages": MESSAGES,
            "sampling_params": make_sampling_params(temperature=0.2, max_tokens=32, seed=1, json_schema=SCHEMA),
        },
    )
    assert payload["model"] == "gpt-4o-mini" and payload["messages"] == MESSAGES
    assert (payload["temperature"], payload["top_p"], payload["max_tokens"], payload["seed"]) == (0.2, 1.0, 32, 1)
    assert payload["response_format"]["type"] == "json_schema"
    assert payload["response_format"]["json_schema"]["schema"] == SCHEMA


def test_vllm_section_defaults_are_independent():
    a, b = VLLMSection(), VLLMSection()
    a.engine_kwargs["x"] = 1
    assert b.engine_kwargs == {}


def test_vllm_lora_per_request():
    pytest.importorskip("ray.data.llm")
    from steerrec.llm.vllm_engine import lora_rows, vllm_processor_config

    cfg = preset("llama3-8b-instruct")
    assert vllm_processor_config(cfg).dynamic_lora_loading_path is None
    assert "enable_lora" not in vllm_processor_config(cfg).engine_kwargs  # LoRA off by default
    cfg = load(EngineConfig, None, ["engine=vllm", "vllm.max_lora_rank=16", "vllm.lora_path=s3://b/adapters"])
    pc = vllm_processor_config(cfg)
    assert pc.dynamic_lora_loading_path == "s3://b/adapters"
    kw = pc.engine_kwargs
    assert (kw["enable_lora"], kw["max_lora_rank"], kw["max_loras"]) == (True, 16, 1)
    rows = [{"messages": [{"role": "user", "content": "hi"}], "sampling_params": {"max_tokens": 4}}]
    assert lora_rows(rows, "langptune_001") == [rows[0] | {"model": "langptune_001"}] and "model" not in rows[0]
    with pytest.raises(ValueError, match=r"vllm\.lora_path"):
        load(EngineConfig, None, ["vllm.max_lora_rank=8", "vllm.lora_path=/local/adapters"])
    with pytest.raises(ValueError, match=r"vllm\.max_lora_rank"):
        load(EngineConfig, None, ["vllm.lora_path=gs://b/a"])
