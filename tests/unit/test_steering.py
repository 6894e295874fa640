"""Steering that reads polarity: the classifier, item matching, biases, and the served recommender
obeying "avoid" on the built-in world's catalog (where each item's category is known)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from steerrec.data.text import render_items
from steerrec.data.world.generator import WorldConfig, generate
from steerrec.steering import AVOID, LIKE, Reading, Steerer, SteeringConfig, item_bias, phrases

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    items = generate(WorldConfig(n_users=50, n_items=100, seed=3)).items
    categories = np.array([json.loads(e)["world_category"] for e in items.column("extra").to_pylist()])
    return render_items(items), categories  # the listings a run folder's items.parquet carries


@pytest.fixture(scope="module")
def steerer(world):
    return Steerer(world[0], SteeringConfig())


def test_polarity_classifier_generalises_to_held_out_phrasings(steerer):
    model = steerer.polarity
    assert model.embedder == "minilm" and model.fingerprint.startswith(phrases.fingerprint())
    assert model.held_out_accuracy >= 0.8, model  # phrasings it never saw while fitting
    unseen = {
        "Please keep coffee away from me": AVOID,
        "I really don't want any headphones": AVOID,
        "Not a fan of board games, skip them": AVOID,
        "Can you find me running shoes": LIKE,
        "Would love some skincare": LIKE,
        "Looking for wireless headphones": LIKE,
    }
    readings = steerer.read(list(unseen))
    assert {r.text: r.polarity for r in readings} == unseen


@pytest.mark.parametrize("category", ["running_shoes", "headphones", "coffee", "board_games", "skincare"])
def test_an_avoid_statement_names_its_category_and_nothing_else(steerer, world, category):
    noun = category.replace("_", " ")
    [reading] = steerer.read([f"Stay away from {noun}"])
    assert reading.polarity == AVOID
    named = world[1][list(reading.rows)]
    assert (named == category).all()
    assert len(named) >= 0.8 * (world[1] == category).sum()


def test_vague_statements_name_few_items(steerer):
    """No category stands out for "cheap things": the floor keeps all but a handful of items out."""
    for reading in steerer.read(["prefer cheap things", "good value", "fast shipping"]):
        assert reading.n_items <= 0.05 * steerer.n_items, reading


def test_item_bias_contradiction_exclusion_and_likes():
    cfg = SteeringConfig(like_weight=2.0)
    like = Reading("I want X", LIKE, 0.1, (0, 1, 2))
    avoid = Reading("avoid X", AVOID, 0.9, (2, 3))
    bias = item_bias([[like, avoid], [like], []], [(), (4,), ()], 6, cfg)
    assert bias.shape == (3, 6) and bias.dtype == np.float32
    assert bias[0].tolist() == [2.0, 2.0, -math.inf, -math.inf, 0.0, 0.0]  # avoid wins on item 2
    assert bias[1].tolist() == [2.0, 2.0, 2.0, 0.0, -math.inf, 0.0]
    assert bias[2].tolist() == [0.0] * 6
    assert item_bias([[], []], None, 6, cfg) is None  # nothing to do: no bias at all
    demote = item_bias([[avoid]], None, 6, SteeringConfig(avoid_weight=5.0))
    assert demote[0].tolist() == [0.0, 0.0, -5.0, -5.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2 examples of readings but 1 of exclusions"):
        item_bias([[], []], [()], 6, cfg)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("avoid_probability", 1.0, "avoid_probability must be in"),
        ("avoid_similarity", 1.5, "avoid_similarity must be a cosine"),
        ("match", "knn", "match must be one of"),
        ("like_weight", -1.0, "like_weight must be >= 0"),
        ("like_weight", math.inf, "like_weight must be finite"),
    ],
)
def test_config_errors_name_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        SteeringConfig(**{field: value})


def test_the_cache_returns_the_same_readings_without_embedding_again(world):
    calls = []
    base = Steerer(world[0][:20], SteeringConfig(cache_size=2))

    def counting(texts):
        calls.append(list(texts))
        return base.embed(texts)

    s = Steerer(world[0][:20], SteeringConfig(cache_size=2), embed=counting, polarity=base.polarity)
    calls.clear()
    first = s.read(["Avoid coffee", "I love coffee"])
    again = s.read(["I love coffee", "Avoid coffee"])
    assert calls == [["Avoid coffee", "I love coffee"]]
    assert again == first[::-1]
    s.read(["Show me headphones"])  # evicts the least recently used ("I love coffee")
    s.read(["I love coffee"])
    assert calls[-1] == ["I love coffee"]


def test_beam_search_with_avoid_bias_returns_no_avoided_item(steerer, world):
    """The served path in miniature: a scorer that loves running shoes, asked to avoid them."""
    from steerrec.decoding import PrefixTrie, constrained_beam_search

    titles, categories = world
    rng = np.random.default_rng(0)
    codes = np.array(rng.permutation(8**3)[: len(titles)])
    codes = np.stack([codes // 64, codes // 8 % 8, codes % 8], 1)
    trie = PrefixTrie.from_codes(codes, [0, 8, 16], 24)
    item_logp = torch.where(torch.from_numpy(categories == "running_shoes"), 0.0, -5.0).double()
    tokens = torch.from_numpy(codes + np.array([0, 8, 16]))

    def step(prefix, state):  # log-prob of a token: the best item below it (a peaked, consistent model)
        depth = prefix.shape[1]
        out = torch.full((prefix.shape[0], 24), -30.0, dtype=torch.float64)
        for r, p in enumerate(prefix.tolist()):
            match = (tokens[:, :depth] == torch.tensor(p)).all(1) if depth else torch.ones(len(codes), dtype=bool)
            for i in torch.nonzero(match).flatten().tolist():
                t = int(tokens[i, depth])
                out[r, t] = max(out[r, t].item(), item_logp[i].item())
        return out, state

    plain, _ = constrained_beam_search(step, 1, trie, 10, 10)
    assert (categories[plain[0].numpy()] == "running_shoes").all()
    bias = steerer.item_bias([steerer.read(["I don't want running shoes anymore"])])
    steered, scores = constrained_beam_search(step, 1, trie, 10, 10, item_bias=torch.from_numpy(bias))
    assert (steered >= 0).all() and torch.isfinite(scores).all()  # the beam still fills
    assert not (categories[steered[0].numpy()] == "running_shoes").any()


def test_otsu_cut_splits_two_clusters_and_handles_ties():
    from steerrec.steering.steer import otsu_cut

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.05, 0.03, 300), rng.normal(0.45, 0.03, 60)])
    cut = otsu_cut(values)
    assert (values[:300] < cut).all() and (values[300:] > cut).all()
    assert otsu_cut(np.array([0.3, 0.3, 0.3])) == 0.3
    assert otsu_cut(np.array([0.1, 0.5])) == pytest.approx(0.3)


def test_refine_narrows_only_a_clear_split():
    from steerrec.steering.steer import _refine

    rows = np.arange(10)
    clear = np.array([0.40] * 7 + [0.70] * 3) + np.linspace(0, 0.01, 10)  # a distinctive few on top
    assert _refine(rows, clear, 2.0).tolist() == [7, 8, 9]
    spread = np.linspace(0.40, 0.60, 10)  # an even spread: no subgroup stands out
    assert _refine(rows, spread, 2.0).tolist() == rows.tolist()
    assert _refine(rows, clear, math.inf).tolist() == rows.tolist()
