"""SQLAlchemy models of the durable records: questions, proposals, audit events.

These are the *current* shape of the tables; the schema itself is created and
changed only by the Alembic migrations in ``chatops/store/migrations`` (never
``metadata.create_all``), so every change here needs a new migration.

Datetimes are timezone-aware UTC everywhere. ``UTCDateTime`` refuses naive
values on the way in and makes sure values read back are aware UTC on every
backend (SQLite has no time zone type and returns naive values; PostgreSQL
returns them in the session's time zone).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


# The migrations' own version table, so the store can share a database with other apps.
VERSION_TABLE = "chatops_alembic_version"


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that only takes and only gives aware UTC values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError("naive datetime: pass a timezone-aware value (e.g. datetime.now(timezone.utc))")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # SQLite stores text; a fixed UTC format without offset keeps
            # string comparison (expires_at > :now, at >= :since) correct.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Question(Base):
    """One question the bot handled (or refused), and what is known about its answer."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    channel_type: Mapped[str | None] = mapped_column(String(16))
    asker_slack_id: Mapped[str | None] = mapped_column(String(32))
    asker_email: Mapped[str | None] = mapped_column(String(320))
    question: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    cited: Mapped[list[Any]] = mapped_column(JSON)
    audience: Mapped[str | None] = mapped_column(String(200))
    hidden_documents: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # The answer's public id: what its Slack buttons carry (nothing else about it is in them).
    answer_id: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))       # the Slack thread it was asked in
    route: Mapped[str | None] = mapped_column(String(100))         # the model that wrote it
    stages: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))   # {stage: ms}
    top_similarity: Mapped[float | None] = mapped_column(Float)
    sources_count: Mapped[int | None] = mapped_column(Integer)     # documents given to the model
    citations_kept: Mapped[int | None] = mapped_column(Integer)
    citations_dropped: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[float | None] = mapped_column(Float)              # in the price table's currency
    answer: Mapped[str | None] = mapped_column(Text)
    # [{"doc_id", "source", "title", "score"}] best first: what retrieval found for this audience
    retrieved: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    audience_members: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))  # Slack ids
    escalated_at: Mapped[datetime | None]
    escalated_by: Mapped[str | None] = mapped_column(String(32))
    escalation_ts: Mapped[str | None] = mapped_column(String(32))  # the "needs a human" message
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_questions_answer_id", "answer_id", unique=True),
        Index("ix_questions_at", "at"),
    )


class Feedback(Base):
    """One person's verdict on one answer: the last click wins."""

    __tablename__ = "feedback"

    answer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    voter: Mapped[str] = mapped_column(String(32), primary_key=True)
    vote: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    in_audience: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime]

    __table_args__ = (Index("ix_feedback_at", "at"),)


class Proposal(Base):
    """An action the model proposed; a person approves or rejects it in Slack."""

    __tablename__ = "proposals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    requested_by_slack: Mapped[str | None] = mapped_column(String(32))
    requested_by_email: Mapped[str | None] = mapped_column(String(320))
    approvers: Mapped[dict[str, Any]] = mapped_column(JSON)
    allow_self_approval: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str | None] = mapped_column(String(32))  # None: proposed outside Slack (CLI)
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by_slack: Mapped[str | None] = mapped_column(String(32))
    decided_by_email: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_proposals_state", "state"),
        Index("ix_proposals_created_at", "created_at"),
    )


class AuditEvent(Base):
    """Append-only trail: one row per thing that happened."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    proposal_id: Mapped[str | None] = mapped_column(String(32))
    question_id: Mapped[int | None] = mapped_column(Integer)
    actor_slack_id: Mapped[str | None] = mapped_column(String(32))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_proposal_id", "proposal_id"),
    )


# -- document sources (usecases/sync.py) ---------------------------------------------------


class SourceState(Base):
    """One configured source's sync state: what finished when, what runs now, the last error."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(500))        # the ``source`` of its chunks
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    last_incremental_at: Mapped[datetime | None]   # start of the last complete content sync
    last_full_at: Mapped[datetime | None]          # start of the last complete full reconciliation
    acl_watermark: Mapped[datetime | None]         # start of the last complete permission pass
    changes_started_at: Mapped[datetime | None]    # a content sync under way since
    full_started_at: Mapped[datetime | None]       # a full reconciliation under way since
    perm_started_at: Mapped[datetime | None]       # a permission pass under way since
    perm_marker: Mapped[str | None] = mapped_column(Text)   # the pass has done items up to here
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    last_error_pass: Mapped[str | None] = mapped_column(String(16))   # "content" or "permissions"
    throttled_until: Mapped[datetime | None]       # the source asked us to wait until then
    # what the last permission pass found that grants nothing, as JSON {"what": count}
    findings: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class SourceScope(Base):
    """One part of a source listed on its own (a drive): its cursor and the listing under way."""

    __tablename__ = "source_scopes"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)       # where the next incremental sync starts
    run_cursor: Mapped[str | None] = mapped_column(Text)   # the listing under way goes on here
    run_mode: Mapped[str | None] = mapped_column(String(16))  # "full" (then pruned) or "changes"
    run_id: Mapped[str | None] = mapped_column(String(32))


class SourceItem(Base):
    """A document or folder of a source as last synced."""

    __tablename__ = "source_items"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200))
    parent: Mapped[str | None] = mapped_column(String(500))
    folder: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    # indexed | hidden (no one may read it) | unreadable (its permissions could not be read:
    # hidden too) | skipped (not indexable: ``reason``) | folder
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    acl: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    pending: Mapped[str | None] = mapped_column(String(16))  # "acl" or "refresh": re-read soon
    seen_run: Mapped[str | None] = mapped_column(String(32))
    acl_read_at: Mapped[datetime | None]           # when its permissions were last read
    # Tries at reading ``tried_version`` that did not succeed, the one under way included: recorded
    # before the file is read (a worker killed reading it still counts); two and it is skipped.
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tried_version: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_source_items_scope", "source", "scope"),
        Index("ix_source_items_parent", "source", "parent"),
        Index("ix_source_items_pending", "source", "pending"),
    )


class SourceGroupMember(Base):
    """A member of a source's own group (a SharePoint site group): a person or an Entra group."""

    __tablename__ = "source_group_members"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    token: Mapped[str] = mapped_column(String(300), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)      # user | group | everyone
    member: Mapped[str] = mapped_column(String(320), primary_key=True)  # email | group id

    __table_args__ = (Index("ix_source_group_members_member", "member"),)


# -- live tools (usecases/tools.py) ---------------------------------------------------------


class ToolPin(Base):
    """One function of a configured tool as an operator approved it (``chatops tools approve``)."""

    __tablename__ = "tool_pins"

    tool: Mapped[str] = mapped_column(String(64), primary_key=True)
    function: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    approved_by: Mapped[str | None] = mapped_column(String(320))
    approved_at: Mapped[datetime]


class ToolCall(Base):
    """One call of a tool, made for a person: what was asked, how long it took, how it ended."""

    __tablename__ = "tool_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    answer_id: Mapped[str | None] = mapped_column(String(32))
    person_email: Mapped[str | None] = mapped_column(String(320))
    person_slack_id: Mapped[str | None] = mapped_column(String(32))
    tool: Mapped[str] = mapped_column(String(64))
    function: Mapped[str] = mapped_column(String(128))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON)
    # ok | error | timeout | refused | not_connected | skipped
    outcome: Mapped[str] = mapped_column(String(16))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    result_chars: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_tool_calls_at", "at"),
        Index("ix_tool_calls_answer_id", "answer_id"),
        Index("ix_tool_calls_correlation_id", "correlation_id"),
    )


class ToolToken(Base):
    """A person's credential for a tool with per-person authorization, encrypted (never in clear)."""

    __tablename__ = "tool_tokens"

    tool: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(320), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
