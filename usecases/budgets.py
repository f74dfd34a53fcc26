"""Budgets and the per-person rate limit (``budgets:`` in ``CHATOPS_CONFIG``, chatops/costs.py).

Spending is counted in Redis, per scope (the person, the channel, everyone) and per calendar
period, so every worker sees the same totals. Before a model call the pipeline asks ``over``:
a scope that has already spent its limit sends the answer to the extractive mode (no model
call) with a note saying when the budget resets. After the call ``spend`` adds what it used.
A question is never refused for the budget: it is answered without the model.

The rate limit counts questions per person in a sliding minute (a sorted set of arrival
times); over it, the person is told to wait instead of their questions being queued.

Redis being down fails open for budgets (the answer goes on; logged and counted): a budget
is a cost control, not a permission.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from chatops import keys, metrics
from chatops.costs import Budgets, Limit, period_bounds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverBudget:
    scope: str                 # person | channel | overall
    resets_at: datetime

    def note(self, now: datetime | None = None) -> str:
        whose = {"person": "Your", "channel": "This channel's", "overall": "The organisation's"}[self.scope]
        when = self.resets_at.strftime("%Y-%m-%d %H:%M UTC")
        return (f"{whose} language-model budget for this period is used up, so this answer quotes the "
                f"documents directly instead. It resets at {when}.")


class BudgetGuard:
    def __init__(self, redis_client: redis.Redis, prefix: str, budgets: Budgets):
        self.redis = redis_client
        self.prefix = prefix
        self.budgets = budgets

    @property
    def active(self) -> bool:
        return bool(self.budgets.limits())

    def _key(self, scope: str, who: str, limit: Limit, now: datetime) -> tuple[str, datetime]:
        start, end = period_bounds(limit.period, now)
        return keys.budget(self.prefix, scope, who, limit.period, start), end

    def _scopes(self, person: str | None, channel: str | None) -> list[tuple[str, str, Limit]]:
        out = []
        for scope, limit in self.budgets.limits().items():
            who = {"person": person, "channel": channel, "overall": "all"}[scope]
            if who:
                out.append((scope, who, limit))
        return out

    def over(self, person: str | None, channel: str | None, now: datetime | None = None) -> OverBudget | None:
        """The first scope whose budget is spent, or None."""
        now = now or datetime.now(timezone.utc)
        scopes = self._scopes(person, channel)
        if not scopes:
            return None
        try:
            pipe = self.redis.pipeline(transaction=False)
            keys = []
            for scope, who, limit in scopes:
                key, end = self._key(scope, who, limit, now)
                keys.append((scope, limit, end))
                pipe.hmget(key, "tokens", "cost")
            spent = pipe.execute()
        except Exception as exc:  # noqa: BLE001 - a budget is not a permission: fail open, loudly
            log.error("could not read budgets; answering without them", extra={"error": type(exc).__name__})
            return None
        for (scope, limit, end), (tokens, cost) in zip(keys, spent):
            if (limit.tokens is not None and int(tokens or 0) >= limit.tokens) or \
                    (limit.cost is not None and float(cost or 0) >= limit.cost):
                metrics.BUDGET_REJECTIONS.labels(scope=scope).inc()
                log.info("over budget; answering without the model", extra={"scope": scope})
                return OverBudget(scope, end)
        return None

    def spend(self, person: str | None, channel: str | None, tokens: int, cost: float | None,
              now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        scopes = self._scopes(person, channel)
        if not scopes or (not tokens and not cost):
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for scope, who, limit in scopes:
                key, end = self._key(scope, who, limit, now)
                pipe.hincrby(key, "tokens", int(tokens))
                if cost:
                    pipe.hincrbyfloat(key, "cost", float(cost))
                pipe.expireat(key, int(end.timestamp()) + 3600)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001
            log.error("could not count spending against budgets", extra={"error": type(exc).__name__})


class RateLimit:
    """Questions per person per minute (a sliding window)."""

    WINDOW = 60.0

    def __init__(self, redis_client: redis.Redis, prefix: str, per_minute: int | None):
        self.redis = redis_client
        self.prefix = prefix
        self.per_minute = per_minute

    def allow(self, person: str | None, now: float | None = None) -> float:
        """0 when this question may go on; otherwise the seconds until the person may ask again.
        Fails open when Redis cannot be asked (the enqueue that follows would fail anyway)."""
        if not self.per_minute or not person:
            return 0.0
        now = time.time() if now is None else now
        key = keys.rate(self.prefix, person)
        try:
            pipe = self.redis.pipeline()
            pipe.zremrangebyscore(key, 0, now - self.WINDOW)
            pipe.zrange(key, 0, 0, withscores=True)
            pipe.zcard(key)
            _, oldest, count = pipe.execute()
            if count >= self.per_minute:
                wait = (oldest[0][1] + self.WINDOW - now) if oldest else self.WINDOW
                metrics.BUDGET_REJECTIONS.labels(scope="rate").inc()
                return max(wait, 1.0)
            pipe = self.redis.pipeline()
            pipe.zadd(key, {f"{now:.6f}": now})
            pipe.expire(key, int(self.WINDOW) + 5)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001
            log.error("could not check the rate limit", extra={"error": type(exc).__name__})
        return 0.0
