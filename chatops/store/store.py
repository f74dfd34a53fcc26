"""Durable store of questions, action proposals and the audit trail.

One ``Store`` per process (it owns a connection pool; it is thread-safe).
Works on SQLite (a file under the data folder: fine for one host) and on
PostgreSQL (several web/worker hosts). The schema is created and upgraded by
the Alembic migrations shipped in this package: ``Store.for_url(url)`` or
``store.migrate()``; no ``alembic.ini`` is involved.

Proposal state changes go through ``transition()`` only, which is a
compare-and-set: a single ``UPDATE ... WHERE id = :id AND state IN (...)``.
Two approvers clicking at the same moment, a Slack retry, or the expiry sweep
racing a click: exactly one of them changes the row and gets the proposal
back, the others get ``None``. The audit event of a change is written in the
same transaction as the change, so the trail never disagrees with the state.

**No secrets are stored.** Callers pass none (no tokens, no passwords, no
API keys in arguments, results or details). As a safety net, JSON values
(``arguments``, ``approvers``, ``result``, ``detail``, ``cited``) whose text
looks like a token (``chatops.logs.redact`` would change it) are refused with
``ValueError``; free text written by people (the question, a reason) is
stored with such tokens masked instead, so that the record is not lost.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, RowMapping, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from chatops import logs
from chatops.store.models import VERSION_TABLE, AuditEvent, Proposal as ProposalRow, Question

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# -- vocabularies ------------------------------------------------------------

STATES = ("proposed", "approved", "executing", "succeeded", "failed", "rejected", "expired")

#: The one transition table: state -> states it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"approved", "rejected", "expired"}),
    "approved": frozenset({"executing"}),
    "executing": frozenset({"succeeded", "failed"}),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "rejected": frozenset(),
    "expired": frozenset(),
}

TERMINAL_STATES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

#: States whose transition records who decided and when.
DECISION_STATES = frozenset({"approved", "rejected", "expired"})

EVENT_KINDS = frozenset({
    "question", "proposal_created", "proposal_invalid", "click_refused",
    "approved", "rejected", "expired", "executing", "succeeded", "failed",
    "feedback", "escalated", "resolved",
    "console_sign_in", "console_privacy",   # the operator console: who signed in, who changed what it shows
    "evaluation",                           # a `chatops eval answers` run's summary (the console's Evaluations)
})

#: How a question was handled: written by the model, passages quoted (no model, or over a budget),
#: a cached answer, a greeting, nothing found, refused (identity), failed.
QUESTION_MODES = frozenset({"llm", "extractive", "cached", "greeting", "no-evidence", "refused", "failed"})

#: What is known about an answer besides the question (``record_question(facts=...)``).
ANSWER_FACTS = frozenset({
    "answer_id", "thread_ts", "route", "stages", "top_similarity", "sources_count", "citations_kept", "citations_dropped",
    "prompt_tokens", "completion_tokens", "cost", "answer", "retrieved", "audience_members"})

SQLITE_BUSY_TIMEOUT_MS = 30_000

_QUESTION_FIELDS = ("at", "correlation_id", "team", "channel", "channel_type", "asker_slack_id",
                    "asker_email", "question", "mode", "cited", "audience", "hidden_documents",
                    "latency_ms")


@dataclass(frozen=True)
class Proposal:
    """A snapshot of one proposal row (a plain value, detached from the database)."""

    id: str
    action: str
    arguments: dict[str, Any]
    state: str
    requested_by_slack: str | None
    requested_by_email: str | None
    approvers: dict[str, Any]
    allow_self_approval: bool
    channel: str | None
    thread_ts: str | None
    message_ts: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by_slack: str | None
    decided_by_email: str | None
    reason: str | None
    result: dict[str, Any] | None
    correlation_id: str | None
    version: int

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


_PROPOSAL_FIELDS = tuple(f.name for f in dataclasses.fields(Proposal))


def check_transition(from_states: Iterable[str], to_state: str) -> tuple[str, ...]:
    """Validate against ``TRANSITIONS``; return the from-states as a tuple."""
    states = (from_states,) if isinstance(from_states, str) else tuple(from_states)
    if to_state not in TRANSITIONS:
        raise ValueError(f"unknown proposal state {to_state!r}")
    if not states:
        raise ValueError("from_states is empty")
    for state in states:
        if state not in TRANSITIONS:
            raise ValueError(f"unknown proposal state {state!r}")
        if to_state not in TRANSITIONS[state]:
            raise ValueError(f"illegal transition {state} -> {to_state}")
    return states


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config for the packaged migrations, built in code (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return value.astimezone(timezone.utc)


def _safe_json(name: str, value: Any) -> Any:
    """Refuse values that are not JSON or that look like they carry a token."""
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be JSON-serialisable ({exc})") from None
    if logs.redact(text) != text:
        # Never echo the value: it may be the secret.
        raise ValueError(f"refusing to store {name}: it contains something that looks like a token or secret")
    return value


def _masked(text: str | None) -> str | None:
    return None if text is None else logs.redact(text)


def _cid(given: str | None) -> str | None:
    return given or logs.correlation_id.get()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class Store:
    """Questions, proposals and audit events in SQLite or PostgreSQL."""

    def __init__(self, url: str, *, echo: bool = False):
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = parsed.database
            if not database or database == ":memory:":
                # One shared in-memory connection (tests, one thread at a time).
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                if not database.startswith("file:"):
                    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"check_same_thread": False,
                                          "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(parsed, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)

    @classmethod
    def for_url(cls, url: str, *, echo: bool = False) -> "Store":
        """Open the store and bring its schema up to date."""
        store = cls(url, echo=echo)
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------

    def migrate(self) -> None:
        """``alembic upgrade head``; a no-op when already there; safe to run concurrently.

        One transaction: on PostgreSQL an advisory lock serialises concurrent
        migrators (and the DDL is transactional); on SQLite ``BEGIN IMMEDIATE``
        does the same.
        """
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7263540917)")
            command.upgrade(alembic_config(conn), "head")

    def schema(self) -> tuple[str | None, str]:
        """(the revision the database is at, None if it has no schema yet; the revision this code
        needs), read without changing anything."""
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        if head is None:  # the package ships its migrations
            raise RuntimeError("no database migrations found")
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
        return current, head

    # -- connections ----------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(chatops_readonly=True)
            with conn.begin():
                yield conn

    # -- questions ------------------------------------------------------------

    def record_question(
        self,
        *,
        question: str,
        mode: str,
        at: datetime | None = None,
        correlation_id: str | None = None,
        team: str | None = None,
        channel: str | None = None,
        channel_type: str | None = None,
        asker_slack_id: str | None = None,
        asker_email: str | None = None,
        cited: list[dict[str, Any]] | None = None,
        audience: str | None = None,
        hidden_documents: int = 0,
        latency_ms: float | None = None,
        facts: Mapping[str, Any] | None = None,
    ) -> int:
        """Store one handled question and its "question" audit event; return its id.

        ``cited`` is a list of ``{"n", "title", "source", "url"}``. Token-like
        text in ``question`` (and in the answer) is masked. ``facts``: what is known about the
        answer (``ANSWER_FACTS``: its id, route, stage timings, tokens, cost, ...).
        """
        if mode not in QUESTION_MODES:
            raise ValueError(f"unknown question mode {mode!r} (one of {sorted(QUESTION_MODES)})")
        facts = dict(facts or {})
        unknown = set(facts) - ANSWER_FACTS
        if unknown:
            raise ValueError(f"unknown answer facts {sorted(unknown)}")
        if "answer" in facts:
            facts["answer"] = _masked(facts["answer"])
        for name in ("stages", "retrieved", "audience_members"):
            if facts.get(name) is not None:
                facts[name] = _safe_json(name, facts[name])
        at = _aware(at, "at") if at is not None else _now()
        correlation_id = _cid(correlation_id)
        row = {
            "at": at, "correlation_id": correlation_id, "team": team, "channel": channel,
            "channel_type": channel_type, "asker_slack_id": asker_slack_id,
            "asker_email": asker_email, "question": _masked(question), "mode": mode,
            "cited": _safe_json("cited", list(cited or [])), "audience": audience,
            "hidden_documents": int(hidden_documents), "latency_ms": latency_ms, **facts,
        }
        with self._write() as conn:
            qid = conn.execute(insert(Question).values(**row).returning(Question.id)).scalar_one()
            self._event(conn, "question", at=at, question_id=qid, actor_slack_id=asker_slack_id,
                        actor_email=asker_email, correlation_id=correlation_id,
                        detail={"mode": mode})
        return int(qid)

    # -- proposals ------------------------------------------------------------

    def create_proposal(
        self,
        *,
        action: str,
        arguments: dict[str, Any],
        requested_by_slack: str | None,
        requested_by_email: str | None,
        approvers: dict[str, Any],
        allow_self_approval: bool,
        channel: str | None,
        thread_ts: str | None,
        expires_at: datetime,
        correlation_id: str | None,
    ) -> Proposal:
        """Store a new proposal (state "proposed", version 1) and its "proposal_created" event.

        ``approvers`` is ``{"groups": [...], "users": [...], "requester_alone": bool}``.
        """
        now = _now()
        correlation_id = _cid(correlation_id)
        approvers = {"groups": list(approvers.get("groups", [])),
                     "users": list(approvers.get("users", [])),
                     "requester_alone": bool(approvers.get("requester_alone", False))}
        row = {
            "id": uuid.uuid4().hex, "action": action,
            "arguments": _safe_json("arguments", dict(arguments)),
            "state": "proposed", "requested_by_slack": requested_by_slack,
            "requested_by_email": requested_by_email,
            "approvers": _safe_json("approvers", approvers),
            "allow_self_approval": bool(allow_self_approval), "channel": channel,
            "thread_ts": thread_ts, "message_ts": None, "created_at": now,
            "expires_at": _aware(expires_at, "expires_at"), "decided_at": None,
            "decided_by_slack": None, "decided_by_email": None, "reason": None, "result": None,
            "correlation_id": correlation_id, "version": 1,
        }
        with self._write() as conn:
            conn.execute(insert(ProposalRow).values(**row))
            self._event(conn, "proposal_created", at=now, proposal_id=row["id"],
                        actor_slack_id=requested_by_slack, actor_email=requested_by_email,
                        correlation_id=correlation_id, detail={"action": action})
            return self._get(conn, row["id"])  # type: ignore[return-value]

    def get_proposal(self, proposal_id: str) -> Proposal | None:
        with self._read() as conn:
            return self._get(conn, proposal_id)

    def list_proposals(self, state: str | None = None, limit: int = 100) -> list[Proposal]:
        """Proposals, newest first, optionally only those in ``state``."""
        if state is not None and state not in TRANSITIONS:
            raise ValueError(f"unknown proposal state {state!r}")
        stmt = select(ProposalRow).order_by(ProposalRow.created_at.desc(), ProposalRow.id.desc())
        if state is not None:
            stmt = stmt.where(ProposalRow.state == state)
        with self._read() as conn:
            return [_to_proposal(r) for r in conn.execute(stmt.limit(limit)).mappings()]

    def set_message(self, proposal_id: str, ts: str) -> bool:
        """Remember the ts of the Slack message showing the proposal (not a transition)."""
        with self._write() as conn:
            res = conn.execute(update(ProposalRow).where(ProposalRow.id == proposal_id)
                               .values(message_ts=ts))
            return res.rowcount == 1

    def transition(
        self,
        proposal_id: str,
        to_state: str,
        *,
        from_states: Iterable[str],
        actor_slack_id: str | None = None,
        actor_email: str | None = None,
        reason: str | None = None,
        result: dict[str, Any] | None = None,
        require_unexpired_at: datetime | None = None,
        correlation_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Proposal | None:
        """Compare-and-set the state; return the updated proposal, or None if it did not apply.

        ``None`` means: no such proposal, or it is no longer in one of
        ``from_states`` (someone else got there first), or
        ``require_unexpired_at`` is given and the proposal expired at or
        before that moment. Only a change writes an audit event (kind =
        ``to_state``, detail = ``detail`` plus the new ``version`` and
        ``reason``). Raises ``ValueError`` for a transition the table does
        not allow.
        """
        states = check_transition(from_states, to_state)
        now = _now()
        values: dict[str, Any] = {"state": to_state, "version": ProposalRow.version + 1}
        if to_state in DECISION_STATES:
            values.update(decided_at=now, decided_by_slack=actor_slack_id,
                          decided_by_email=actor_email)
        if reason is not None:
            values["reason"] = _masked(reason)
        if result is not None:
            values["result"] = _safe_json("result", result)
        event_detail = _safe_json("detail", dict(detail or {}))
        stmt = (update(ProposalRow)
                .where(ProposalRow.id == proposal_id, ProposalRow.state.in_(states))
                .values(**values))
        if require_unexpired_at is not None:
            stmt = stmt.where(ProposalRow.expires_at > _aware(require_unexpired_at,
                                                              "require_unexpired_at"))
        with self._write() as conn:
            if conn.execute(stmt).rowcount != 1:
                return None
            proposal = self._get(conn, proposal_id)
            assert proposal is not None
            event_detail = {**event_detail, "version": proposal.version}
            if reason is not None:
                event_detail.setdefault("reason", proposal.reason)
            self._event(conn, to_state, at=now, proposal_id=proposal_id,
                        actor_slack_id=actor_slack_id, actor_email=actor_email,
                        correlation_id=_cid(correlation_id) or proposal.correlation_id,
                        detail=event_detail)
            return proposal

    # -- audit ----------------------------------------------------------------

    def audit(
        self,
        kind: str,
        *,
        proposal_id: str | None = None,
        question_id: int | None = None,
        actor_slack_id: str | None = None,
        actor_email: str | None = None,
        correlation_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record an event without a state change (e.g. click_refused, proposal_invalid)."""
        with self._write() as conn:
            return self._event(conn, kind, at=_now(), proposal_id=proposal_id,
                               question_id=question_id, actor_slack_id=actor_slack_id,
                               actor_email=actor_email, correlation_id=_cid(correlation_id),
                               detail=detail)

    def events(self, proposal_id: str) -> list[dict[str, Any]]:
        """The audit events of one proposal, oldest first (``at`` as aware UTC datetimes)."""
        stmt = (select(AuditEvent).where(AuditEvent.proposal_id == proposal_id)
                .order_by(AuditEvent.at, AuditEvent.id))
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def latest_of_kind(self, kind: str, limit: int = 500) -> list[dict[str, Any]]:
        """The newest audit events of one kind (e.g. ``evaluation``), newest first."""
        stmt = (select(AuditEvent).where(AuditEvent.kind == kind)
                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
        with self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def export(self, since: datetime, until: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every audit event with ``since <= at < until``, in time order, as JSON-ready dicts.

        Timestamps are ISO-8601 UTC strings ("...Z"). Each event carries
        ``question`` (the question row, for events about a question) and
        ``proposal`` (the proposal's action, arguments and *current* state,
        for events about a proposal), else None. One line each of
        ``chatops audit export --format jsonl``.
        """
        since = _aware(since, "since")
        until = _aware(until, "until") if until is not None else None
        return self._export(since, until)

    def _export(self, since: datetime, until: datetime | None) -> Iterator[dict[str, Any]]:
        q, p = Question.__table__, ProposalRow.__table__
        stmt = (
            select(AuditEvent.__table__,
                   *[c.label(f"q_{c.name}") for c in q.c],
                   p.c.action.label("p_action"), p.c.arguments.label("p_arguments"),
                   p.c.state.label("p_state"))
            .select_from(AuditEvent.__table__
                         .outerjoin(q, q.c.id == AuditEvent.question_id)
                         .outerjoin(p, p.c.id == AuditEvent.proposal_id))
            .where(AuditEvent.at >= since)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
        if until is not None:
            stmt = stmt.where(AuditEvent.at < until)
        with self._read() as conn:
            for row in conn.execution_options(yield_per=500).execute(stmt).mappings():
                yield _export_row(row)

    # -- internals ------------------------------------------------------------

    @staticmethod
    def _get(conn: Connection, proposal_id: str) -> Proposal | None:
        row = conn.execute(select(ProposalRow).where(ProposalRow.id == proposal_id)).mappings().first()
        return None if row is None else _to_proposal(row)

    @staticmethod
    def _event(conn: Connection, kind: str, *, at: datetime, proposal_id: str | None = None,
               question_id: int | None = None, actor_slack_id: str | None = None,
               actor_email: str | None = None, correlation_id: str | None = None,
               detail: dict[str, Any] | None = None) -> int:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown audit event kind {kind!r}")
        stmt = insert(AuditEvent).values(
            at=at, kind=kind, proposal_id=proposal_id, question_id=question_id,
            actor_slack_id=actor_slack_id, actor_email=actor_email,
            correlation_id=correlation_id, detail=_safe_json("detail", dict(detail or {})),
        ).returning(AuditEvent.id)
        return int(conn.execute(stmt).scalar_one())


def _to_proposal(row: RowMapping) -> Proposal:
    return Proposal(**{name: row[name] for name in _PROPOSAL_FIELDS})


def _export_row(row: RowMapping) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"], "at": _iso(row["at"]), "kind": row["kind"],
        "proposal_id": row["proposal_id"], "question_id": row["question_id"],
        "actor_slack_id": row["actor_slack_id"], "actor_email": row["actor_email"],
        "correlation_id": row["correlation_id"], "detail": row["detail"],
        "question": None, "proposal": None,
    }
    if row["question_id"] is not None and row["q_id"] is not None:
        question = {name: row[f"q_{name}"] for name in ("id", *_QUESTION_FIELDS)}
        question["at"] = _iso(question["at"])
        out["question"] = question
    if row["proposal_id"] is not None and row["p_state"] is not None:
        out["proposal"] = {"action": row["p_action"], "arguments": row["p_arguments"],
                           "state": row["p_state"]}
    return out


def _enable_wal(cur: Any) -> None:
    """Switch to WAL. Switching needs an exclusive lock and SQLite answers "database is locked"
    at once, without its busy handler, when another connection is switching the same fresh file
    (seen with four processes migrating a new database together): retry for the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _sqlite_setup(engine: Engine) -> None:
    """WAL + busy timeout on every connection; real transactions (BEGIN IMMEDIATE for writes).

    pysqlite's own transaction handling is switched off (it does not begin a
    transaction before DDL or SELECT); we emit BEGIN ourselves. Writers take
    the write lock up front, so they wait (busy_timeout) instead of failing
    with "database is locked" when a read lock cannot be upgraded.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cur)
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("chatops_readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
