"""Algorithm 1 (unique textual IDs) with a scripted generator whose answers are known."""

from __future__ import annotations

import pytest

from steerrec.ids.textual import DiverseIdConfig, assign_unique_ids


def test_schedule_is_the_papers():
    cfg = DiverseIdConfig()
    assert cfg.penalties() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    attempts = cfg.attempts()
    assert len(attempts) == 20
    assert attempts[0] == (0.1, 1, 10) and attempts[9] == (1.0, 1, 10) and attempts[10] == (0.1, 10, 20)


class _Scripted:
    """Every item proposes the same ID until the penalty reaches its item's threshold, then
    an ID of its own; long IDs (window [10, 20)) are (100 + item,) for items >= 3; item 4
    never finds one. Records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], float, int, int]] = []

    def __call__(self, items, penalty, min_len, max_len):
        self.calls.append((tuple(items), penalty, min_len, max_len))
        out = []
        for item in items:
            shared = [(7,), (7,)]  # two groups that agree
            if min_len == 1:
                out.append(shared + ([(10 + item,)] if item < 3 and penalty >= 0.1 * (1 + 2 * item) - 1e-9 else []))
            else:
                out.append(shared + ([(100 + item,)] if item == 3 else []))
        return out


def test_first_free_candidate_then_higher_penalty_then_longer_window_then_fallback():
    gen = _Scripted()
    ids, report = assign_unique_ids(5, gen, DiverseIdConfig(batch_size=8), lambda i: (900 + i,), empty_text=2)
    # item 0 takes the shared (7,) at the first attempt; item 1 finds (11,) at penalty 0.3
    # (3rd attempt), item 2 (12,) at 0.5 (5th); item 3 only in the long window (11th);
    # item 4 never: its fallback
    assert ids == [(7,), (11,), (12,), (103,), (904,)]
    assert report.attempts == [1, 3, 5, 11, 0]
    assert report.windows == [0, 0, 0, 1, -1]
    summary = report.summary()
    assert summary["second_try_share"] == pytest.approx(4 / 5)
    assert summary["longer_id_share"] == pytest.approx(2 / 5)  # item 3 and the fallback
    assert summary["fallback_items"] == 1 and summary["empty_text_items"] == 2 and summary["unique"] == 1.0
    assert gen.calls[0] == ((0, 1, 2, 3, 4), 0.1, 1, 10)  # the first attempt in one batch
    # item 1's second attempt, with the items whose first candidates are all taken already
    assert gen.calls[1] == ((1, 2, 3, 4), 0.2, 1, 10)
    assert len(set(ids)) == 5
    assert (ids, report.attempts) == _one_by_one(5, _Scripted(), lambda i: (900 + i,))


def _one_by_one(n, generate, fallback):
    """Algorithm 1 as the paper writes it: item by item, attempt by attempt, no batching."""
    taken, ids, found_at = set(), [], []
    for item in range(n):
        for attempt, setting in enumerate(DiverseIdConfig().attempts(), start=1):
            free = [c for c in generate([item], *setting)[0] if c not in taken]
            if free:
                ids.append(free[0])
                found_at.append(attempt)
                break
        else:
            ids.append(fallback(item))
            found_at.append(0)
        taken.add(ids[-1])
    return ids, found_at


def test_batched_attempts_give_algorithm_1s_ids_on_a_crowded_catalog():
    # 40 items, 17 short and 11 long names: first tries, later tries, long IDs and fallbacks
    def generate(items, penalty, min_len, max_len):
        step, names = round(penalty * 10), 17 if min_len == 1 else 11
        return [[((i * i + step * g * 3) % names + 100 * min_len,) for g in range(2)] for i in items]

    calls = []
    counted = lambda items, *setting: calls.append(len(items)) or generate(items, *setting)
    ids, report = assign_unique_ids(40, counted, DiverseIdConfig(batch_size=16), lambda i: (1000 + i,))
    assert (ids, report.attempts) == _one_by_one(40, generate, lambda i: (1000 + i,))
    assert {1, 2, 3, 11, 0} <= set(report.attempts)
    assert len(calls) < sum(max(a, 1) if a else 20 for a in report.attempts)  # fewer calls than items x attempts


def test_key_decides_what_counts_as_taken():
    gen = lambda items, *_: [[(1, 2), (3,)] for _ in items]
    # (1, 2) and (3,) read the same ("ab"): the second item may not take (3,)
    read = {(1, 2): "ab", (3,): "ab", (50,): "x50", (51,): "x51"}
    ids, report = assign_unique_ids(2, gen, DiverseIdConfig(), lambda i: (50 + i,), key=read.__getitem__)
    assert ids == [(1, 2), (51,)] and report.attempts == [1, 0]


def test_a_taken_fallback_raises_naming_the_item():
    gen = lambda items, *_: [[(1,)] for _ in items]
    with pytest.raises(ValueError, match="item 1"):
        assign_unique_ids(2, gen, DiverseIdConfig(), lambda i: (1,))  # item 0 took (1,)


@pytest.mark.parametrize(
    "kwargs", [{"n_groups": 0}, {"windows": []}, {"windows": [[3, 3]]}, {"penalty_step": 0}, {"penalty_start": 2.0}]
)
def test_config_checks_name_the_field(kwargs):
    with pytest.raises(ValueError, match="ids"):
        DiverseIdConfig(**kwargs)
