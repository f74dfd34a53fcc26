"""The price table, budget settings and calendar periods (chatops/costs.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from chatops.costs import Budgets, ModelPrice, PriceTable, period_bounds


def test_prices_match_dated_model_names_and_unknown_models_cost_unknown():
    table = PriceTable({"gpt-4o": ModelPrice(input_per_1k=0.0025, output_per_1k=0.01),
                        "gpt-4o-mini": ModelPrice(input_per_1k=0.00015, output_per_1k=0.0006)})
    assert table.cost("gpt-4o-mini-2024-07-18", 1000, 1000) == pytest.approx(0.00075)   # the longest prefix
    assert table.cost("gpt-4o", 2000, 500) == pytest.approx(0.01)
    assert table.cost("llama-3", 1000, 1000) is None and table.cost("gpt-4o", None, None) is None
    assert table.costs({}) == {}
    assert table.costs({"gpt-4o": [1000, 0], "llama-3": [1, 1]}) is None
    assert table.costs({"gpt-4o": [1000, 0], "gpt-4o-mini": [0, 1000]}) == pytest.approx(
        {"gpt-4o": 0.0025, "gpt-4o-mini": 0.0006})


def test_budgets_take_the_documented_names_and_their_plain_synonyms():
    b = Budgets.model_validate({"per_person": {"tokens": 10, "period": "daily"},
                                "channel": {"cost": 2.5, "period": "week"}, "questions_per_minute": 3})
    assert b.person.tokens == 10 and b.person.period == "day" and b.channel.cost == 2.5
    assert set(b.limits()) == {"person", "channel"}
    with pytest.raises(ValidationError):
        Budgets.model_validate({"person": {"period": "day"}})             # neither tokens nor cost
    with pytest.raises(ValidationError):
        Budgets.model_validate({"person": {"tokens": 5, "period": "fortnight"}})
    with pytest.raises(ValidationError):
        Budgets.model_validate({"persons": {"tokens": 5}})                # a typo is an error


@pytest.mark.parametrize("period, start, end", [
    ("hour", "2026-11-30T14:00", "2026-11-30T15:00"),
    ("day", "2026-11-30T00:00", "2026-12-01T00:00"),
    ("week", "2026-11-30T00:00", "2026-12-07T00:00"),           # a Monday
    ("month", "2026-11-01T00:00", "2026-12-01T00:00"),
])
def test_periods_are_calendar_periods_in_utc(period, start, end):
    now = datetime(2026, 11, 30, 14, 25, tzinfo=timezone.utc)
    got = period_bounds(period, now)
    assert [t.strftime("%Y-%m-%dT%H:%M") for t in got] == [start, end]
    assert period_bounds("month", datetime(2026, 12, 31, 23, 0, tzinfo=timezone.utc))[1].year == 2027
