"""Channel membership for audience checks, cached in Redis for a short while.

The cache entry holds the member list and when it was read from Slack. The web
process drops it when someone joins or leaves (``member_joined_channel`` /
``member_left_channel``); ``max_age`` makes a caller read it again when it is older
than that (the responder does, just before posting a channel answer).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class CachedChannelDirectory:
    def __init__(self, gateway, state, ttl: int = 300):
        self._gateway = gateway
        self._state = state
        self._ttl = ttl

    def members(self, channel: str, *, max_age: float | None = None) -> tuple[list[str], float]:
        """The channel's members and when the list was read (Unix time)."""
        cached = self._state.get_json("members", channel)
        if isinstance(cached, dict) and isinstance(cached.get("ids"), list):
            if max_age is None or time.time() - float(cached.get("at", 0)) <= max_age:
                return cached["ids"], float(cached["at"])
        read_at = time.time()   # before the call: the list is at least this fresh
        members = self._gateway.members(channel)
        self._state.set_json({"ids": members, "at": read_at}, self._ttl, "members", channel)
        return members, read_at

    def is_bot(self, user_id: str) -> bool:
        cached = self._state.get_json("isbot", user_id)
        if cached is not None:
            return bool(cached)
        value = self._gateway.is_bot(user_id)
        self._state.set_json(value, 86400, "isbot", user_id)
        return value
