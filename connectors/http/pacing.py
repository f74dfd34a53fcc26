"""Throttling honoured for a whole source: when a service answers 429 or 503, *every* request of
that source waits what it asked (throttled calls still count against the tenant or site), and a
window of a sync waits at most ``max_wait`` in all. Past the bound the window stops with
:class:`Throttled`; the sync records it and the next window resumes from its cursor.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import requests

from chatops.errors import SourceUnavailable

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 8


class Throttled(SourceUnavailable):
    """The source asked us to wait longer than one window may."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, transient=True)
        self.retry_after = retry_after


class Pacer:
    """When the next request of one source may go, and how long this window has waited."""

    def __init__(self, service: str, *, max_wait: float = 120.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.service = service
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._not_before = 0.0       # no request of this source before this (clock)
        self._waited = 0.0           # seconds waited for throttling in this window
        self.throttled = 0           # 429/503 answers seen
        self.calls = 0               # HTTP requests answered

    def new_window(self) -> None:
        self._waited = 0.0

    def wait_turn(self) -> None:
        delay = self._not_before - self._clock()
        if delay > 0:
            self._sleep(delay)
        self._not_before = 0.0

    def back_off(self, delay: float, why: str) -> None:
        """Every request of the source waits ``delay`` seconds; past the window's bound, stop."""
        delay = max(0.0, delay)
        if self._waited + delay > self.max_wait:
            raise Throttled(f"throttled by {self.service} ({why}); asked to wait {delay:.0f} s", retry_after=delay)
        self._waited += delay
        self._not_before = max(self._not_before, self._clock() + delay)
        log.warning("source throttled; waiting", extra={"why": why, "delay_s": round(delay, 3)})

    def answered(self, resp: requests.Response, attempt: int, why: str) -> bool:
        """True when ``resp`` is worth sending again (after the wait it asked for)."""
        if resp.status_code not in RETRY_STATUSES:
            return False
        self.throttled += resp.status_code in (429, 503)
        self.back_off(retry_after(resp, default=min(2.0 ** attempt * 0.5, 30.0)), f"{resp.status_code} {why}".strip())
        return True

    def unreachable(self, attempt: int, exc: Exception) -> None:
        self.back_off(min(2.0 ** attempt * 0.25, 30.0), f"network error ({type(exc).__name__})")

    def call(self, send: Callable[[], requests.Response], what: str,
             why: Callable[[requests.Response], str] = lambda resp: "") -> requests.Response:
        """``send()`` in turn, again after network errors, 429s and 5xx (bounded); any other
        answer is returned as it is."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self.wait_turn()
            try:
                resp = send()
            except requests.RequestException as exc:
                self.unreachable(attempt, exc)
                continue
            self.calls += 1
            if self.answered(resp, attempt, why(resp)):
                continue
            return resp
        raise SourceUnavailable(f"{what} kept failing after {MAX_ATTEMPTS} attempts")

def retry_after(resp: requests.Response, default: float) -> float:
    """Seconds from a Retry-After header (delta-seconds form), else ``default``."""
    try:
        return max(0.0, float(resp.headers.get("Retry-After", default)))
    except ValueError:
        return default
