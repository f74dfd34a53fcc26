"""Button clicks. Acknowledge, then queue; the worker decides what the click may do."""

from __future__ import annotations

import logging

from bot.blocks import ANSWER_IN_DM_ACTION
from bot.listeners.enqueue import enqueue_once
from chatops.tasks import ANSWER_IN_DM
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
            enqueue_once(state, dispatch, claim=("click", f"{payload['offer_id']}:{payload['user']}"),
                         kind=ANSWER_IN_DM, payload=payload, ttl=86400)
            ack()
