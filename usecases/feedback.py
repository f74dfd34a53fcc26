"""Feedback on answers: votes, "what was wrong", escalations to a human, and closing them.

Slack-free: the caller says who clicked what on which answer id; this module looks the answer
up and applies the rules:

* a vote is per person per answer, the last one wins;
* someone outside the answer's audience (not the asker, not one of the channel members the
  answer was made for) gets their vote counted and nothing else kept;
* escalating marks the question escalated once (again only after it was resolved);
* resolving is for the asker, whoever escalated, and the channel's escalation people.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from chatops import metrics
from chatops.store.answers import AnswerRow, Answers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voted:
    answer: AnswerRow | None      # None: no such answer on record
    in_audience: bool = False


class Feedback:
    def __init__(self, answers: Answers):
        self.answers = answers

    def vote(self, answer_id: str | None, voter: str | None, vote: str, reason: str | None = None) -> Voted:
        answer = self.answers.get(answer_id) if answer_id and voter else None
        if answer is None or voter is None:
            log.warning("feedback on an answer that is not on record", extra={"vote": vote})
            return Voted(None)
        counted = self.answers.vote(answer, voter, vote, reason=reason)
        if reason is None:
            metrics.FEEDBACK.labels(kind=vote).inc()
        log.info("feedback recorded", extra={"vote": vote, "in_audience": counted, "with_reason": reason is not None,
                                             "route": answer.route, "mode": answer.mode})
        return Voted(answer, counted)

    def escalate(self, answer_id: str | None, by: str | None) -> tuple[AnswerRow | None, bool]:
        """The answer, and whether this click escalated it (False: it already was, and is open)."""
        answer = self.answers.get(answer_id) if answer_id and by else None
        if answer is None or by is None:
            return None, False
        new = self.answers.escalate(answer, by)
        if new:
            metrics.FEEDBACK.labels(kind="needs_human").inc()
            log.info("question escalated to a human", extra={"mode": answer.mode, "route": answer.route})
        return answer, new

    def answer(self, answer_id: str | None) -> AnswerRow | None:
        return self.answers.get(answer_id) if answer_id else None

    @staticmethod
    def may_resolve(answer: AnswerRow, by: str | None, contacts: Iterable[str] = ()) -> bool:
        """The asker, whoever escalated, and the channel's escalation people may close it."""
        return by is not None and by in {answer.asker_slack_id, answer.escalated_by, *contacts} - {None}

    def resolve(self, answer: AnswerRow | None, by: str | None, contacts: Iterable[str] = ()) -> str:
        """"resolved", "not_allowed", "not_open" or "unknown" (``answer`` None: no such answer)."""
        if answer is None or not by:
            return "unknown"
        if not self.may_resolve(answer, by, contacts):
            return "not_allowed"
        if not self.answers.resolve(answer, by):
            return "not_open"
        metrics.FEEDBACK.labels(kind="resolved").inc()
        return "resolved"
