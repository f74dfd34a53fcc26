"""A question from Slack: the working message, the answer, the audit row, proposals, the DM offer.

Each step that talks to someone is recorded (``chatops.progress``), so a retry or a
redelivery does only what is left: one model call, one answer, one audit row, one
proposal per tool call. A channel answer is checked against the channel's members just
before it is posted (``channel_fresh`` seconds): if someone joined since its audience was
read, the answer is made again for the channel as it is.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from bot import blocks
from bot.decisions.blocks import proposal_message
from bot.dm_offer import offer
from bot.dm_offer.blocks import dm_offer
from bot.limits import STATUS_TEXT_MAX
from bot.home import context as app_context
from bot.policies import ChannelPolicyLookup
from bot.questions.blocks import answer_messages, help_message, private_answer_note, stream_end_blocks
from bot.questions.stream import LOADING, STATUS, StreamedAnswer
from bot.questions.task import QUESTION
from bot.services import Services, slack_required
from bot.steps import ProgressFor, report_failure, working_message
from bot.tool_connections.blocks import connect_prompt
from chatops import metrics, tracing
from chatops.channels import ChannelPolicy
from chatops.errors import IdentityUnavailable
from chatops.progress import Progress
from usecases.answer import Answer
from usecases.answering import Answering
from usecases.ask import Question
from usecases.claims import NOTE as CLAIM_NOTE
from usecases.people import IDENTITY_DOWN, Refusal
from usecases.proposals import Invalid
from usecases.threads import Exchange
from usecases.tools import Toolbox, caller_of

log = logging.getLogger(__name__)

MAX_AUDIENCE_ROUNDS = 3
CHANNEL_NOTE = "Answered only from documents that everyone in this conversation may see."
STOPPED_NOTE = "Stopped. Ask again whenever you like."
# How a source's kind is named in a step ("Searching SharePoint, Confluence").
KIND_TITLES = {"sharepoint": "SharePoint", "confluence": "Confluence", "jira": "Jira", "filesystem": "files"}


@dataclass(frozen=True)
class Timing:
    thread_ttl: int = 7 * 86400       # how long a thread's exchanges are kept for follow-ups
    channel_fresh: float = 5.0        # re-read a channel's members older than this before posting


def asker(people, q: Question) -> None:
    """Slack's side of who is asking: the email to look them up by, or external."""
    try:
        who = people.someone(q.asker_slack_id)
    except IdentityUnavailable:
        raise Refusal(IDENTITY_DOWN) from None
    q.asker_email, q.asker_external = who.email, who.external


def answer_of(answering: Answering, q: Question, progress: Progress) -> Answer:
    """The answer an earlier delivery of this task made, or a new one (recorded at once, with its
    stage timings)."""
    recorded = progress.get_json("answer")
    if recorded is not None:
        return Answer.from_record(recorded)
    answer, timings = answering.ask(q)
    count_answer(answer, timings.stages())
    if answer.note == CLAIM_NOTE:
        metrics.STATE_CLAIMS_REMOVED.inc()
    progress.mark_json("stages", timings.stages())
    progress.mark_json("answer", answer.to_record())
    return answer


def count_answer(answer: Answer, stages: dict[str, float]) -> None:
    """The answer's metrics: mode and route, stage latencies, similarity, citations, tokens, cost."""
    metrics.ANSWERS.labels(mode=answer.mode, route=answer.route or "none").inc()
    for stage, ms in stages.items():
        if ms or stage in ("identity", "audience", "retrieval"):
            metrics.STAGE_SECONDS.labels(stage=stage).observe(ms / 1000)
    if answer.top_similarity is not None:
        metrics.TOP_SIMILARITY.observe(answer.top_similarity)
    if answer.mode == "llm":
        metrics.CITATIONS.labels(outcome="kept").inc(len(answer.citations))
        metrics.CITATIONS.labels(outcome="dropped").inc(answer.citations_dropped)
    for model, (inp, out) in answer.usage.items():
        metrics.LLM_TOKENS.labels(model=model, direction="input").inc(inp)
        metrics.LLM_TOKENS.labels(model=model, direction="output").inc(out)
    for model, cost in (answer.costs or {}).items():
        if cost:
            metrics.LLM_COST.labels(model=model).inc(cost)


def post_answer(gateway, channel: str, placeholder: str | None, thread_ts: str | None, answer: Answer,
                q: Question, link_hosts: tuple[str, ...], *, answer_id: str | None = None,
                ephemeral_to: str | None = None) -> None:
    """The answer in place of the working message (more messages in the thread if it is long), or,
    ``ephemeral_to``, only to that person."""
    shared = not q.is_private and not ephemeral_to
    messages = answer_messages(answer, audience_note=CHANNEL_NOTE if shared else "",
                               link_hosts=link_hosts, answer_id=answer_id)
    removed = sum(str(m["blocks"]).count("[link removed: ") for m in messages)
    if removed:
        metrics.LINKS_REMOVED.inc(removed)
    if ephemeral_to:
        for message in messages:
            gateway.post_ephemeral(channel, ephemeral_to, message, thread_ts=thread_ts)
        return
    first = placeholder
    if first is None:    # streaming: no working message (a status instead), the answer a reply
        first = gateway.post(channel, messages[0], thread_ts=thread_ts)
    else:
        gateway.update(channel, placeholder, messages[0])
    for extra in messages[1:]:
        gateway.post(channel, extra, thread_ts=thread_ts or first)


def show(gateway, channel: str, placeholder: str | None, thread_ts: str | None, message: dict) -> None:
    """``message`` in place of the working message, or, with none (streaming), as a reply."""
    if placeholder is None:
        gateway.post(channel, message, thread_ts=thread_ts)
    else:
        gateway.update(channel, placeholder, message)


@dataclass(kw_only=True)
class QuestionHandler:
    gateway: Any                  # bot.gateway.SlackGateway
    state: Any                    # chatops.state.State
    people: Any                   # bot.people.SlackPeople
    answering: Answering
    directory: Any                # usecases.ask.ChannelDirectory (None: no channel answers)
    progress_for: ProgressFor
    link_hosts: tuple[str, ...] = ()
    timing: Timing = field(default_factory=Timing)
    policies: ChannelPolicyLookup | None = None     # channels: in CHATOPS_CONFIG
    source_ids: dict[str, str] = field(default_factory=dict)   # source name -> its index source id
    toolbox: Toolbox | None = None                              # live tools (their labels)
    connections: Any = None                                     # usecases.tool_auth.ToolConnections
    streaming: bool = False       # CHATOPS_STREAMING: a model's answer streamed (bot/questions/stream.py)
    source_kinds: dict[str, str] = field(default_factory=dict)  # source name -> what it is ("SharePoint")

    def policy(self, payload: dict) -> ChannelPolicy:
        if self.policies is None:
            return ChannelPolicy()
        policy = self.policies.for_channel(payload.get("channel"), payload.get("channel_type"))
        looked_at = app_context.looking_at(self.state, payload.get("user")) \
            if payload.get("channel_type") == "im" else None
        if looked_at:
            # The Messages tab beside a channel: that channel's sources and actions. The audience
            # stays the asker alone: a direct message's answer is private whatever its policy.
            policy = app_context.in_context(policy, self.policies.for_channel(looked_at))
        return policy

    def handle(self, payload: dict) -> None:
        gateway, state = self.gateway, self.state
        progress = self.progress_for(QUESTION.kind, payload)
        channel, thread_ts = payload["channel"], payload.get("thread_ts")
        policy = self.policy(payload)
        if not policy.enabled or (policy.respond == "mentions" and payload.get("kind") == "follow_up"):
            why = "disabled" if not policy.enabled else "follow_ups_off"
            metrics.SLACK_EVENTS.labels(kind="question", outcome="ignored").inc()
            log.info("question ignored by the channel's settings", extra={"channel": channel, "why": why})
            return
        private_reply = policy.reply == "ephemeral" and payload.get("channel_type") != "im"
        queue_wait = max(0.0, time.time() - float(payload.get("queued_at") or time.time())) * 1000
        stream: StreamedAnswer | None = None
        placeholder = progress.get("placeholder") or progress.get("stream_ts")
        if progress.get("stream_ts") and not progress.done("posted"):
            # An earlier delivery died while streaming: its stream is ended, and the answer
            # made again goes in its place (chat.update), once.
            _end_quietly(gateway, channel, progress.get("stream_ts"))
        if (self.streaming and not private_reply and placeholder is None and payload.get("ts")
                and not progress.done("posted")):
            # The status while retrieval and tools run, in the question's thread (each DM message
            # is its own thread); the answer streams there once its audience is settled.
            reply_ts = thread_ts or payload["ts"]
            if self._status(channel, reply_ts, STATUS, LOADING):
                thread_ts = reply_ts
                stream = StreamedAnswer(
                    gateway, channel, reply_ts, recipient_user_id=payload.get("user"),
                    recipient_team_id=payload.get("team"), link_hosts=self.link_hosts,
                    check_audience=lambda audience: self._audience_holds(channel, audience),
                    on_start=lambda ts: progress.mark("stream_ts", ts),
                    was_stopped=lambda: state.was_stopped(channel, reply_ts),
                    early=payload.get("channel_type") == "im")
        if stream is None and placeholder is None and not private_reply:
            placeholder = working_message(gateway, progress, channel, thread_ts)
        if thread_ts:
            state.mark_thread(channel, thread_ts, ttl=self.timing.thread_ttl)
        text = (payload.get("text") or "").strip()
        if not text:
            if private_reply:
                gateway.post_ephemeral(channel, payload["user"], help_message(), thread_ts=thread_ts)
            else:
                show(gateway, channel, placeholder, thread_ts, help_message())
            return
        started = time.perf_counter()
        q = Question(text=text, asker_slack_id=payload.get("user"), channel=channel,
                     channel_type=payload.get("channel_type"), private_reply=private_reply,
                     history=[Exchange.from_record(r) for r in state.thread_history(channel, thread_ts)]
                     if thread_ts else [],
                     allow_actions=policy.actions,
                     sources=None if policy.sources is None else tuple(self.source_ids[n] for n in policy.sources))
        meta = {"correlation_id": payload.get("cid"), "team": payload.get("team"),
                "channel_type": payload.get("channel_type")}
        q.correlation_id = payload.get("cid")
        if placeholder:
            q.on_step = lambda step: gateway.update(channel, placeholder, blocks.working_message(step))
        elif stream is not None:
            q.on_step = functools.partial(self._step, stream)
            q.on_task = functools.partial(self._task, stream, policy)
            q.stream = stream.open
        try:
            asker(self.people, q)
            answer = answer_of(self.answering, q, progress)
            q.stream = None        # answered again for the channel as it is: posted whole
            streamed = stream is not None and stream.state in ("open", "stopped", "broken")
            if not progress.done("posted") and not streamed:   # a stream settled its audience first
                answer = self._for_current_members(q, answer, progress)
        except Refusal as refusal:
            if not progress.done("posted"):
                if stream is not None and stream.state == "open":    # opened for its task updates
                    if not stream.finish(blocks.refusal_message(str(refusal))["blocks"]):
                        show(gateway, channel, None, thread_ts, blocks.refusal_message(str(refusal)))
                elif private_reply:
                    gateway.post_ephemeral(channel, payload["user"], blocks.refusal_message(str(refusal)),
                                           thread_ts=thread_ts)
                else:
                    show(gateway, channel, placeholder, thread_ts, blocks.refusal_message(str(refusal)))
                progress.mark("posted")
            if not progress.done("recorded"):
                metrics.ANSWERS.labels(mode="refused", route="none").inc()
                self.answering.record(q, None, stages={"queue_wait": queue_wait}, **meta)
                progress.mark("recorded")
            return
        answer_id = progress.get("answer_id")
        if answer_id is None:
            answer_id = secrets.token_hex(8)
            progress.mark("answer_id", answer_id)
        stages = {"queue_wait": queue_wait, **(progress.get_json("stages") or {})}
        # A channel answer resting on live data only the asker may see goes to the asker alone.
        private_only = bool(answer.private_only) and not q.is_private
        if not progress.done("posted"):
            if thread_ts and not progress.done("exchange"):  # first, so a quick follow-up has the context
                exchange = Exchange.of(text, answer.text, private=q.is_private or private_only,
                                       asker=q.asker_slack_id, basis=answer.basis)
                state.remember_exchange(channel, thread_ts, exchange.to_record(), ttl=self.timing.thread_ttl)
                progress.mark("exchange")
            posting = time.perf_counter()
            with tracing.span("chatops slack_post", kind=tracing.SpanKind.CLIENT):
                if streamed and stream is not None and self._end_stream(stream, answer, q, answer_id, progress):
                    if answer.stopped:
                        stages["stopped"] = (time.perf_counter() - started) * 1000   # in the audit row
                elif streamed and stream is not None:
                    # Slack stopped taking the stream: the whole answer in place of what it showed
                    post_answer(gateway, channel, stream.ts, thread_ts, answer, q, self.link_hosts, answer_id=answer_id)
                else:
                    post_answer(gateway, channel, placeholder, thread_ts, answer, q, self.link_hosts,
                                answer_id=answer_id,
                                ephemeral_to=payload["user"] if (private_reply or private_only) else None)
                if private_only and not private_reply:
                    show(gateway, channel, placeholder, thread_ts,
                         private_answer_note(payload["user"], answer.private_only))
            stages["slack_post"] = (time.perf_counter() - posting) * 1000
            metrics.STAGE_SECONDS.labels(stage="slack_post").observe(stages["slack_post"] / 1000)
            metrics.STAGE_SECONDS.labels(stage="queue_wait").observe(queue_wait / 1000)
            progress.mark_json("stages", stages)
            progress.mark("posted")
        if not progress.done("recorded"):
            self.answering.record(q, answer, latency_ms=(time.perf_counter() - started) * 1000, answer_id=answer_id,
                                  stages=progress.get_json("stages") or stages, thread_ts=thread_ts, **meta)
            progress.mark("recorded")
        if answer.private_note and not progress.done("private_note"):
            gateway.post_ephemeral(channel, payload["user"], blocks.note_message(answer.private_note),
                                   thread_ts=thread_ts)
            progress.mark("private_note")
        self._connect(answer, payload, thread_ts, progress)
        if private_only or private_reply:
            # Proposals rest on the answer's data (arguments, a refusal quoting them): a private
            # answer's go to the asker's DM, never to the channel.
            self._propose(answer, {**payload, "channel": gateway.open_dm(payload["user"])}, None, progress)
        else:
            self._propose(answer, payload, thread_ts or placeholder, progress)
        if answer.hidden_documents and not q.is_private and not progress.done("offer"):
            offer_id = progress.get("offer_id") or secrets.token_urlsafe(12)
            progress.mark("offer_id", offer_id)
            history = [e.to_record() for e in q.history if e is not None]
            offer.keep(state, offer_id, question=text, asker=payload.get("user"), history=history)
            gateway.post_ephemeral(channel, payload["user"], dm_offer(answer.hidden_documents, offer_id),
                                   thread_ts=thread_ts)
            progress.mark("offer")

    def failed(self, payload: dict, reference: str, detail: str = "") -> None:
        report_failure(self.gateway, self.progress_for(QUESTION.kind, payload), user=payload.get("user"),
                       channel=payload.get("channel"), thread_ts=payload.get("thread_ts"),
                       reference=reference, detail=detail)

    def _status(self, channel: str, thread_ts: str, status: str, loading: list[str] | None = None) -> bool:
        """The thread's status (assistant.threads.setStatus); False when Slack refused it."""
        try:
            self.gateway.set_status(channel, thread_ts, status, loading)
        except Exception as exc:  # noqa: BLE001 - a status is a courtesy: the working message instead
            log.info("could not set the thread's status", extra={"channel": channel, "error": str(exc)[:200]})
            return False
        return True

    def _step(self, stream: StreamedAnswer, step: str) -> None:
        """A step in the thread's status, while the answer's stream is not open (then its task
        updates show the steps)."""
        if stream.state != "open":
            self._status(stream.channel, stream.thread_ts, step, [step[:STATUS_TEXT_MAX]])

    def _task(self, stream: StreamedAnswer, policy: ChannelPolicy, task_id: str, title: str, status: str) -> None:
        if task_id == "search" and self.source_kinds:
            names = policy.sources if policy.sources is not None else tuple(self.source_kinds)
            kinds = sorted({self.source_kinds[n] for n in names if n in self.source_kinds})
            title = f"Searching {', '.join(kinds)}" if kinds else title
        stream.task(task_id, title, status)

    def _audience_holds(self, channel: str, audience: Any) -> bool:
        """Before the first streamed word of a channel answer: the audience it was made for is the
        channel as it is (members re-read when older than ``channel_fresh``; nobody joined). False:
        not streamed, the answer is checked and posted whole as before."""
        if audience.as_of is None or self.directory is None:
            return True               # the asker alone, or public documents only
        fresh = self.timing.channel_fresh
        if time.time() - audience.as_of <= fresh:
            return True
        try:
            current, _as_of = self.directory.members(channel, max_age=fresh)
        except Exception as exc:  # noqa: BLE001 - cannot confirm the audience: not streamed
            log.warning("could not re-read the channel's members before streaming",
                        extra={"channel": channel, "error": type(exc).__name__})
            return False
        joined = {m.chat_id for m in current} - set(audience.members or ())
        metrics.AUDIENCE_RECHECKS.labels(outcome="same" if not joined else "narrowed").inc()
        return not joined

    def _end_stream(self, stream: StreamedAnswer, answer: Answer, q: Question, answer_id: str,
                    progress: Progress) -> bool:
        """The Sources and feedback under a streamed answer (chat.stopStream). False: the answer
        must be posted whole instead (the stream broke, or it showed less than the answer)."""
        if stream.state == "stopped":
            # what the person saw is the answer: recorded as stopped
            answer.text, answer.stopped = stream.shown.strip(), True
            progress.mark_json("answer", answer.to_record())
            if stream.ts is None:        # stopped before a word was shown: say so, nothing else
                self.gateway.post(stream.channel, blocks.note_message(STOPPED_NOTE), thread_ts=stream.thread_ts)
                return True
            if not answer.text:          # opened for its steps, stopped before a word: say so under them
                stream.finish(blocks.note_message(STOPPED_NOTE)["blocks"])
                return True
        elif not stream.shown.strip():
            # Opened for its task updates, but this answer was not written by the model as it came
            # (extractive, cached, nothing found): the whole answer's blocks end the stream.
            messages = answer_messages(answer, audience_note="" if q.is_private else CHANNEL_NOTE,
                                       link_hosts=self.link_hosts, answer_id=answer_id)
            if not stream.finish(messages[0]["blocks"]):
                return False
            for extra in messages[1:]:
                self.gateway.post(stream.channel, extra, thread_ts=stream.thread_ts)
            return True
        ends = stream_end_blocks(answer, audience_note="" if q.is_private else CHANNEL_NOTE, answer_id=answer_id)
        if not stream.finish(ends):
            return False
        return answer.stopped or stream.shown.strip() == answer.text

    def _for_current_members(self, q: Question, answer: Answer, progress: Progress) -> Answer:
        """The answer, made again if someone joined the channel since its audience was read.

        The member list is read again when it is older than ``channel_fresh`` seconds, so the
        audience is never wider than the channel was that long before posting."""
        fresh = self.timing.channel_fresh
        for _ in range(MAX_AUDIENCE_ROUNDS):
            if q.is_private or self.directory is None or answer.members_as_of is None:
                return answer
            if time.time() - answer.members_as_of <= fresh:
                return answer
            try:
                current, as_of = self.directory.members(q.channel, max_age=fresh)
                joined = {m.chat_id for m in current} - set(answer.audience_members or ())
            except Exception as exc:  # noqa: BLE001 - cannot confirm the audience: make it again
                log.warning("could not re-read the channel's members; answering again",
                            extra={"channel": q.channel, "error": type(exc).__name__})
                joined, as_of = None, None
            if joined == set():
                metrics.AUDIENCE_RECHECKS.labels(outcome="same").inc()
                answer.members_as_of = as_of
                return answer
            metrics.AUDIENCE_RECHECKS.labels(outcome="narrowed").inc()
            log.info("the channel changed since the audience was read; answering again",
                     extra={"channel": q.channel, "joined": len(joined or ())})
            answer, _timings = self.answering.ask(q)
            progress.mark_json("answer", answer.to_record())
        return answer

    def _connect(self, answer: Answer, payload: dict, thread_ts: str | None, progress: Progress) -> None:
        """For each per-person tool the asker has not connected: a Connect button, for them alone."""
        if not answer.connect or self.connections is None or answer.asker is None or progress.done("connect"):
            return
        caller = caller_of(answer.asker)
        for name in answer.connect:
            tool = self.toolbox.tools.get(name) if self.toolbox is not None else None
            if tool is None:
                continue
            try:
                prompt = connect_prompt(tool.label, self.connections.begin(name, caller))
            except Exception as exc:  # noqa: BLE001 - discovery or registration failed: say so, answer stands
                log.error("could not start connecting a tool", extra={"tool": name, "error": str(exc)[:200]})
                prompt = blocks.note_message(f"{tool.label} answers with your own account, but connecting it "
                                             "failed just now. Try again later, or tell the bot's operators.")
            if payload.get("channel_type") == "im":
                self.gateway.post(payload["channel"], prompt, thread_ts=thread_ts)
            else:
                self.gateway.post_ephemeral(payload["channel"], payload["user"], prompt, thread_ts=thread_ts)
        progress.mark("connect")

    def _propose(self, answer: Answer, payload: dict, thread_ts: str | None, progress: Progress) -> None:
        channel = payload["channel"]
        for i, call in enumerate(self.answering.tool_calls(answer)):
            made, posted = f"proposal:{i}", f"proposal:{i}:posted"
            if progress.done(posted):
                continue
            proposal_id = progress.get(made)
            if proposal_id is None:
                outcome = self.answering.propose(answer, call, channel=channel, thread_ts=thread_ts,
                                                 correlation_id=payload.get("cid"))
                proposal_id = ("invalid:" + outcome.message()) if isinstance(outcome, Invalid) else outcome.proposal.id
                progress.mark(made, proposal_id)
            if proposal_id.startswith("invalid:"):
                self.gateway.post(channel, blocks.refusal_message(proposal_id[len("invalid:"):]), thread_ts=thread_ts)
            else:
                proposals = self.answering.proposals
                proposal = proposals.store.get_proposal(proposal_id)
                ts = self.gateway.post(channel, proposal_message(proposal, proposals.catalogue), thread_ts=thread_ts)
                proposals.store.set_message(proposal_id, ts)
            progress.mark(posted)


def _end_quietly(gateway, channel: str, ts: str) -> None:
    """End a stream an earlier delivery left open (it may have ended already, or expired)."""
    try:
        gateway.stop_stream(channel, ts)
    except Exception as exc:  # noqa: BLE001 - already ended or expired: nothing to do
        log.info("a stream left by an earlier delivery could not be ended", extra={"error": str(exc)[:200]})


def build(services: Services) -> QuestionHandler:
    s = services.settings
    return QuestionHandler(gateway=slack_required(services), state=services.state, people=services.people,
                           answering=services.answering, directory=services.channel_directory,
                           progress_for=services.progress_for, link_hosts=s.link_hosts,
                           timing=Timing(thread_ttl=s.thread_ttl, channel_fresh=s.channel_fresh),
                           policies=services.channel_policies,
                           source_ids={name: sid for name, (_kind, sid) in services.source_ids.items()},
                           toolbox=services.toolbox, connections=services.tool_connections,
                           streaming=s.streaming,
                           source_kinds={name: KIND_TITLES.get(kind, kind) for name, (kind, _sid)
                                         in services.source_ids.items()})
