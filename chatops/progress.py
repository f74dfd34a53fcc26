"""What one Slack task has already done, so a retry or a redelivery does only the rest.

A question is several steps that each talk to someone: the "working" message, the
model, the answer in Slack, the audit row, each proposal and its message, the
ephemeral "you can see more" note. When one of the later ones fails (Slack answers
500 to the note) and the task is retried, or when the task runs again because its
worker died, the steps already done are skipped: one model call, one answer, one
audit row, one proposal per tool call. Each step is a field of one Redis hash per
task, kept as long as a redelivery can come (the broker's visibility timeout).
"""

from __future__ import annotations

import json
from typing import Any

import redis

from chatops import keys


class Progress:
    """The steps of one task. They are read from Redis once, on first use (one task runs in one
    place at a time: its lease), and each step is written through as it is done."""

    def __init__(self, client: redis.Redis, prefix: str, task: str, ttl: int):
        self.redis = client
        self.key = keys.progress(prefix, task)
        self.ttl = ttl
        self._steps: dict[str, str] | None = None

    def _loaded(self) -> dict[str, str]:
        if self._steps is None:
            self._steps = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                           for k, v in self.redis.hgetall(self.key).items()}
        return self._steps

    def get(self, step: str) -> str | None:
        return self._loaded().get(step)

    def done(self, step: str) -> bool:
        return self.get(step) is not None

    def mark(self, step: str, value: str = "1") -> None:
        pipe = self.redis.pipeline()
        pipe.hset(self.key, step, value)
        pipe.expire(self.key, self.ttl)
        pipe.execute()
        self._loaded()[step] = value

    def get_json(self, step: str) -> Any:
        raw = self.get(step)
        return json.loads(raw) if raw is not None else None

    def mark_json(self, step: str, value: Any) -> None:
        self.mark(step, json.dumps(value))
