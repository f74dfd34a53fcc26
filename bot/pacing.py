"""Slack takes about one message per second per channel, with short bursts: new messages to one
channel are paced by a token bucket shared by every worker.

The bucket holds ``burst`` messages and refills one every ``interval`` seconds. It lives in Redis
as the channel's theoretical arrival time (GCRA: the time the bucket would be full again), read
and moved on by one Lua script on Redis' own clock, so every process and thread takes its turn
from the same schedule. A reservation is never refused: it is told when it may post, and later
reservations go after it, so posts keep the order in which they reserved and none is lost. Three
questions asked together get their working messages at once; the fourth waits one interval. A
429 that still comes back is waited out by the SDK's retry handler (``Retry-After``).
"""

from __future__ import annotations

import logging
import time

from chatops import keys

log = logging.getLogger(__name__)

# Microseconds, as whole numbers: a double holds today's epoch in µs exactly, and Lua's tostring
# (14 significant digits) would not.
#   KEYS[1]  the channel's schedule    ARGV[1]  µs per message    ARGV[2]  (burst - 1) * ARGV[1]
# Returns the µs until this message may go (0: now).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local gap = tonumber(ARGV[1])
local tat = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local at = math.max(now, tat - tonumber(ARGV[2]))
tat = tat + gap
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return at - now
"""


class ChannelPacer:
    """``interval`` seconds per message once ``burst`` messages are out (``interval`` 0: not paced);
    never sleeps more than ``max_wait`` for one message."""

    def __init__(self, redis_client, prefix: str, interval: float, *, burst: int = 3, max_wait: float = 30.0):
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.redis = redis_client
        self.prefix = prefix
        self.interval = interval
        self.burst = burst
        self.max_wait = max_wait
        self._gap_us = round(interval * 1_000_000)
        self._script = redis_client.register_script(_RESERVE) if self._gap_us > 0 else None

    def reserve(self, channel: str) -> float:
        """Take this channel's next turn: the seconds until it comes (0.0: post now)."""
        if self._script is None:
            return 0.0
        wait_us = self._script(keys=[keys.pace(self.prefix, channel)],
                               args=[self._gap_us, (self.burst - 1) * self._gap_us])
        return max(int(wait_us), 0) / 1_000_000

    def wait_turn(self, channel: str) -> float:
        """Sleep until this channel may take another message; the seconds waited."""
        try:
            wait = self.reserve(channel)
        except Exception as exc:  # noqa: BLE001 - pacing is a courtesy; Slack's 429s are still honoured
            log.warning("could not reserve a posting slot; posting now", extra={"error": type(exc).__name__})
            return 0.0
        wait = min(wait, self.max_wait)
        if wait:
            time.sleep(wait)
        return wait
