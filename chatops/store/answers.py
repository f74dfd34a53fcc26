"""Answers after they are posted: feedback, escalations, and the rows reports are made of.

An answer is a ``questions`` row with an ``answer_id`` (the only thing its Slack buttons
carry). Feedback is one row per person per answer: a later click replaces the earlier one.
Escalating and resolving are compare-and-set updates, so two clicks at once change the row
once, and each change writes its audit event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, cast

from sqlalchemy import Table, and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from chatops.store.models import Feedback, Question
from chatops.store.store import Store, _masked

# Declarative classes type __table__ as any FromClause; these are their tables.
_Q = cast(Table, Question.__table__)
_F = cast(Table, Feedback.__table__)

VOTES = ("helpful", "not_helpful")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AnswerRow:
    """What feedback and escalation need to know about an answer."""

    id: int
    answer_id: str
    at: datetime
    channel: str | None
    channel_type: str | None
    thread_ts: str | None
    asker_slack_id: str | None
    mode: str
    route: str | None
    question: str
    cited: list[Any]
    audience_members: list[str] | None
    escalated_at: datetime | None
    escalated_by: str | None
    escalation_ts: str | None
    resolved_at: datetime | None
    resolved_by: str | None

    def in_audience(self, slack_id: str | None) -> bool:
        """Could this person see the answer's documents? The asker could; in a channel, the members
        the audience was built from could; nobody else."""
        if not slack_id:
            return False
        if slack_id == self.asker_slack_id:
            return True
        return self.audience_members is not None and slack_id in self.audience_members


class Answers:
    def __init__(self, store: Store):
        self.store = store

    def get(self, answer_id: str) -> AnswerRow | None:
        stmt = select(_Q).where(_Q.c.answer_id == answer_id)
        with self.store._read() as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        return AnswerRow(
            id=row["id"], answer_id=row["answer_id"], at=row["at"], channel=row["channel"],
            channel_type=row["channel_type"], thread_ts=row["thread_ts"],
            asker_slack_id=row["asker_slack_id"], mode=row["mode"], route=row["route"], question=row["question"],
            cited=row["cited"] or [],
            audience_members=row["audience_members"], escalated_at=row["escalated_at"],
            escalated_by=row["escalated_by"], escalation_ts=row["escalation_ts"], resolved_at=row["resolved_at"],
            resolved_by=row["resolved_by"])

    # -- feedback -----------------------------------------------------------------------------

    def vote(self, answer: AnswerRow, voter: str, vote: str, *, reason: str | None = None,
             at: datetime | None = None) -> bool:
        """Record ``voter``'s vote (the last one wins). Someone outside the answer's audience gets
        their vote counted and nothing else kept. ``reason`` None keeps an earlier reason for the
        same vote. Returns whether the voter was in the audience."""
        if vote not in VOTES:
            raise ValueError(f"unknown vote {vote!r}")
        at = at or _now()
        counted = answer.in_audience(voter)
        reason = _masked(reason.strip()[:3000]) if (reason and counted and reason.strip()) else None
        upsert = (postgresql.insert(_F) if self.store.dialect == "postgresql" else sqlite.insert(_F)).values(
            answer_id=answer.answer_id, voter=voter, vote=vote, reason=reason, in_audience=counted, at=at)
        # One statement: two clicks of one person at once leave one row (the later one). A vote
        # again without a reason (the form's own vote) keeps the reason given with the same vote.
        upsert = upsert.on_conflict_do_update(index_elements=[_F.c.answer_id, _F.c.voter], set_={
            "vote": upsert.excluded.vote, "in_audience": upsert.excluded.in_audience, "at": upsert.excluded.at,
            "reason": case((and_(upsert.excluded.reason.is_(None), _F.c.vote == upsert.excluded.vote), _F.c.reason),
                           else_=upsert.excluded.reason)})
        with self.store._write() as conn:
            conn.execute(upsert)
            self.store._event(conn, "feedback", at=at, question_id=answer.id, actor_slack_id=voter,
                              detail={"answer_id": answer.answer_id, "vote": vote, "in_audience": counted,
                                      "with_reason": reason is not None})
        return counted

    def votes(self, answer_id: str) -> list[dict[str, Any]]:
        with self.store._read() as conn:
            return [dict(r) for r in conn.execute(
                select(_F).where(_F.c.answer_id == answer_id).order_by(_F.c.at)).mappings()]

    # -- escalation ---------------------------------------------------------------------------

    def escalate(self, answer: AnswerRow, by: str, *, at: datetime | None = None) -> bool:
        """Mark the question escalated (once, or again after it was resolved); whether this call did."""
        at = at or _now()
        stmt = (update(_Q).where(_Q.c.id == answer.id)
                .where((_Q.c.escalated_at.is_(None)) | (_Q.c.resolved_at.is_not(None)))
                .values(escalated_at=at, escalated_by=by, escalation_ts=None, resolved_at=None, resolved_by=None))
        with self.store._write() as conn:
            if conn.execute(stmt).rowcount != 1:
                return False
            self.store._event(conn, "escalated", at=at, question_id=answer.id, actor_slack_id=by,
                              detail={"answer_id": answer.answer_id})
        return True

    def set_escalation_message(self, answer_id: str, ts: str) -> None:
        with self.store._write() as conn:
            conn.execute(update(_Q).where(_Q.c.answer_id == answer_id).values(escalation_ts=ts))

    def resolve(self, answer: AnswerRow, by: str, *, at: datetime | None = None) -> bool:
        """Close an open escalation; whether this call did."""
        at = at or _now()
        stmt = (update(_Q).where(_Q.c.id == answer.id).where(_Q.c.escalated_at.is_not(None))
                .where(_Q.c.resolved_at.is_(None)).values(resolved_at=at, resolved_by=by))
        with self.store._write() as conn:
            if conn.execute(stmt).rowcount != 1:
                return False
            self.store._event(conn, "resolved", at=at, question_id=answer.id, actor_slack_id=by,
                              detail={"answer_id": answer.answer_id})
        return True

    # -- for reports --------------------------------------------------------------------------

    def questions(self, since: datetime, until: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every question row with ``since <= at < until``, oldest first."""
        stmt = select(_Q).where(_Q.c.at >= since).order_by(_Q.c.at, _Q.c.id)
        if until is not None:
            stmt = stmt.where(_Q.c.at < until)
        with self.store._read() as conn:
            for row in conn.execution_options(yield_per=500).execute(stmt).mappings():
                yield dict(row)

    def feedback(self, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
        """Every vote on an answer given since ``since`` (by the answer's time), with the answer's
        cited documents and route."""
        stmt = (select(_F, _Q.c.cited, _Q.c.route, _Q.c.at.label("answered_at"), _Q.c.mode)
                .select_from(_F.join(_Q, _Q.c.answer_id == _F.c.answer_id))
                .where(_Q.c.at >= since).order_by(_F.c.at))
        if until is not None:
            stmt = stmt.where(_Q.c.at < until)
        with self.store._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    # -- for the operator console -------------------------------------------------------------

    def history(self, since: datetime, until: datetime | None = None, *, channel: str | None = None,
                modes: tuple[str, ...] | None = None, feedback: str | None = None, limit: int = 50,
                offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """One page of question rows, newest first, and how many match: ``since <= at < until``, in
        ``channel``, with a mode in ``modes``, and ``feedback`` "helpful" / "not_helpful" (at least
        one such vote) or "none" (no vote). Each row carries its ``helpful`` and ``not_helpful`` counts
        (the answer text, retrieval and audience are left to ``question_row``)."""
        votes = (select(_F.c.answer_id,
                        func.sum(case((_F.c.vote == "helpful", 1), else_=0)).label("helpful"),
                        func.sum(case((_F.c.vote == "not_helpful", 1), else_=0)).label("not_helpful"))
                 .group_by(_F.c.answer_id).subquery())
        columns = [c for c in _Q.c if c.name not in ("answer", "retrieved", "audience_members", "stages", "cited")]
        stmt = (select(*columns, func.coalesce(votes.c.helpful, 0).label("helpful"),
                       func.coalesce(votes.c.not_helpful, 0).label("not_helpful"))
                .select_from(_Q.outerjoin(votes, votes.c.answer_id == _Q.c.answer_id))
                .where(_Q.c.at >= since))
        if until is not None:
            stmt = stmt.where(_Q.c.at < until)
        if channel:
            stmt = stmt.where(_Q.c.channel == channel)
        if modes:
            stmt = stmt.where(_Q.c.mode.in_(list(modes)))
        if feedback == "helpful":
            stmt = stmt.where(votes.c.helpful > 0)
        elif feedback == "not_helpful":
            stmt = stmt.where(votes.c.not_helpful > 0)
        elif feedback == "none":
            stmt = stmt.where(votes.c.answer_id.is_(None))
        elif feedback:
            raise ValueError(f"unknown feedback filter {feedback!r}")
        with self.store._read() as conn:
            total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
            page = stmt.order_by(_Q.c.at.desc(), _Q.c.id.desc()).limit(limit).offset(offset)
            return [dict(r) for r in conn.execute(page).mappings()], int(total)

    def question_row(self, row_id: int) -> dict[str, Any] | None:
        """Everything recorded about one question (its ``questions`` row), or None."""
        with self.store._read() as conn:
            row = conn.execute(select(_Q).where(_Q.c.id == row_id)).mappings().first()
        return None if row is None else dict(row)

    def channels(self, since: datetime, until: datetime | None = None) -> list[str]:
        """The channels questions were asked in since ``since``, sorted."""
        stmt = select(_Q.c.channel).distinct().where(_Q.c.at >= since).where(_Q.c.channel.is_not(None))
        if until is not None:
            stmt = stmt.where(_Q.c.at < until)
        with self.store._read() as conn:
            return sorted(r[0] for r in conn.execute(stmt))
