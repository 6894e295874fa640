"""The evaluator builds one Steerer per catalog and shares it across the runs (seeds) it evaluates."""

from __future__ import annotations

from types import SimpleNamespace

from steerrec.evaluation import report
from steerrec.steering import SteeringConfig


def test_one_steerer_per_catalog(monkeypatch):
    built = []
    monkeypatch.setattr(report, "Steerer", lambda texts, cfg: built.append(texts) or SimpleNamespace(texts=texts))
    seed0 = SimpleNamespace(item_ids=["a", "b"], texts={"a": "red mug", "b": "blue lamp"})
    seed1 = SimpleNamespace(item_ids=["a", "b"], texts={"a": "red mug", "b": "blue lamp"})
    other = SimpleNamespace(item_ids=["b", "a"], texts=seed0.texts)  # another order: another catalog
    cache, cfg = {}, SteeringConfig()

    first = report._steerer(cache, seed0, cfg)
    assert report._steerer(cache, seed1, cfg) is first
    assert report._steerer(cache, other, cfg) is not first
    assert built == [["red mug", "blue lamp"], ["blue lamp", "red mug"]]
