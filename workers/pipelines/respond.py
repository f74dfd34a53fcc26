"""Turn a queued Slack question into posted messages.

Posts a "working" message first (once, even if the task is redelivered),
runs the question pipeline, and replaces the working message with the answer.
Failures end as a message in the same place: a refusal (identity, input) or
an error with a reference id the operator can find in the logs.
"""

from __future__ import annotations

import logging
import secrets

from bot import blocks
from bot.gateway import SlackTransientError
from workers.pipelines.ask import Question, Refusal

log = logging.getLogger(__name__)

OFFER_TTL = 86400


class Responder:
    def __init__(self, container):
        self.c = container
        self.settings = container.settings
        self.pipeline = container.pipeline()  # builds identity, index, embedder and LLM client now

    # -- questions from Slack ----------------------------------------------------

    def question(self, payload: dict) -> None:
        gateway, state = self.c.gateway, self.c.state
        channel, thread_ts = payload["channel"], payload.get("thread_ts")
        placeholder = self._placeholder(payload)
        text = (payload.get("text") or "").strip()
        if not text:
            gateway.update(channel, placeholder, blocks.help_message())
            return
        history = state.thread_history(channel, thread_ts) if thread_ts else []
        q = Question(text=text, asker_slack_id=payload.get("user"), channel=channel,
                     channel_type=payload.get("channel_type"), history=history)
        try:
            answer, _timings = self.pipeline.ask(q)
        except Refusal as refusal:
            gateway.update(channel, placeholder, blocks.refusal_message(str(refusal)))
            return
        self._post_answer(channel, placeholder, thread_ts, answer, q)
        if thread_ts:
            state.remember_exchange(channel, thread_ts, text, answer.text, ttl=self.settings.thread_ttl)
        if answer.hidden_documents and not q.is_private:
            offer_id = secrets.token_urlsafe(12)
            state.set_json({"question": text, "asker": payload.get("user"), "history": history},
                           OFFER_TTL, "offer", offer_id)
            gateway.post_ephemeral(channel, payload["user"],
                                   blocks.dm_offer(answer.hidden_documents, offer_id), thread_ts=thread_ts)

    def _placeholder(self, payload: dict) -> str:
        state, gateway = self.c.state, self.c.gateway
        key = f"{payload['channel']}:{payload['ts']}"
        existing = state.get_json("placeholder", key)
        if existing:
            return existing
        ts = gateway.post(payload["channel"], blocks.working_message(), thread_ts=payload.get("thread_ts"))
        state.set_json(ts, 86400, "placeholder", key)
        return ts

    def _post_answer(self, channel: str, placeholder: str, thread_ts: str | None, answer, q: Question) -> None:
        note = ""
        if not q.is_private:
            note = "Answered only from documents that everyone in this conversation may see."
        messages = blocks.answer_messages(answer, audience_note=note)
        self.c.gateway.update(channel, placeholder, messages[0])
        for extra in messages[1:]:
            self.c.gateway.post(channel, extra, thread_ts=thread_ts or placeholder)

    def fail(self, payload: dict, reference: str, detail: str = "") -> None:
        """Best effort: tell the asker something went wrong, where they asked."""
        try:
            key = f"{payload['channel']}:{payload['ts']}"
            ts = self.c.state.get_json("placeholder", key)
            message = blocks.error_message(reference, detail)
            if ts:
                self.c.gateway.update(payload["channel"], ts, message)
            else:
                self.c.gateway.post(payload["channel"], message, thread_ts=payload.get("thread_ts"))
        except Exception:  # noqa: BLE001 - we are already reporting a failure
            log.exception("could not tell the asker about the failure")

    # -- "send me the full answer" ----------------------------------------------

    def answer_in_dm(self, payload: dict) -> None:
        gateway, state = self.c.gateway, self.c.state
        offer = state.get_json("offer", payload.get("offer_id") or "")
        user = payload.get("user")
        if offer is None:
            if payload.get("channel") and user:
                gateway.post_ephemeral(payload["channel"], user,
                                       blocks.dm_offer_done("That offer has expired; ask me again."))
            return
        if offer.get("asker") != user:
            log.warning("someone else clicked a private answer offer; refused", extra={"user": user})
            if payload.get("channel") and user:
                gateway.post_ephemeral(payload["channel"], user,
                                       blocks.dm_offer_done("Only the person who asked can get this answer."))
            return
        dm = gateway.open_dm(user)
        q = Question(text=offer["question"], asker_slack_id=user, channel=dm, channel_type="im",
                     history=[tuple(h) for h in offer.get("history") or []])
        placeholder = gateway.post(dm, blocks.working_message())
        try:
            answer, _ = self.pipeline.ask(q)
        except Refusal as refusal:
            gateway.update(dm, placeholder, blocks.refusal_message(str(refusal)))
            return
        self._post_answer(dm, placeholder, None, answer, q)


__all__ = ["Responder", "SlackTransientError"]
