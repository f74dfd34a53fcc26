"""Questions: @-mentions, DMs and follow-ups in threads the bot answered.

The listener runs before Slack gets its HTTP answer (``process_before_response``),
so the acknowledgement means: not a duplicate, and safely on the queue. If the
enqueue fails, Slack gets a 500 and retries; the duplicate claim is released
so the retry goes through.
"""

from __future__ import annotations

import logging
import re
import time

from bot import blocks
from bot.enqueue import ListenerDeps, enqueue_once
from bot.questions.task import QUESTION
from chatops import keys, metrics, tracing
from chatops.logs import correlated

log = logging.getLogger(__name__)

# Message subtypes that are not a person asking something.
_IGNORED_SUBTYPES = {
    "bot_message", "message_changed", "message_deleted", "message_replied", "channel_join",
    "channel_leave", "channel_topic", "channel_purpose", "channel_name", "group_join",
    "group_leave", "ekm_access_denied", "tombstone", "assistant_app_thread",
}


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = text.replace(f"<@{bot_user_id}>", " ")
    return re.sub(r"\s+", " ", text).strip()


_STRING_FIELDS = ("channel", "user", "text", "ts", "thread_ts", "subtype", "channel_type")


def is_well_formed(event) -> bool:
    """Every field we read is a string (or absent): anything else is not Slack's, and is dropped."""
    return isinstance(event, dict) and all(
        isinstance(event.get(name), str) for name in _STRING_FIELDS if event.get(name) is not None)


def is_from_bot(event: dict) -> bool:
    return bool(event.get("bot_id") or event.get("bot_profile")) or event.get("subtype") in _IGNORED_SUBTYPES


def question_payload(event: dict, body: dict, bot_user_id: str | None, kind: str) -> dict:
    channel_type = event.get("channel_type") or ("im" if str(event.get("channel", "")).startswith("D") else None)
    thread_ts = event.get("thread_ts")
    if channel_type != "im" and not thread_ts:
        thread_ts = event.get("ts")  # answers in channels always go in the thread
    return {
        "kind": kind,
        "event_id": body.get("event_id"),
        "team": body.get("team_id") or event.get("team"),
        "channel": event.get("channel"),
        "channel_type": channel_type,
        "user": event.get("user"),
        "text": strip_mention(event.get("text") or "", bot_user_id),
        "ts": event.get("ts"),
        "thread_ts": thread_ts,
    }


def slow_down(seconds: float) -> str:
    return (f"You're asking faster than I can answer well. Please wait {int(seconds + 0.999)} s and ask again; "
            "I haven't queued your last question.")


def register(app, deps: ListenerDeps) -> None:
    """``deps.rate``: a usecases.budgets.RateLimit (questions per person per minute), or None."""
    state, dispatch, rate = deps.state, deps.dispatch, deps.rate

    def enqueue(event: dict, body: dict, context, kind: str) -> None:
        payload = question_payload(event, body, context.get("bot_user_id"), kind)
        if not payload["channel"] or not payload["ts"]:
            log.warning("dropped an event without a channel or ts", extra={"event_kind": kind})
            return
        key = f"{payload['channel']}:{payload['ts']}"
        with tracing.span(f"slack {kind}", kind=tracing.SpanKind.SERVER,
                          attributes={"messaging.system": "slack", "chatops.event.kind": kind}), \
                correlated(tracing.trace_id() or payload["event_id"]) as cid:
            payload["cid"] = cid
            payload["trace"] = tracing.carrier()
            payload["queued_at"] = time.time()
            limited: list[float] = []

            def within_rate() -> bool:
                wait = rate.allow(payload["user"]) if rate is not None else 0.0
                if wait:
                    limited.append(wait)
                return not wait

            if not enqueue_once(state, dispatch, claim=(keys.CLAIM_MESSAGE, key), kind=QUESTION.kind, payload=payload,
                                gate=within_rate):
                if limited:
                    metrics.SLACK_EVENTS.labels(kind=kind, outcome="rate_limited").inc()
                    log.info("question not queued: the person asks too often", extra={"user": payload["user"]})
                    if state.claim(keys.CLAIM_SLOW_DOWN, payload["user"] or "", ttl=int(limited[0]) + 1):
                        tell(context, payload, slow_down(limited[0]))
                else:
                    metrics.SLACK_EVENTS.labels(kind=kind, outcome="duplicate").inc()
                return
            metrics.SLACK_EVENTS.labels(kind=kind, outcome="queued").inc()
            log.info("question enqueued", extra={"event_kind": kind, "channel": payload["channel"],
                                                 "user": payload["user"]})

    def tell(context, payload: dict, text: str) -> None:
        try:
            context.client.chat_postEphemeral(channel=payload["channel"], user=payload["user"],
                                              thread_ts=payload.get("thread_ts"), **blocks.note_message(text))
        except Exception:  # noqa: BLE001 - the person is not told; the operator is
            log.exception("could not tell a person to slow down")

    @app.event("app_mention")
    def on_mention(event, body, context):
        if not is_well_formed(event):
            log.warning("dropped a malformed event", extra={"event_kind": "mention"})
            return
        if is_from_bot(event):
            return
        enqueue(event, body, context, "mention")

    @app.event("message")
    def on_message(event, body, context):
        if not is_well_formed(event):
            log.warning("dropped a malformed event", extra={"event_kind": "message"})
            return
        if is_from_bot(event) or not event.get("user"):
            return
        bot_user_id = context.get("bot_user_id")
        if event.get("channel_type") == "im":
            enqueue(event, body, context, "dm")
            return
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts"):
            return  # a plain channel message: only @-mentions are questions
        if bot_user_id and f"<@{bot_user_id}>" in (event.get("text") or ""):
            return  # app_mention covers it
        if state.is_bot_thread(event["channel"], thread_ts):
            enqueue(event, body, context, "follow_up")

    @app.event("agent_session_stopped")
    def on_stream_stopped(event):
        # The person pressed Stop on the agent's work in a thread. Slack has stopped the streams
        # it lists (streaming_message_ts); the worker writing the answer there sees the mark before
        # its next piece, ends generation and records the answer as stopped (bot/questions/stream.py).
        # One Redis write: the acknowledgement stays immediate.
        channel, thread_ts = event.get("channel"), event.get("thread_ts")
        if isinstance(channel, str) and isinstance(thread_ts, str) and channel and thread_ts:
            state.mark_stopped(channel, thread_ts)
        metrics.SLACK_EVENTS.labels(kind="stop", outcome="marked" if thread_ts else "ignored").inc()
        log.info("the agent's work in a thread was stopped by its reader",
                 extra={"channel": channel, "streams": event.get("streaming_message_ts")})
