"""Turn a queued Slack question into posted messages.

Posts a "working" message first (once, even if the task is redelivered),
runs the question pipeline, and replaces the working message with the answer.
Failures end as a message in the same place: a refusal (identity, input) or
an error with a reference id the operator can find in the logs.
"""

from __future__ import annotations

import logging
import secrets
import time

from bot import blocks, proposal_blocks
from bot.gateway import SlackTransientError
from workers.pipelines.ask import Question, Refusal, question_record
from workers.pipelines.proposals import Invalid, Refused

log = logging.getLogger(__name__)

OFFER_TTL = 86400


class Responder:
    def __init__(self, container):
        self.c = container
        self.settings = container.settings
        self.pipeline = container.pipeline()  # builds identity, index, embedder and LLM client now
        self.store = container.store
        self.proposals = container.proposals

    # -- questions from Slack ----------------------------------------------------

    def question(self, payload: dict) -> None:
        gateway, state = self.c.gateway, self.c.state
        channel, thread_ts = payload["channel"], payload.get("thread_ts")
        placeholder = self._placeholder(payload)
        if thread_ts:
            state.mark_thread(channel, thread_ts, ttl=self.settings.thread_ttl)
        text = (payload.get("text") or "").strip()
        if not text:
            gateway.update(channel, placeholder, blocks.help_message())
            return
        history = state.thread_history(channel, thread_ts) if thread_ts else []
        q = Question(text=text, asker_slack_id=payload.get("user"), channel=channel,
                     channel_type=payload.get("channel_type"), history=history)
        started = time.perf_counter()
        try:
            answer, _timings = self.pipeline.ask(q)
        except Refusal as refusal:
            gateway.update(channel, placeholder, blocks.refusal_message(str(refusal)))
            self._record(payload, q, None)
            return
        if thread_ts:  # before posting, so a quick follow-up already has this exchange as context
            state.remember_exchange(channel, thread_ts, text, answer.text, ttl=self.settings.thread_ttl)
        self._post_answer(channel, placeholder, thread_ts, answer, q)
        self._record(payload, q, answer, latency_ms=(time.perf_counter() - started) * 1000)
        self._propose(answer, payload, thread_ts or placeholder)
        if answer.hidden_documents and not q.is_private:
            offer_id = secrets.token_urlsafe(12)
            state.set_json({"question": text, "asker": payload.get("user"), "history": history},
                           OFFER_TTL, "offer", offer_id)
            gateway.post_ephemeral(channel, payload["user"],
                                   blocks.dm_offer(answer.hidden_documents, offer_id), thread_ts=thread_ts)

    def _record(self, payload: dict, q: Question, answer, *, latency_ms: float | None = None) -> None:
        try:
            self.store.record_question(correlation_id=payload.get("cid"), team=payload.get("team"),
                                       latency_ms=latency_ms, **question_record(q, answer))
        except Exception:  # noqa: BLE001 - the answer is posted; the audit gap must be loud
            log.exception("could not write the question to the audit trail")

    def _propose(self, answer, payload: dict, thread_ts: str) -> None:
        for call in (answer.tool_calls or [])[:3]:
            outcome = self.proposals.propose(call.name, call.arguments, answer.asker, channel=payload["channel"],
                                             thread_ts=thread_ts, correlation_id=payload.get("cid"))
            if isinstance(outcome, Invalid):
                self.c.gateway.post(payload["channel"], blocks.refusal_message(outcome.message()), thread_ts=thread_ts)
                continue
            ts = self.c.gateway.post(payload["channel"], self._proposal_message(outcome.proposal), thread_ts=thread_ts)
            self.store.set_message(outcome.proposal.id, ts)

    def _proposal_message(self, p) -> dict:
        return proposal_message(p, self.proposals)

    # -- Approve / Reject ---------------------------------------------------------

    def decision(self, payload: dict) -> None:
        gateway = self.c.gateway
        user, channel = payload.get("user"), payload.get("channel")
        try:
            actor = self.c.identity.by_slack_id(user)
        except Exception as exc:  # noqa: BLE001 - unknown or unreachable: nobody decides anything
            log.warning("could not resolve the clicker; decision refused", extra={"error": type(exc).__name__})
            self.store.audit("click_refused", proposal_id=payload.get("proposal_id"), actor_slack_id=user,
                             correlation_id=payload.get("cid"), detail={"why": "identity not resolved"})
            if channel and user:
                gateway.post_ephemeral(channel, user, blocks.refusal_message(
                    "I couldn't confirm who you are in the company directory, so I can't record your decision."))
            return

        def show(p) -> None:
            if p is not None and p.channel and p.message_ts:
                gateway.update(p.channel, p.message_ts, self._proposal_message(p))

        outcome = self.proposals.decide(payload["proposal_id"], payload["decision"], actor,
                                        reason=payload.get("reason"), correlation_id=payload.get("cid"),
                                        on_approved=show)
        if isinstance(outcome, Refused):
            if channel and user:
                gateway.post_ephemeral(channel, user, blocks.refusal_message(outcome.message))
            return
        final = outcome.executed or outcome.proposal
        show(final)
        if outcome.executed is not None and final.state in ("succeeded", "failed") and final.channel:
            result = final.result or {}
            gateway.post(final.channel, proposal_blocks.execution_result_message(
                final.action, final.state == "succeeded", result.get("summary", ""), result.get("url")),
                thread_ts=final.thread_ts)

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
        if "proposal_id" in payload:
            try:
                if payload.get("channel") and payload.get("user"):
                    self.c.gateway.post_ephemeral(payload["channel"], payload["user"],
                                                  blocks.error_message(reference, detail))
            except Exception:  # noqa: BLE001
                log.exception("could not tell the clicker about the failure")
            return
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
                     history=[tuple(h) for h in offer.get("history") or []], allow_actions=False)
        placeholder = gateway.post(dm, blocks.working_message())
        try:
            answer, _ = self.pipeline.ask(q)
        except Refusal as refusal:
            gateway.update(dm, placeholder, blocks.refusal_message(str(refusal)))
            return
        self._post_answer(dm, placeholder, None, answer, q)


def proposal_message(p, proposals) -> dict:
    """The Slack message of a proposal in its current state."""
    spec = proposals.catalogue.specs.get(p.action)
    return proposal_blocks.proposal_blocks(
        proposal_id=p.id, action=p.action, description=spec.description if spec else p.action,
        arguments=p.arguments, requested_by_slack=p.requested_by_slack, requested_by_email=p.requested_by_email,
        approvers=proposals.policy_of(p).describe(), expires_at=p.expires_at, state=p.state,
        decided_by_slack=p.decided_by_slack, decided_by_email=p.decided_by_email, reason=p.reason,
        result_summary=(p.result or {}).get("summary"), result_url=(p.result or {}).get("url"))


__all__ = ["Responder", "SlackTransientError", "proposal_message"]
