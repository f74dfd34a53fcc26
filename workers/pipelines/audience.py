"""Channel membership for audience checks, cached in Redis for a short while."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class CachedChannelDirectory:
    def __init__(self, gateway, state, ttl: int = 300):
        self._gateway = gateway
        self._state = state
        self._ttl = ttl

    def members(self, channel: str) -> list[str]:
        cached = self._state.get_json("members", channel)
        if cached is not None:
            return cached
        members = self._gateway.members(channel)
        self._state.set_json(members, self._ttl, "members", channel)
        return members

    def is_bot(self, user_id: str) -> bool:
        cached = self._state.get_json("isbot", user_id)
        if cached is not None:
            return bool(cached)
        value = self._gateway.is_bot(user_id)
        self._state.set_json(value, 86400, "isbot", user_id)
        return value
