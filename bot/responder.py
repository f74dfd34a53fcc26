"""Turn a queued Slack question into posted messages.

Posts a "working" message first, runs the question pipeline, and replaces the
working message with the answer. Each step that talks to someone is recorded
(``chatops.progress``) so a retry or a redelivery does only what is left: one
model call, one answer, one audit row, one proposal per tool call. A channel
answer is checked against the channel's members just before it is posted
(``CHATOPS_CHANNEL_FRESH``): if someone joined since the audience was built, the
answer is made again for the channel as it is. Failures end as a message to the
asker: in place of the working message, else in the thread, else in a DM.
"""

from __future__ import annotations

import logging
import secrets
import time

from bot import blocks, proposal_blocks
from bot.gateway import SlackTransientError
from chatops import metrics
from chatops.tasks import task_key
from usecases.answer import Answer
from usecases.claims import NOTE as CLAIM_NOTE
from connectors.identity.base import IdentityUnavailable
from usecases.ask import IDENTITY_DOWN, Question, Refusal, question_record
from usecases.people import resolve
from usecases.proposals import Invalid, Refused
from chatops.progress import Progress

log = logging.getLogger(__name__)

OFFER_TTL = 86400
MAX_AUDIENCE_ROUNDS = 3


class Responder:
    def __init__(self, container, *, progress_ttl: int = 86400):
        self.c = container
        self.settings = container.settings
        self.pipeline = container.pipeline()  # builds identity, index, embedder and LLM client now
        self.store = container.store
        self.proposals = container.proposals
        self.progress_ttl = progress_ttl

    def _progress(self, kind: str, payload: dict) -> Progress:
        return Progress(self.c.redis, self.settings.key_prefix, task_key(kind, payload), self.progress_ttl)

    # -- questions from Slack ----------------------------------------------------

    def question(self, payload: dict) -> None:
        gateway, state = self.c.gateway, self.c.state
        progress = self._progress("question", payload)
        channel, thread_ts = payload["channel"], payload.get("thread_ts")
        placeholder = self._placeholder(progress, channel, thread_ts)
        if thread_ts:
            state.mark_thread(channel, thread_ts, ttl=self.settings.thread_ttl)
        text = (payload.get("text") or "").strip()
        if not text:
            gateway.update(channel, placeholder, blocks.help_message())
            return
        started = time.perf_counter()
        q = Question(text=text, asker_slack_id=payload.get("user"), channel=channel,
                     channel_type=payload.get("channel_type"),
                     history=state.thread_history(channel, thread_ts) if thread_ts else [])
        try:
            self._identify(q)
            answer = self._answer(q, progress)
            if not progress.done("posted"):
                answer = self._for_current_members(q, answer, progress)
        except Refusal as refusal:
            if not progress.done("posted"):
                gateway.update(channel, placeholder, blocks.refusal_message(str(refusal)))
                progress.mark("posted")
            if not progress.done("recorded"):
                self._record(payload, q, None)
                progress.mark("recorded")
            return
        if not progress.done("posted"):
            if thread_ts and not progress.done("exchange"):  # first, so a quick follow-up has the context
                state.remember_exchange(channel, thread_ts, text, answer.text, ttl=self.settings.thread_ttl)
                progress.mark("exchange")
            self._post_answer(channel, placeholder, thread_ts, answer, q)
            progress.mark("posted")
        if not progress.done("recorded"):
            self._record(payload, q, answer, latency_ms=(time.perf_counter() - started) * 1000)
            progress.mark("recorded")
        self._propose(answer, payload, thread_ts or placeholder, progress)
        if answer.hidden_documents and not q.is_private and not progress.done("offer"):
            offer_id = progress.get("offer_id") or secrets.token_urlsafe(12)
            progress.mark("offer_id", offer_id)
            state.set_json({"question": text, "asker": payload.get("user"), "history": q.history},
                           OFFER_TTL, "offer", offer_id)
            gateway.post_ephemeral(channel, payload["user"],
                                   blocks.dm_offer(answer.hidden_documents, offer_id), thread_ts=thread_ts)
            progress.mark("offer")

    def _identify(self, q: Question) -> None:
        """The asker as the directory needs them: Slack's side of who they are."""
        try:
            who = self.c.people.someone(q.asker_slack_id)
        except IdentityUnavailable:
            raise Refusal(IDENTITY_DOWN) from None
        q.asker_email, q.asker_external = who.email, who.external

    def _answer(self, q: Question, progress: Progress) -> Answer:
        """The answer made by an earlier delivery of this task, or a new one (recorded at once)."""
        recorded = progress.get_json("answer")
        if recorded is not None:
            return Answer.from_record(recorded)
        answer, _timings = self.pipeline.ask(q)
        if answer.note == CLAIM_NOTE:
            metrics.STATE_CLAIMS_REMOVED.inc()
        progress.mark_json("answer", answer.to_record())
        return answer

    def _for_current_members(self, q: Question, answer: Answer, progress: Progress) -> Answer:
        """The answer, made again if someone joined the channel since its audience was read.

        The member list is read again when it is older than ``CHATOPS_CHANNEL_FRESH`` seconds,
        so the audience is never wider than the channel was that long before posting."""
        directory = self.pipeline.directory
        fresh = self.settings.channel_fresh
        for _ in range(MAX_AUDIENCE_ROUNDS):
            if q.is_private or directory is None or answer.members_as_of is None:
                return answer
            if time.time() - answer.members_as_of <= fresh:
                return answer
            try:
                current, as_of = directory.members(q.channel, max_age=fresh)
            except Exception as exc:  # noqa: BLE001 - cannot confirm the audience: make it again
                log.warning("could not re-read the channel's members; answering again",
                            extra={"channel": q.channel, "error": type(exc).__name__})
                current, as_of = None, None
            joined = None if current is None else {m.chat_id for m in current} - set(answer.audience_members or ())
            if joined == set():
                metrics.AUDIENCE_RECHECKS.labels(outcome="same").inc()
                answer.members_as_of = as_of
                return answer
            metrics.AUDIENCE_RECHECKS.labels(outcome="narrowed").inc()
            log.info("the channel changed since the audience was read; answering again",
                     extra={"channel": q.channel, "joined": len(joined or ())})
            answer, _timings = self.pipeline.ask(q)
            progress.mark_json("answer", answer.to_record())
        return answer

    def _record(self, payload: dict, q: Question, answer, *, latency_ms: float | None = None) -> None:
        try:
            self.store.record_question(correlation_id=payload.get("cid"), team=payload.get("team"),
                                       latency_ms=latency_ms, **question_record(q, answer))
        except Exception:  # noqa: BLE001 - the answer is posted; the audit gap must be loud
            log.exception("could not write the question to the audit trail")

    def _propose(self, answer: Answer, payload: dict, thread_ts: str, progress: Progress) -> None:
        gateway = self.c.gateway
        for i, call in enumerate((answer.tool_calls or [])[:3]):
            made, posted = f"proposal:{i}", f"proposal:{i}:posted"
            if progress.done(posted):
                continue
            proposal_id = progress.get(made)
            if proposal_id is None:
                outcome = self.proposals.propose(call.name, call.arguments, answer.asker, channel=payload["channel"],
                                                 thread_ts=thread_ts, correlation_id=payload.get("cid"))
                proposal_id = ("invalid:" + outcome.message()) if isinstance(outcome, Invalid) else outcome.proposal.id
                progress.mark(made, proposal_id)
            if proposal_id.startswith("invalid:"):
                gateway.post(payload["channel"], blocks.refusal_message(proposal_id[len("invalid:"):]),
                             thread_ts=thread_ts)
            else:
                proposal = self.store.get_proposal(proposal_id)
                ts = gateway.post(payload["channel"], self._proposal_message(proposal), thread_ts=thread_ts)
                self.store.set_message(proposal_id, ts)
            progress.mark(posted)

    def _proposal_message(self, p) -> dict:
        return proposal_message(p, self.proposals)

    # -- Approve / Reject ---------------------------------------------------------

    def decision(self, payload: dict) -> None:
        gateway = self.c.gateway
        user, channel = payload.get("user"), payload.get("channel")
        try:
            actor = resolve(self.c.identity, self.c.people.someone(user))
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

    # -- messages -------------------------------------------------------------------

    def _placeholder(self, progress: Progress, channel: str, thread_ts: str | None, step: str = "placeholder") -> str:
        ts = progress.get(step)
        if ts:
            return ts
        ts = self.c.gateway.post(channel, blocks.working_message(), thread_ts=thread_ts)
        progress.mark(step, ts)
        return ts

    def _post_answer(self, channel: str, placeholder: str, thread_ts: str | None, answer: Answer,
                     q: Question) -> None:
        note = ""
        if not q.is_private:
            note = "Answered only from documents that everyone in this conversation may see."
        messages = blocks.answer_messages(answer, audience_note=note, link_hosts=self.settings.link_hosts)
        removed = sum(str(m["blocks"]).count("[link removed: ") for m in messages)
        if removed:
            metrics.LINKS_REMOVED.inc(removed)
        self.c.gateway.update(channel, placeholder, messages[0])
        for extra in messages[1:]:
            self.c.gateway.post(channel, extra, thread_ts=thread_ts or placeholder)

    def fail(self, kind: str, payload: dict, reference: str, detail: str = "") -> None:
        """Tell the asker (or the clicker) that something went wrong, by the first way that works:
        in place of the working message, in the thread, in a DM. Every attempt is counted."""
        message = blocks.error_message(reference, detail)
        user, channel = payload.get("user"), payload.get("channel")
        ways: list[tuple[str, object]] = []
        if kind == "decision":
            if channel and user:
                ways.append(("ephemeral", lambda: self.c.gateway.post_ephemeral(channel, user, message)))
        else:
            progress = self._progress(kind, payload)
            if progress.done("posted"):
                # The answer is out; a later step (the note, a proposal) failed. Keep the answer.
                log.error("a step after the answer failed for good", extra={"kind": kind})
                return
            where = progress.get("dm") or channel
            thread = None if kind == "answer_in_dm" else payload.get("thread_ts")
            placeholder = progress.get("placeholder")
            if placeholder and where:
                ways.append(("update", lambda: self.c.gateway.update(where, placeholder, message)))
            if where:
                ways.append(("thread", lambda: self.c.gateway.post(where, message, thread_ts=thread)))
        if user:
            ways.append(("dm", lambda: self.c.gateway.post(self.c.gateway.open_dm(user), message)))
        for via, attempt in ways:
            try:
                attempt()
            except Exception as exc:  # noqa: BLE001 - try the next way
                metrics.FAILURE_REPORTS.labels(via=via, outcome="failed").inc()
                log.warning("could not report the failure this way", extra={"via": via, "error": type(exc).__name__})
                continue
            metrics.FAILURE_REPORTS.labels(via=via, outcome="sent").inc()
            return
        log.error("could not tell anyone about the failure", extra={"kind": kind, "reference": reference})

    # -- "send me the full answer" ----------------------------------------------

    def answer_in_dm(self, payload: dict) -> None:
        gateway, state = self.c.gateway, self.c.state
        progress = self._progress("answer_in_dm", payload)
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
        dm = progress.get("dm") or gateway.open_dm(user)
        progress.mark("dm", dm)
        q = Question(text=offer["question"], asker_slack_id=user, channel=dm, channel_type="im",
                     history=[tuple(h) for h in offer.get("history") or []], allow_actions=False)
        placeholder = self._placeholder(progress, dm, None)
        if progress.done("posted"):
            return
        try:
            self._identify(q)
            answer = self._answer(q, progress)
        except Refusal as refusal:
            gateway.update(dm, placeholder, blocks.refusal_message(str(refusal)))
            progress.mark("posted")
            return
        self._post_answer(dm, placeholder, None, answer, q)
        progress.mark("posted")


def proposal_message(p, proposals) -> dict:
    """The Slack message of a proposal in its current state."""
    spec = proposals.catalogue.specs.get(p.action)
    return proposal_blocks.proposal_blocks(
        proposal_id=p.id, action=p.action, description=spec.description if spec else p.action,
        arguments=p.arguments, requested_by_slack=p.requested_by_slack, requested_by_email=p.requested_by_email,
        approvers=proposals.catalogue.describe(proposals.policy_of(p)), expires_at=p.expires_at, state=p.state,
        decided_by_slack=p.decided_by_slack, decided_by_email=p.decided_by_email, reason=p.reason,
        result_summary=(p.result or {}).get("summary"), result_url=(p.result or {}).get("url"))


__all__ = ["Responder", "SlackTransientError", "proposal_message"]
