"""Claim, hand over, or release: how every listener puts work on the queue exactly once.

The claim (a Redis key with a TTL) makes a Slack retry, or the app_mention + message pair
for one post, a no-op. If the hand-over fails, the claim is released and ``EnqueueFailed``
answers Slack 500, so Slack's retry goes through (bot/errors.py).
"""

from __future__ import annotations

import logging
from typing import Callable

from bot.errors import EnqueueFailed
from chatops.state import State

log = logging.getLogger(__name__)


def enqueue_once(state: State, dispatch: Callable[[str, dict], None], *, claim: tuple[str, str], kind: str,
                 payload: dict, ttl: int = 3600, gate: Callable[[], bool] | None = None) -> bool:
    """Dispatch ``payload`` as a ``kind`` task unless ``claim`` (kind, key) was already taken;
    returns whether it was dispatched now. ``gate``: asked once the claim is taken; False keeps
    the claim (a retry is still a duplicate) and dispatches nothing."""
    claim_kind, key = claim
    if not state.claim(claim_kind, key, ttl=ttl):
        log.info("duplicate delivery ignored", extra={"key": key, "task_kind": kind})
        return False
    if gate is not None and not gate():
        return False
    try:
        dispatch(kind, payload)
    except Exception as exc:
        state.release(claim_kind, key)
        log.exception("could not enqueue; Slack will retry", extra={"task_kind": kind})
        raise EnqueueFailed(kind) from exc
    return True
