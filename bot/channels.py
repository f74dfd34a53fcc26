"""Who is in a Slack conversation, for audience checks: member ids cached in Redis for a short
while, each member as the directory needs them (bot/people.py).

The cache entry holds the member ids and when they were read from Slack. The web process
drops it when someone joins or leaves (``member_joined_channel`` / ``member_left_channel``);
``max_age`` makes a caller read it again when it is older than that (the question handler
does, just before posting a channel answer).
"""

from __future__ import annotations

import logging
import time

from chatops import keys
from usecases.people import Someone

log = logging.getLogger(__name__)


class CachedChannelDirectory:
    def __init__(self, gateway, people, state, ttl: int = 300):
        self._gateway = gateway
        self._people = people
        self._state = state
        self._ttl = ttl

    def member_ids(self, channel: str, *, max_age: float | None = None) -> tuple[list[str], float]:
        """The channel's member ids and when the list was read (Unix time)."""
        cached = self._state.get_json(keys.CACHE_MEMBERS, channel)
        if isinstance(cached, dict) and isinstance(cached.get("ids"), list):
            if max_age is None or time.time() - float(cached.get("at", 0)) <= max_age:
                return cached["ids"], float(cached["at"])
        read_at = time.time()   # before the call: the list is at least this fresh
        members = self._gateway.members(channel)
        self._state.set_json({"ids": members, "at": read_at}, self._ttl, keys.CACHE_MEMBERS, channel)
        return members, read_at

    def members(self, channel: str, *, max_age: float | None = None) -> tuple[list[Someone], float]:
        """The channel's members as people; one Slack cannot tell about counts as unknown."""
        ids, as_of = self.member_ids(channel, max_age=max_age)
        out = []
        for user_id in ids:
            try:
                out.append(self._people.someone(user_id))
            except Exception as exc:  # noqa: BLE001 - unresolvable: this member sees public only
                log.warning("could not look up a channel member", extra={"error": type(exc).__name__})
                out.append(Someone(chat_id=user_id, email=None))
        return out, as_of
