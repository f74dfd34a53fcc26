"""A click on "Send me the full answer". Acknowledge, then queue; the worker decides what the click
may do."""

from __future__ import annotations

import logging

from bot.dm_offer.blocks import ANSWER_IN_DM_ACTION
from bot.dm_offer.task import ANSWER_IN_DM
from bot.enqueue import ListenerDeps, enqueue_once
from chatops import keys
from chatops.logs import correlated

log = logging.getLogger(__name__)


def register(app, deps: ListenerDeps) -> None:
    @app.action(ANSWER_IN_DM_ACTION)
    def on_answer_in_dm(ack, body, action):
        with correlated(None) as cid:
            payload = {
                "cid": cid,
                "offer_id": action.get("value"),
                "user": (body.get("user") or {}).get("id"),
                "channel": (body.get("channel") or {}).get("id"),
            }
            enqueue_once(deps.state, deps.dispatch,
                         claim=(keys.CLAIM_DM_OFFER_CLICK, f"{payload['offer_id']}:{payload['user']}"),
                         kind=ANSWER_IN_DM.kind, payload=payload, ttl=86400)
            ack()
