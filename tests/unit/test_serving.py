"""The serving class on a tiny random Mender-Tok run folder: batching, exclusion, limits, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

from steerrec.serving import Recommender, RecommendRequest, RequestError, UnknownUserError, load_run
from steerrec.serving.schemas import MAX_HISTORY, MAX_K, MAX_PREFERENCE_CHARS, MAX_PREFERENCES
from steerrec.serving.tiny_run import build_run
from steerrec.steering import item_bias

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def rec(run_dir):
    """A beam wider than the catalog (50 items): the search is exact."""
    return Recommender.from_run(run_dir, beam_size=64)


@pytest.fixture(scope="module")
def narrow(run_dir):
    """The default beam (20): results depend on pruning, still not on the batch."""
    return Recommender.from_run(run_dir)


REQUESTS = [
    RecommendRequest(user_id="u1", preferences=["avoid bulky headsets"], k=5),
    RecommendRequest(history=["i0003", "i0010", "i_no_id"], preferences=["prefer cheap things", "no leather"], k=10),
    RecommendRequest(history=["i0003", "i0010"], k=7, exclude_history=False),
    RecommendRequest(history=[], preferences=["like wireless"], k=3),
    RecommendRequest(user_id="u4", k=MAX_K),
]


@pytest.mark.parametrize("which", ["rec", "narrow"])
def test_batched_equals_one_by_one(which, request):
    rec = request.getfixturevalue(which)
    requests = [r.model_copy(update={"k": min(r.k, rec.beam_size)}) for r in REQUESTS]
    batched = rec.recommend(requests)
    for req, together in zip(requests, batched):
        [alone] = rec.recommend([req])
        assert [i.item_id for i in together.items] == [i.item_id for i in alone.items]
        assert [i.score for i in together.items] == pytest.approx([i.score for i in alone.items], abs=1e-4)
        assert len(together.items) == min(req.k, len(_allowed(rec, rec.resolve(req))))
        assert together.model == "mender_tok"


def _bias(rec, query) -> np.ndarray:
    bias = item_bias([query.readings], [query.exclude], rec.n_items, rec.steering)
    return np.zeros(rec.n_items, dtype=np.float32) if bias is None else bias[0]


def _allowed(rec, query) -> list[int]:
    return [r for r, b in enumerate(_bias(rec, query)) if np.isfinite(b)]


def _brute_force(rec, request):
    """Every item's teacher-forced log-prob under the model plus its steering bias, best first
    (excluded and avoided items dropped)."""
    from steerrec.models.seq2seq import shift_right

    query = rec.resolve(request)
    bias = _bias(rec, query)
    model = rec.run.model
    with torch.no_grad():
        state = model.encode(rec._model_batch([query]))
        n = rec.n_items
        target = torch.from_numpy(rec.item_tokens)
        logits = model.decode(shift_right(target), state["memory"].expand(n, -1, -1), state["mask"].expand(n, -1))
        logp = torch.log_softmax(logits.float(), -1).gather(-1, target[..., None]).squeeze(-1).sum(-1)
    score = logp.numpy() + bias
    ranked = sorted(_allowed(rec, query), key=lambda r: -score[r])
    return [(rec.run.item_ids[r], float(score[r])) for r in ranked][: request.k]


def test_exhaustive_beam_matches_brute_force_with_exclusion(rec):
    assert rec.beam_size >= rec.n_items  # the beam then holds every item: the search is exact
    for request in REQUESTS:
        [resp] = rec.recommend([request])
        expected = _brute_force(rec, request)
        assert [i.item_id for i in resp.items] == [item for item, _ in expected]
        assert [i.score for i in resp.items] == pytest.approx([s for _, s in expected], abs=1e-4)


def test_exclude_history(rec):
    history = [f"i{n:04d}" for n in range(0, 40, 2)]
    kept, excluded = rec.recommend(
        [
            RecommendRequest(history=history, k=MAX_K, exclude_history=False),
            RecommendRequest(history=history, k=MAX_K, exclude_history=True),
        ]
    )
    assert {i.item_id for i in kept.items} == set(rec.run.item_ids)  # k >= catalog: every item
    assert {i.item_id for i in excluded.items} == set(rec.run.item_ids) - set(history)
    user = {i.item_id for i in rec.user_history("u2").history}
    [resp] = rec.recommend([RecommendRequest(user_id="u2", k=MAX_K)])
    assert not user & {i.item_id for i in resp.items} and len(resp.items) == rec.n_items - len(user)


def test_preferences_reach_the_model(rec):
    a, b = rec.recommend(
        [
            RecommendRequest(history=["i0001"], preferences=["avoid bulky headsets"], k=MAX_K),
            RecommendRequest(history=["i0001"], preferences=["prefer cheap wooden things"], k=MAX_K),
        ]
    )
    scores_a = {i.item_id: i.score for i in a.items}
    assert any(abs(scores_a[i.item_id] - i.score) > 1e-4 for i in b.items)


def test_item_without_semantic_id_is_history_only(rec):
    assert "i_no_id" not in rec.row
    [resp] = rec.recommend([RecommendRequest(history=["i_no_id"], k=MAX_K, exclude_history=False)])
    assert "i_no_id" not in {i.item_id for i in resp.items} and len(resp.items) == rec.n_items


def test_k_above_the_beam_is_refused_naming_k(narrow):
    with pytest.raises(RequestError, match="k=21 exceeds this service's beam size 20") as info:
        narrow.recommend([RecommendRequest(history=["i0001"], k=21)])
    assert info.value.loc == ("k",)
    assert len(narrow.recommend([RecommendRequest(history=["i0001"], k=20)])[0].items) == 20


def test_unknown_item_and_user_are_named(rec):
    with pytest.raises(RequestError, match="'nope' in history\\[1\\]") as info:
        rec.recommend([RecommendRequest(history=["i0001", "nope"])])
    assert info.value.loc == ("history", 1)
    with pytest.raises(UnknownUserError, match="ghost"):
        rec.recommend([RecommendRequest(user_id="ghost")])
    with pytest.raises(UnknownUserError):
        rec.user_history("ghost")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"history": ["i0001"], "k": 0}, "k"),
        ({"history": ["i0001"], "k": MAX_K + 1}, "k"),
        ({"history": ["i0001"] * (MAX_HISTORY + 1)}, "history"),
        ({"history": [""]}, "history.0"),
        ({"history": ["i0001"], "preferences": ["x"] * (MAX_PREFERENCES + 1)}, "preferences"),
        ({"history": ["i0001"], "preferences": ["x" * (MAX_PREFERENCE_CHARS + 1)]}, "preferences.0"),
        ({"history": ["i0001"], "preferences": ["   "]}, "preferences.0"),
        ({"history": ["i0001"], "preferences": ["ok", " ?!... "]}, "preferences.1"),
        ({"history": ["i0001"], "colour": "red"}, "colour"),
        ({"history": ["i0001"], "user_id": "u1"}, "exactly one of 'history' and 'user_id'"),
        ({}, "exactly one of 'history' and 'user_id'"),
    ],
)
def test_request_limits_name_the_field(payload, field):
    with pytest.raises(ValidationError) as info:
        RecommendRequest.model_validate(payload)
    named = [".".join(str(p) for p in e["loc"]) for e in info.value.errors()] + [str(info.value)]
    assert any(field == n or field in n for n in named), named


def test_search_items_and_users(rec):
    hits = rec.search_items("RED", limit=100)
    assert hits and all("red" in h.title for h in hits)
    assert [h.item_id for h in rec.search_items("i0007")] == ["i0007"]
    assert len(rec.search_items("", limit=5)) == 5
    assert rec.search_items("no such words") == []
    assert rec.users(limit=3) == ["u0", "u1", "u2"]
    history = rec.user_history("u1").history
    assert history and all(h.title for h in history)


def test_load_run_errors_name_the_problem(run_dir, tmp_path):
    import shutil

    from steerrec.run_folder import RunFolderError, new_run_info, write_run_info

    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken)
    write_run_info(broken, new_run_info("recommender", 0, {}, model="sasrec"))
    with pytest.raises(RunFolderError, match="run.json: field 'details.model' is 'sasrec', which cannot be used"):
        load_run(broken)
    write_run_info(broken, new_run_info("recommender", 0, {}))
    with pytest.raises(RunFolderError, match="run.json: field 'details.model' must be the model's registry name"):
        load_run(broken)
    write_run_info(broken, new_run_info("semantic_ids", 0, {}, model="mender_tok"))
    with pytest.raises(RunFolderError, match="run.json: field 'kind' is 'semantic_ids'"):
        load_run(broken)
    write_run_info(broken, new_run_info("recommender", 0, {}, model="mender_tok"))
    (broken / "semantic_ids.parquet").unlink()
    with pytest.raises(RunFolderError, match=r"semantic_ids.parquet: missing \(written by jobs/train_semantic_ids"):
        load_run(broken)
    shutil.copy(run_dir / "semantic_ids.parquet", broken / "semantic_ids.parquet")
    cfg = yaml.safe_load((broken / "config.yaml").read_text())
    cfg["max_histry"] = 3
    (broken / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="max_histry"):
        load_run(broken)
    with pytest.raises(ValueError, match="beam_size must be an int >= 1, got 0"):
        Recommender(load_run(run_dir), beam_size=0)


def test_haproxy_ingress_variables_keep_what_the_user_set():
    from steerrec.serving.ingress import HAPROXY_ENV, use_haproxy_ingress

    env = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}
    assert use_haproxy_ingress(env) == {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}
    assert set(HAPROXY_ENV) == set(env)


@pytest.fixture(scope="module")
def idgenrec_dir(tmp_path_factory):
    """A tiny random IDGenRec run folder: 30 items with textual IDs, one a prefix of another."""
    from steerrec.serving.tiny_run import build_idgenrec_run

    return build_idgenrec_run(tmp_path_factory.mktemp("idgenrec"))


def _idgenrec_brute_force(rec, request):
    """Every item's teacher-forced log-prob of its ID + </s> under the recommender, plus its bias."""
    from steerrec.models.idgenrec_text import EOS_ID
    from steerrec.train.idgenrec_batches import padded

    query = rec.resolve(request)
    bias = _bias(rec, query)
    model = rec.run.model.recommender
    labels = padded([[t for t in row if t >= 0] + [EOS_ID] for row in rec.run.codes.tolist()], -100)
    with torch.no_grad():
        state = rec.run.model.recommender.encode(rec._model_batch([query]))
        n = rec.n_items
        memory = {"memory": state["memory"].expand(n, -1, -1), "mask": state["mask"].expand(n, -1)}
        logp = torch.log_softmax(model.logits(memory, labels).float(), -1)
        logp = logp.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
        logp = (logp * (labels >= 0)).sum(-1)
    score = logp.numpy() + bias
    ranked = sorted(_allowed(rec, query), key=lambda r: -score[r])
    return [(rec.run.item_ids[r], float(score[r])) for r in ranked][: request.k]


def test_an_idgenrec_run_is_served_exactly_with_its_textual_ids(idgenrec_dir, rec):
    import pyarrow.parquet as pq

    idgenrec = Recommender.from_run(idgenrec_dir, beam_size=64)  # the beam holds every item: exact
    assert idgenrec.model_name == "idgenrec" and idgenrec.n_items == 30
    table = pq.read_table(idgenrec_dir / "semantic_ids.parquet").to_pydict()
    texts = dict(zip(table["item_id"], table["text"]))
    assert any(b.startswith(a + " ") for a in texts.values() for b in texts.values())  # an ID that is a prefix
    requests = [
        RecommendRequest(user_id="u1", k=5),
        RecommendRequest(history=["i0003", "i0010"], preferences=["avoid red lamps"], k=10),
        RecommendRequest(history=[], k=MAX_K, exclude_history=False),
    ]
    batched = idgenrec.recommend(requests)
    for request, together in zip(requests, batched):
        [alone] = idgenrec.recommend([request])
        expected = _idgenrec_brute_force(idgenrec, request)
        assert [i.item_id for i in together.items] == [i.item_id for i in alone.items] == [e for e, _ in expected]
        assert [i.score for i in together.items] == pytest.approx([s for _, s in expected], abs=1e-4)
        assert all(i.id_text == texts[i.item_id] for i in together.items) and together.model == "idgenrec"
    assert len(batched[2].items) == 30  # every item reachable: no invalid ID, none lost
    assert not {"i0003", "i0010"} & {i.item_id for i in batched[1].items}  # history left out
    assert all(i.id_text is None for i in rec.recommend([REQUESTS[0]])[0].items)  # semantic-ID models: none
