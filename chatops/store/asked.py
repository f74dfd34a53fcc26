"""What the App Home and the suggested prompts read of the questions people asked: one person's own
recent questions, and the questions whose answers were voted helpful.

Read-only queries over the ``questions`` and ``feedback`` tables. Who may be shown which row is
not decided here (``usecases/home.py`` does): every row carries what that needs (the asker, the
conversation and its type, the members the answer's audience was built from).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, func, select

from chatops.store.models import Feedback, Question
from chatops.store.store import Store

_Q = cast(Table, Question.__table__)
_F = cast(Table, Feedback.__table__)


@dataclass(frozen=True)
class AskedRow:
    at: datetime
    question: str
    mode: str
    channel: str | None
    channel_type: str | None
    asker_slack_id: str | None
    answer_id: str | None
    audience_members: list[str] | None
    helpful: int
    not_helpful: int
    escalated: bool
    resolved: bool


def _votes() -> Any:
    return (select(_F.c.answer_id,
                   func.sum(case((_F.c.vote == "helpful", 1), else_=0)).label("helpful"),
                   func.sum(case((_F.c.vote == "not_helpful", 1), else_=0)).label("not_helpful"))
            .group_by(_F.c.answer_id).subquery())


def _row(r: Any) -> AskedRow:
    members = r["audience_members"]
    return AskedRow(at=r["at"], question=r["question"], mode=r["mode"], channel=r["channel"],
                    channel_type=r["channel_type"], asker_slack_id=r["asker_slack_id"], answer_id=r["answer_id"],
                    audience_members=[str(m) for m in members] if isinstance(members, list) else None,
                    helpful=int(r["helpful"] or 0), not_helpful=int(r["not_helpful"] or 0),
                    escalated=r["escalated_at"] is not None, resolved=r["resolved_at"] is not None)


class AskedRecords:
    def __init__(self, store: Store):
        self.store = store

    def _select(self) -> Any:
        votes = _votes()
        columns = [_Q.c.at, _Q.c.question, _Q.c.mode, _Q.c.channel, _Q.c.channel_type, _Q.c.asker_slack_id,
                   _Q.c.answer_id, _Q.c.audience_members, _Q.c.escalated_at, _Q.c.resolved_at]
        return (select(*columns, func.coalesce(votes.c.helpful, 0).label("helpful"),
                       func.coalesce(votes.c.not_helpful, 0).label("not_helpful"))
                .select_from(_Q.outerjoin(votes, votes.c.answer_id == _Q.c.answer_id)), votes)

    def recent(self, asker_slack_id: str, since: datetime, *, limit: int = 5) -> list[AskedRow]:
        """This person's own questions since ``since``, newest first."""
        stmt, _ = self._select()
        stmt = (stmt.where(_Q.c.asker_slack_id == asker_slack_id, _Q.c.at >= since)
                .order_by(_Q.c.at.desc(), _Q.c.id.desc()).limit(limit))
        with self.store._read() as conn:
            return [_row(r) for r in conn.execute(stmt).mappings()]

    def helpful(self, since: datetime, *, limit: int = 500) -> list[AskedRow]:
        """Questions since ``since`` whose answers got at least one helpful vote, newest first
        (at most ``limit``): the candidates for suggested prompts."""
        stmt, votes = self._select()
        stmt = (stmt.where(_Q.c.at >= since, votes.c.helpful > 0)
                .order_by(_Q.c.at.desc(), _Q.c.id.desc()).limit(limit))
        with self.store._read() as conn:
            return [_row(r) for r in conn.execute(stmt).mappings()]
