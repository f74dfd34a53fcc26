"""A log line for an event anyone can cause (a forged request): the first at once, then at most
one per interval, saying how many happened since the last line. Count every event in a metric;
this keeps the log readable and its volume bounded whatever a sender does."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class ThrottledLog:
    def __init__(self, logger: logging.Logger, message: str, *, every: float = 60.0,
                 level: int = logging.WARNING, clock: Callable[[], float] = time.monotonic):
        self._logger = logger
        self._message = message
        self._every = every
        self._level = level
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._pending = 0

    def note(self, count: int = 1, **extra: object) -> bool:
        """Record ``count`` events; logs (with ``events``: how many since the last line, and
        ``extra``) unless a line was written less than ``every`` seconds ago. True if it logged."""
        with self._lock:
            self._pending += count
            now = self._clock()
            if self._last is not None and now - self._last < self._every:
                return False
            events, self._pending, self._last = self._pending, 0, now
        self._logger.log(self._level, self._message, extra={**extra, "events": events})
        return True
