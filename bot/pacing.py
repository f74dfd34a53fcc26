"""Slack takes about one message per second per channel: posts to one channel are spaced out.

Every worker reserves its slot in Redis (one Lua script: the next free time of the channel,
read and moved on by the interval, on Redis' own clock), then sleeps until it. A burst of
answers in one channel goes out one per interval, in order of reservation, none lost; a 429
that still comes back is waited out by the SDK's retry handler (``Retry-After``).
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local gap = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local at = math.max(now, nxt)
redis.call('SET', KEYS[1], tostring(at + gap), 'PX', math.ceil(gap * 1000) + math.ceil((at - now) * 1000) + 1000)
return tostring(at - now)
"""


class ChannelPacer:
    def __init__(self, redis_client, prefix: str, interval: float, *, max_wait: float = 30.0):
        self.redis = redis_client
        self.prefix = prefix
        self.interval = interval
        self.max_wait = max_wait
        self._script = redis_client.register_script(_RESERVE) if interval > 0 else None

    def wait_turn(self, channel: str) -> float:
        """Sleep until this channel may take another message; the seconds waited."""
        if self._script is None:
            return 0.0
        try:
            wait = float(self._script(keys=[f"{self.prefix}:pace:{channel}"], args=[self.interval]))
        except Exception as exc:  # noqa: BLE001 - pacing is a courtesy; Slack's 429s are still honoured
            log.warning("could not reserve a posting slot; posting now", extra={"error": type(exc).__name__})
            return 0.0
        wait = min(max(wait, 0.0), self.max_wait)
        if wait:
            time.sleep(wait)
        return wait
