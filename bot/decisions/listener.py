"""Approve / Reject clicks and the reject-reason modal.

The listener only records who clicked what and queues it; the worker resolves
the clicker's identity and applies the approver policy. A Slack retry of the
same click is dropped here; a double click or two approvers racing is settled
by compare-and-set in the database.

The same buttons are on the proposal's message and on an approver's App Home tab. A click on the
Home tab comes with ``container.type == "view"`` and the home ``view``, and no ``channel`` nor
``message``: the task then says ``home`` (the worker answers on the Home tab, not in a channel).
"""

from __future__ import annotations

import logging

from bot.decisions.blocks import APPROVE_ACTION, REASON_BLOCK, REASON_INPUT, REJECT_ACTION, REJECT_MODAL, reject_modal
from bot.decisions.task import DECISION
from bot.enqueue import ListenerDeps, enqueue_once
from bot.views import in_home_tab, metadata
from chatops import keys
from chatops.logs import correlated

log = logging.getLogger(__name__)


def register(app, deps: ListenerDeps) -> None:
    def queue(payload: dict, click_key: str) -> None:
        enqueue_once(deps.state, deps.dispatch, claim=(keys.CLAIM_DECISION, click_key), kind=DECISION.kind,
                     payload=payload, ttl=86400)

    @app.action(APPROVE_ACTION)
    def on_approve(ack, body, action):
        with correlated(None) as cid:
            user = (body.get("user") or {}).get("id")
            payload = {"cid": cid, "proposal_id": action.get("value"), "decision": "approve", "user": user,
                       "channel": (body.get("channel") or {}).get("id"),
                       "message_ts": (body.get("message") or {}).get("ts")}
            if in_home_tab(body):
                payload["home"] = True
            queue(payload, f"{action.get('action_ts')}:{user}")
            ack()

    @app.action(REJECT_ACTION)
    def on_reject(ack, body, action, client):
        ack()
        view = reject_modal(action.get("value"), (body.get("channel") or {}).get("id"),
                            (body.get("message") or {}).get("ts"), home=in_home_tab(body))
        try:
            client.views_open(trigger_id=body.get("trigger_id"), view=view)
        except Exception:  # noqa: BLE001 - the click changed nothing; say so in the logs
            log.exception("could not open the reject dialog")

    @app.view(REJECT_MODAL)
    def on_reject_submitted(ack, body, view):
        with correlated(None) as cid:
            meta = metadata(view)
            values = (view.get("state") or {}).get("values") or {}
            reason = ((values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}).get("value")
            user = (body.get("user") or {}).get("id")
            payload = {"cid": cid, "proposal_id": meta.get("proposal_id"), "decision": "reject", "user": user,
                       "channel": meta.get("channel"), "message_ts": meta.get("message_ts"), "reason": reason}
            if meta.get("home") is True:
                payload["home"] = True
            queue(payload, f"{view.get('id')}:{user}")
            ack()
