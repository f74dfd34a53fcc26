"""Claim, hand over, or release: how every listener puts work on the queue exactly once.

The claim (a Redis key with a TTL) makes a Slack retry, or the app_mention + message pair
for one post, a no-op. If the hand-over fails, the claim is released and ``EnqueueFailed``
answers Slack 500, so Slack's retry goes through (bot/errors.py). ``ListenerDeps``: what every
feature's listener is registered with (bot/app.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from bot.errors import EnqueueFailed
from chatops.state import State

log = logging.getLogger(__name__)

Dispatch = Callable[[str, dict], None]     # (task kind, payload): hands a task to the workers


@dataclass(frozen=True)
class ListenerDeps:
    state: State
    dispatch: Dispatch
    rate: Any = None                       # usecases.budgets.RateLimit, or None: no rate limit


def enqueue_once(state: State, dispatch: Dispatch, *, claim: tuple[str, str], kind: str,
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
