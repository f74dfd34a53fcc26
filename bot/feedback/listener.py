"""Feedback clicks: 👍 / 👎, the "what was wrong" form, Needs a human, Resolved.

Each click is claimed once (a Slack retry is dropped) and queued for the worker with the
answer id and who clicked. A 👎 also opens the optional form at once (its trigger expires in
three seconds); the vote is queued before the form opens, so skipping the form loses nothing.

👍 / 👎 arrive from Slack's ``feedback_buttons`` element (one action id; the value says which
button and which answer). It toggles in the client and Slack sends every click, never an
"unselected": each click is queued as a vote and the person's last one is what is stored.
The old 👍 / 👎 buttons, in messages posted before, are still handled.
"""

from __future__ import annotations

import logging

from bot.enqueue import ListenerDeps, enqueue_once
from bot.feedback import blocks as fb
from bot.feedback.task import FEEDBACK
from bot.views import metadata
from chatops import keys, metrics
from chatops.logs import correlated

log = logging.getLogger(__name__)


def _where(body: dict) -> dict:
    message = body.get("message") or {}
    container = body.get("container") or {}
    return {
        "channel": (body.get("channel") or {}).get("id") or container.get("channel_id"),
        "message_ts": message.get("ts") or container.get("message_ts"),
        "thread_ts": message.get("thread_ts") or container.get("thread_ts") or message.get("ts")
        or container.get("message_ts"),
    }


def register(app, deps: ListenerDeps) -> None:
    def queue(payload: dict, click_key: str) -> None:
        if enqueue_once(deps.state, deps.dispatch, claim=(keys.CLAIM_FEEDBACK, click_key), kind=FEEDBACK.kind,
                        payload=payload, ttl=86400):
            metrics.SLACK_EVENTS.labels(kind="feedback", outcome="queued").inc()
        else:
            metrics.SLACK_EVENTS.labels(kind="feedback", outcome="duplicate").inc()

    def click(op: str, body: dict, action: dict, **extra) -> dict:
        with correlated(None) as cid:
            user = (body.get("user") or {}).get("id")
            payload = {"cid": cid, "op": op, "answer_id": action.get("value"), "user": user, **_where(body), **extra}
            queue(payload, f"{action.get('action_ts')}:{user}:{op}")
            return payload

    def not_helpful(body: dict, answer_id: str, client) -> None:
        """The optional "what was wrong" form, opened with the click's trigger (the vote is queued)."""
        try:
            client.views_open(trigger_id=body.get("trigger_id"), view=fb.feedback_modal(answer_id))
        except Exception:  # noqa: BLE001 - the vote is queued; only the optional form is lost
            log.exception("could not open the feedback form")

    @app.action(fb.FEEDBACK_BUTTONS_ACTION)
    def on_feedback_buttons(ack, body, action, client):
        parsed = fb.vote_from(action.get("value"))
        if parsed is None:
            ack()
            log.warning("feedback click with a value that names no vote")
            metrics.SLACK_EVENTS.labels(kind="feedback", outcome="ignored").inc()
            return
        vote, answer_id = parsed
        # Slack's element shows the choice itself: no "thanks" message on each toggle
        click("vote", body, {**action, "value": answer_id}, vote=vote, element=True)
        ack()
        if vote == fb.NOT_HELPFUL:
            not_helpful(body, answer_id, client)

    @app.action(fb.HELPFUL_ACTION)          # the old buttons, in messages posted before
    def on_helpful(ack, body, action):
        click("vote", body, action, vote=fb.HELPFUL)
        ack()

    @app.action(fb.NOT_HELPFUL_ACTION)
    def on_not_helpful(ack, body, action, client):
        click("vote", body, action, vote=fb.NOT_HELPFUL)
        ack()
        not_helpful(body, action.get("value") or "", client)

    @app.action(fb.ESCALATE_ACTION)
    def on_escalate(ack, body, action):
        click("escalate", body, action)
        ack()

    @app.action(fb.RESOLVED_ACTION)
    def on_resolved(ack, body, action):
        click("resolve", body, action)
        ack()

    @app.view(fb.FEEDBACK_MODAL)
    def on_reason(ack, body, view):
        with correlated(None) as cid:
            meta = metadata(view)
            reason = fb.reason_from((view.get("state") or {}).get("values") or {})
            user = (body.get("user") or {}).get("id")
            if reason and isinstance(meta.get("answer_id"), str):
                queue({"cid": cid, "op": "vote", "vote": "not_helpful", "answer_id": meta["answer_id"],
                       "user": user, "reason": reason}, f"{view.get('id')}:{user}")
            ack()
