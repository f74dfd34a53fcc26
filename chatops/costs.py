"""What answers cost and what they may cost: the price table and the budgets.

``models:`` in ``CHATOPS_CONFIG`` prices each model per 1,000 tokens, in one currency of the
operator's choosing (every cost shown is in it)::

    models:
      gpt-4o:      {input_per_1k: 0.0025, output_per_1k: 0.01}
      gpt-4o-mini: {input_per_1k: 0.00015, output_per_1k: 0.0006}

A model the API reports by a dated name (``gpt-4o-mini-2024-07-18``) takes the price of the
longest configured name it starts with. A model with no price costs ``None`` (unknown), never 0.

``budgets:`` limits tokens or money per person, per channel and overall, per period
(``hour``, ``day``, ``week``, ``month``: calendar periods in UTC), and questions per person per
minute::

    budgets:
      person:  {tokens: 200000, period: day}
      channel: {cost: 25, period: week}
      overall: {cost: 1500, period: month}
      questions_per_minute: 6
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

Period = Literal["hour", "day", "week", "month"]
SCOPES = ("person", "channel", "overall")


class ModelPrice(BaseModel):
    model_config = {"extra": "forbid"}

    input_per_1k: float = Field(ge=0)
    output_per_1k: float = Field(ge=0)


class PriceTable:
    def __init__(self, prices: dict[str, ModelPrice] | None = None):
        self._prices = dict(prices or {})
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._prices)

    def price(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        if model in self._prices:
            return self._prices[model]
        for name in self._by_length:
            if model.startswith(name):
                return self._prices[name]
        return None

    def cost(self, model: str | None, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """What these tokens cost, or None when the model has no price (or no usage was reported)."""
        price = self.price(model)
        if price is None or (input_tokens is None and output_tokens is None):
            return None
        return ((input_tokens or 0) * price.input_per_1k + (output_tokens or 0) * price.output_per_1k) / 1000


    def costs(self, usage: dict[str, list[int]]) -> dict[str, float] | None:
        """The cost of ``{model: [input, output]}`` per model: {} for no model call, None when a model
        is not priced."""
        out: dict[str, float] = {}
        for model, (inp, outp) in usage.items():
            cost = self.cost(model, inp, outp)
            if cost is None:
                return None
            out[model] = cost
        return out


_PERIODS = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}


class Limit(BaseModel):
    """A limit on tokens or on money (or both: whichever is reached first) in one period."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    tokens: int | None = Field(default=None, gt=0)
    cost: float | None = Field(default=None, gt=0, validation_alias=AliasChoices("cost", "money"))
    period: Period = "day"

    @field_validator("period", mode="before")
    @classmethod
    def _period_word(cls, value: Any) -> Any:
        """``daily`` reads as ``day`` (and hourly, weekly, monthly likewise)."""
        return _PERIODS.get(value, value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _something(self) -> "Limit":
        if self.tokens is None and self.cost is None:
            raise ValueError("a budget needs tokens or cost")
        return self


class Budgets(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    person: Limit | None = Field(default=None, validation_alias=AliasChoices("person", "per_person"))
    channel: Limit | None = Field(default=None, validation_alias=AliasChoices("channel", "per_channel"))
    overall: Limit | None = Field(default=None, validation_alias=AliasChoices("overall", "global"))
    questions_per_minute: int | None = Field(default=None, gt=0)

    def limits(self) -> dict[str, Limit]:
        return {scope: limit for scope in SCOPES if (limit := getattr(self, scope)) is not None}


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """The calendar period (UTC) ``now`` falls in: its start and the start of the next one."""
    now = now.astimezone(timezone.utc)
    if period == "hour":
        start = now.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":                       # ISO weeks: Monday to Monday
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    nxt = (start.replace(year=start.year + 1, month=1) if start.month == 12
           else start.replace(month=start.month + 1))
    return start, nxt
