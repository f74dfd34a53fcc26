"""Short-lived shared state in Redis: duplicate checks, bot threads, caches.

Everything here has a TTL; losing it costs a cache miss or a follow-up that
is not recognised, never a wrong permission decision.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from chatops import keys


class State:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.prefix = prefix

    # Duplicate deliveries (Slack retries, app_mention + message for one post); ``kind``: one of
    # chatops.keys' CLAIM_ names.
    def claim(self, kind: str, key: str, ttl: int = 3600) -> bool:
        return bool(self.redis.set(keys.claim(self.prefix, kind, key), "1", nx=True, ex=ttl))

    def release(self, kind: str, key: str) -> None:
        self.redis.delete(keys.claim(self.prefix, kind, key))

    # Threads the bot answered, with the last few exchanges for follow-ups. Each exchange is a
    # record of usecases.threads.Exchange (with the audience it was made for); which of them a
    # follow-up may be given is decided there, not here.
    def remember_exchange(self, channel: str, thread_ts: str, exchange: dict[str, Any], ttl: int, keep: int = 10) -> None:
        key = keys.thread(self.prefix, channel, thread_ts)
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(exchange))
        pipe.ltrim(key, -keep, -1)
        pipe.expire(key, ttl)
        pipe.execute()

    def mark_thread(self, channel: str, thread_ts: str, ttl: int) -> None:
        """The bot is answering in this thread: later messages in it are follow-ups."""
        self.redis.set(keys.bot_thread(self.prefix, channel, thread_ts), "1", ex=ttl)

    def is_bot_thread(self, channel: str, thread_ts: str) -> bool:
        return bool(self.redis.exists(keys.bot_thread(self.prefix, channel, thread_ts)))

    def mark_stopped(self, channel: str, thread_ts: str, ttl: int = 3600) -> None:
        """The person pressed Stop on the agent's work in this thread."""
        self.redis.set(keys.stream_stopped(self.prefix, channel, thread_ts), "1", ex=ttl)

    def was_stopped(self, channel: str, thread_ts: str) -> bool:
        return bool(self.redis.exists(keys.stream_stopped(self.prefix, channel, thread_ts)))

    def thread_history(self, channel: str, thread_ts: str) -> list[Any]:
        """The thread's stored exchanges, oldest first, as they were recorded."""
        raw = self.redis.lrange(keys.thread(self.prefix, channel, thread_ts), 0, -1)
        return [json.loads(r) for r in raw]

    # Generic JSON cache; ``key`` starts with one of chatops.keys' CACHE_ names.
    def get_json(self, *key: str) -> Any:
        raw = self.redis.get(keys.cache(self.prefix, *key))
        return json.loads(raw) if raw is not None else None

    def set_json(self, value: Any, ttl: int, *key: str) -> None:
        self.redis.set(keys.cache(self.prefix, *key), json.dumps(value), ex=ttl)

    def drop_json(self, *key: str) -> None:
        self.redis.delete(keys.cache(self.prefix, *key))

    def pop_json(self, *key: str) -> Any:
        raw = self.redis.getdel(keys.cache(self.prefix, *key))
        return json.loads(raw) if raw is not None else None
