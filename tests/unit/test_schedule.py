"""Learning-rate schedules (steerrec.train.schedule) against hand-worked values."""

from __future__ import annotations

import math

import pytest

from steerrec.train.schedule import ScheduleConfig, lr_factor


def test_docstring_values():
    assert lr_factor(2, ScheduleConfig("cosine", 4), 12) == pytest.approx(0.5)
    assert lr_factor(8, ScheduleConfig("cosine", 4), 12) == pytest.approx(0.5)
    assert lr_factor(16, ScheduleConfig("inverse_sqrt", 4)) == pytest.approx(0.5)
    assert lr_factor(8, ScheduleConfig("linear", 4), 12) == pytest.approx(0.5)


def test_linear_falls_in_equal_steps_to_min_ratio():
    cfg = ScheduleConfig("linear", warmup_steps=2, min_ratio=0.2)
    assert [lr_factor(s, cfg, 6) for s in range(1, 8)] == pytest.approx([0.5, 1.0, 0.8, 0.6, 0.4, 0.2, 0.2])


def test_cosine_ends_at_min_ratio_and_is_monotone_after_warmup():
    cfg = ScheduleConfig("cosine", warmup_steps=10, min_ratio=0.1)
    values = [lr_factor(s, cfg, 110) for s in range(1, 121)]
    assert values[9] == pytest.approx(1.0)
    assert values[109] == pytest.approx(0.1) and values[119] == pytest.approx(0.1)  # held after the end
    assert all(a >= b for a, b in zip(values[9:], values[10:]))


def test_constant_and_no_warmup():
    assert lr_factor(1, ScheduleConfig()) == 1.0
    assert lr_factor(5, ScheduleConfig("inverse_sqrt")) == pytest.approx(1 / math.sqrt(5))


def test_errors_name_the_field():
    with pytest.raises(ValueError, match="schedule.kind"):
        ScheduleConfig("step")
    with pytest.raises(ValueError, match="total number"):
        lr_factor(5, ScheduleConfig("cosine"))
    with pytest.raises(ValueError, match="min_ratio"):
        ScheduleConfig("cosine", min_ratio=2)
