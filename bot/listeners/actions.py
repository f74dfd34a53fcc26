"""Button clicks. Acknowledge, then queue; the worker decides what the click may do."""

from __future__ import annotations

import logging

from bot.blocks import ANSWER_IN_DM_ACTION
from bot.errors import EnqueueFailed
from chatops.logs import correlated

log = logging.getLogger(__name__)


def register(app, *, state, dispatch) -> None:
    @app.action(ANSWER_IN_DM_ACTION)
    def on_answer_in_dm(ack, body, action):
        with correlated(None) as cid:
            payload = {
                "cid": cid,
                "offer_id": action.get("value"),
                "user": (body.get("user") or {}).get("id"),
                "channel": (body.get("channel") or {}).get("id"),
            }
            if not state.claim("click", f"{payload['offer_id']}:{payload['user']}", ttl=86400):
                ack()
                return
            try:
                dispatch("answer_in_dm", payload)
            except Exception as exc:
                state.release("click", f"{payload['offer_id']}:{payload['user']}")
                raise EnqueueFailed("answer_in_dm") from exc
            ack()
