"""Short-lived shared state in Redis: duplicate checks, bot threads, caches.

Everything here has a TTL; losing it costs a cache miss or a follow-up that
is not recognised, never a wrong permission decision.
"""

from __future__ import annotations

import json
from typing import Any

import redis


class State:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # Duplicate deliveries (Slack retries, app_mention + message for one post).
    def claim(self, kind: str, key: str, ttl: int = 3600) -> bool:
        return bool(self.redis.set(self._k("seen", kind, key), "1", nx=True, ex=ttl))

    def release(self, kind: str, key: str) -> None:
        self.redis.delete(self._k("seen", kind, key))

    # Threads the bot answered, with the last few exchanges for follow-ups. Each exchange is a
    # record of usecases.threads.Exchange (with the audience it was made for); which of them a
    # follow-up may be given is decided there, not here.
    def remember_exchange(self, channel: str, thread_ts: str, exchange: dict, ttl: int, keep: int = 10) -> None:
        key = self._k("thread", channel, thread_ts)
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(exchange))
        pipe.ltrim(key, -keep, -1)
        pipe.expire(key, ttl)
        pipe.execute()

    def mark_thread(self, channel: str, thread_ts: str, ttl: int) -> None:
        """The bot is answering in this thread: later messages in it are follow-ups."""
        self.redis.set(self._k("botthread", channel, thread_ts), "1", ex=ttl)

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        return bool(self.redis.exists(self._k("botthread", channel, thread_ts)))

    def thread_history(self, channel: str, thread_ts: str) -> list[Any]:
        """The thread's stored exchanges, oldest first, as they were recorded."""
        raw = self.redis.lrange(self._k("thread", channel, thread_ts), 0, -1)
        return [json.loads(r) for r in raw]

    # Generic JSON cache.
    def get_json(self, *key: str) -> Any:
        raw = self.redis.get(self._k("cache", *key))
        return json.loads(raw) if raw is not None else None

    def set_json(self, value: Any, ttl: int, *key: str) -> None:
        self.redis.set(self._k("cache", *key), json.dumps(value), ex=ttl)

    def drop_json(self, *key: str) -> None:
        self.redis.delete(self._k("cache", *key))

    def pop_json(self, *key: str) -> Any:
        raw = self.redis.getdel(self._k("cache", *key))
        return json.loads(raw) if raw is not None else None
