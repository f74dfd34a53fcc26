"""Answer a question and record it in the audit trail: one use case for Slack and for ``chatops ask``.

``ask`` runs the question pipeline (``usecases.ask``): an ``Answer``, or a ``Refusal`` whose
text is for the asker. ``record`` writes one audit row for it (refused questions too).
``propose`` turns one of the model's tool calls (at most ``MAX_PROPOSALS`` are used) into a
proposal, validated and waiting for a person's decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from chatops.store.store import Store
from chatops.store.tools import ToolRecords
from connectors.llm.base import ToolCall
from usecases.answer import Answer
from usecases.ask import Pipeline, Question, Refusal, Timings
from usecases.proposals import Invalid, Proposed, ProposalService

log = logging.getLogger(__name__)

MAX_PROPOSALS = 3


@dataclass
class Asked:
    """What ``Answering.ask_and_record`` did: the answer, or the refusal; the proposals made."""
    answer: Answer | None = None
    refusal: Refusal | None = None
    proposed: list[Proposed | Invalid] = field(default_factory=list)


class Answering:
    def __init__(self, pipeline: Pipeline, store: Store, proposals: ProposalService | None = None):
        self.pipeline = pipeline
        self.store = store
        self.proposals = proposals

    def ask(self, q: Question) -> tuple[Answer, Timings]:
        return self.pipeline.ask(q)

    def record(self, q: Question, answer: Answer | None, *, correlation_id: str | None = None,
               team: str | None = None, latency_ms: float | None = None, channel: str | None = None,
               channel_type: str | None = None, answer_id: str | None = None,
               stages: dict[str, float] | None = None, thread_ts: str | None = None) -> int | None:
        """One audit row for the question (``answer`` None: refused), with what is known about the
        answer (its id, route, stage timings in ms, tokens, cost, ...). A failed write is logged
        loudly and does not undo what the person was already told."""
        facts = {} if answer is None else answer_facts(answer)
        if answer_id:
            facts["answer_id"] = answer_id
        if thread_ts:
            facts["thread_ts"] = thread_ts
        if stages:
            facts["stages"] = {k: round(v, 2) for k, v in stages.items()}
        calls = [int(u["call_id"]) for u in (answer.tools_used if answer is not None else []) if u.get("call_id")]
        if calls:
            try:
                ToolRecords(self.store).link_calls(calls, answer_id=answer_id, correlation_id=correlation_id)
            except Exception:  # noqa: BLE001 - the calls are recorded; only their link to the answer is lost
                log.exception("could not link the tool calls to their answer")
        try:
            return self.store.record_question(
                correlation_id=correlation_id, team=team, latency_ms=latency_ms,
                channel=channel or q.channel, channel_type=channel_type or q.channel_type,
                asker_slack_id=q.asker_slack_id,
                asker_email=answer.asker.email if answer is not None and answer.asker else q.asker_email,
                question=q.text, mode=answer.mode if answer is not None else "refused",
                cited=[c.as_json() for c in answer.citations] if answer is not None else [],
                audience=answer.audience if answer is not None else "",
                hidden_documents=answer.hidden_documents if answer is not None else 0, facts=facts)
        except Exception:  # noqa: BLE001 - the answer is out; the audit gap must be loud
            log.exception("could not write the question to the audit trail")
            return None

    def ask_and_record(self, q: Question, *, channel: str, channel_type: str) -> Asked:
        """``chatops ask``: the question answered (or refused) and recorded, and the model's tool
        calls proposed for the asker, outside any Slack thread."""
        try:
            answer, timings = self.ask(q)
        except Refusal as refusal:
            self.record(q, None, channel=channel, channel_type=channel_type)
            return Asked(refusal=refusal)
        self.record(q, answer, stages=timings.stages(), channel=channel, channel_type=channel_type)
        return Asked(answer, proposed=[self.propose(answer, call, channel=None, thread_ts=None, correlation_id=None)
                                       for call in self.tool_calls(answer)])

    @staticmethod
    def tool_calls(answer: Answer) -> list[ToolCall]:
        """The model's tool calls that may become proposals (the first ``MAX_PROPOSALS``)."""
        return list(answer.tool_calls or [])[:MAX_PROPOSALS]

    def propose(self, answer: Answer, call: ToolCall, *, channel: str | None, thread_ts: str | None,
                correlation_id: str | None) -> Proposed | Invalid:
        """One tool call of ``answer`` as a proposal for its asker, validated, waiting for a person."""
        if self.proposals is None:
            return Invalid(call.name, ["no actions are configured"])
        assert answer.asker is not None, "the pipeline names the asker of every answer"
        return self.proposals.propose(call.name, call.arguments, answer.asker, channel=channel,
                                      thread_ts=thread_ts, correlation_id=correlation_id)


def answer_facts(answer: Answer) -> dict[str, Any]:
    """The audit row's facts about an answer (chatops.store.ANSWER_FACTS)."""
    prompt, completion = answer.tokens
    return {
        "route": answer.route, "top_similarity": answer.top_similarity, "sources_count": answer.sources_count,
        "citations_kept": len(answer.citations), "citations_dropped": answer.citations_dropped,
        "prompt_tokens": prompt if answer.usage else None, "completion_tokens": completion if answer.usage else None,
        "cost": answer.cost, "answer": answer.text, "retrieved": answer.retrieved,
        "audience_members": None if answer.audience_members is None else sorted(answer.audience_members),
    }
