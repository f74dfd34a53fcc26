"""The privacy mode: how much of what people asked the operators' views show (the console and
the daily report in Slack).

* ``full``: question text and people;
* ``anonymized``: question text, people as pseudonyms;
* ``off``: counts and metadata only.

It starts as ``CHATOPS_CONSOLE_PRIVACY``; an admin changes it in the console. The choice is kept
in Redis, so every web process and the worker that posts the report read the same mode.
"""

from __future__ import annotations

import redis

from chatops import keys

MODES = ("full", "anonymized", "off")


class PrivacyMode:
    """The current mode, shared through Redis."""

    def __init__(self, client: redis.Redis, prefix: str, default: str):
        if default not in MODES:
            raise ValueError(f"unknown privacy mode {default!r} (one of {', '.join(MODES)})")
        self._redis = client
        self._key = keys.console_privacy(prefix)
        self._default = default

    def current(self) -> str:
        raw = self._redis.get(self._key)
        mode = raw.decode() if isinstance(raw, bytes) else raw
        return mode if mode in MODES else self._default

    def set(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown privacy mode {mode!r} (one of {', '.join(MODES)})")
        self._redis.set(self._key, mode)
