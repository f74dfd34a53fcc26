"""Keeping open Home tabs current: who opened theirs lately, and a proposal's change passed on.

Slack shows a Home tab as it was last published until the app publishes it again; opening the tab
republishes it (``app_home_opened``). While someone looks at it, a proposal they may approve can be
made, decided or expire. So:

* every opening is recorded in one Redis sorted set (``keys.home_opened``: user -> when), and
  entries older than ``OPENED_RECENTLY_S`` are dropped (the set itself expires with them);
* ``ProposalService(on_change=proposal_changed(dispatch, openings))`` queues a ``home`` task naming
  the proposal for every change (made, approved, done, rejected, expired) while anyone has opened
  their Home lately — one Redis count and a dispatch, no Slack call, on whichever process changed it
  (a worker, or the CLI);
* that task, on a worker (``bot/home/handler.py``), takes the people who opened their Home lately
  (the most recent ``FANOUT_MAX``), keeps those the proposal's approver policy admits, and queues
  one refresh per person, coalesced: a claim per person (``keys.CLAIM_HOME_REFRESH``) held
  ``COALESCE_S`` seconds, and the refresh runs ``COALESCE_S`` seconds later (Celery ``countdown``),
  so it reads the state after every change of that window. At most one ``views.publish`` per person
  per window whatever the burst (``views.publish`` is Slack's tier 4: 100+ a minute per workspace).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from bot.home.task import HOME
from chatops import keys
from chatops.logs import new_correlation_id

log = logging.getLogger(__name__)

OPENED_RECENTLY_S = 8 * 3600      # a Home tab opened within this is kept current (a working day)
COALESCE_S = 2                    # one refresh per person in this many seconds
FANOUT_MAX = 50                   # the most recent openers considered for one change


class Openings:
    """Who opened their App Home tab lately (``keys.home_opened``)."""

    def __init__(self, state, *, recent_s: int = OPENED_RECENTLY_S, clock: Callable[[], float] = time.time):
        self.redis = state.redis
        self.key = keys.home_opened(state.prefix)
        self.recent_s = recent_s
        self.clock = clock

    def record(self, user: str) -> None:
        now = self.clock()
        pipe = self.redis.pipeline()
        pipe.zadd(self.key, {user: now})
        pipe.zremrangebyscore(self.key, "-inf", now - self.recent_s)
        pipe.expire(self.key, self.recent_s)
        pipe.execute()

    def any(self) -> bool:
        """Someone opened their Home tab within ``recent_s``."""
        return bool(self.redis.zcount(self.key, self.clock() - self.recent_s, "+inf"))

    def recent(self, limit: int = FANOUT_MAX) -> list[str]:
        """The people who opened it within ``recent_s``, the latest first, at most ``limit``."""
        now = self.clock()
        raw = self.redis.zrevrangebyscore(self.key, "+inf", now - self.recent_s, start=0, num=limit)
        return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]


def refresh_payload(user: str) -> dict:
    """The ``home`` task that republishes ``user``'s Home tab once the window has passed."""
    return {"cid": new_correlation_id(), "user": user, "tab": "home", "refresh": True, "countdown": COALESCE_S}


def proposal_changed(dispatch: Callable[[str, dict], None], openings: Openings) -> Callable[[Any], None]:
    """``ProposalService``'s ``on_change``: queue the fan-out for the proposal, unless no Home tab
    was opened lately (never raises)."""
    def changed(proposal: Any) -> None:
        try:
            if openings.any():
                dispatch(HOME.kind, {"cid": new_correlation_id(), "proposal_id": proposal.id})
        except Exception as exc:  # noqa: BLE001 - the Home tabs catch up when next opened
            log.warning("could not queue the Home tabs' refresh", extra={"proposal_id": proposal.id,
                                                                         "error": type(exc).__name__})
    return changed
