"""Live tools' records in the store's database: pins, calls, sealed per-person credentials.

- **Pins**: each allowed function of a tool as an operator approved it (its definition and the
  hash of it). A function whose live definition hashes differently is not offered.
- **Calls**: one row per tool call made for a person (the audit trail of live data).
- **Tokens**: a person's credential for a tool, sealed by the caller (``usecases/tool_auth.py``
  encrypts before it reaches here), keyed by the tool and the person's stable id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update

from chatops.store.models import ToolCall, ToolPin, ToolToken
from chatops.store.store import Store

_PINS = cast(Table, ToolPin.__table__)
_CALLS = cast(Table, ToolCall.__table__)
_TOKENS = cast(Table, ToolToken.__table__)

OUTCOMES = ("ok", "error", "timeout", "refused", "not_connected", "skipped")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Pin:
    tool: str
    function: str
    fingerprint: str
    definition: dict[str, Any]
    approved_by: str | None
    approved_at: datetime


@dataclass(frozen=True)
class CallRow:
    id: int
    at: datetime
    correlation_id: str | None
    answer_id: str | None
    person_email: str | None
    person_slack_id: str | None
    tool: str
    function: str
    arguments: dict[str, Any]
    outcome: str
    duration_ms: float | None
    result_chars: int | None
    detail: str | None


@dataclass(frozen=True)
class SealedToken:
    sealed: str
    expires_at: datetime | None
    updated_at: datetime


class ToolRecords:
    """Pins, calls and sealed tokens over a :class:`~chatops.store.Store`'s database."""

    def __init__(self, store: Store):
        self._store = store

    # -- pins ---------------------------------------------------------------------------

    def pin(self, tool: str, definitions: dict[str, tuple[str, dict[str, Any]]], approved_by: str | None) -> None:
        """Replace the tool's pins with these ``{function: (fingerprint, definition)}``, at once."""
        at = _now()
        with self._store._write() as conn:
            conn.execute(delete(_PINS).where(_PINS.c.tool == tool))
            for function, (fingerprint, definition) in definitions.items():
                conn.execute(insert(_PINS).values(tool=tool, function=function, fingerprint=fingerprint,
                                                  definition=definition, approved_by=approved_by, approved_at=at))

    def pins(self, tool: str | None = None) -> list[Pin]:
        query = select(_PINS).order_by(_PINS.c.tool, _PINS.c.function)
        if tool is not None:
            query = query.where(_PINS.c.tool == tool)
        with self._store._read() as conn:
            return [Pin(**dict(r)) for r in conn.execute(query).mappings()]

    # -- calls --------------------------------------------------------------------------

    def record_call(self, *, tool: str, function: str, arguments: dict[str, Any], outcome: str,
                    duration_ms: float | None, result_chars: int | None, person_email: str | None,
                    person_slack_id: str | None = None, correlation_id: str | None = None,
                    answer_id: str | None = None, detail: str | None = None) -> int:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown tool call outcome {outcome!r}")
        with self._store._write() as conn:
            result = conn.execute(insert(_CALLS).values(
                at=_now(), tool=tool, function=function, arguments=arguments, outcome=outcome,
                duration_ms=duration_ms, result_chars=result_chars, person_email=person_email,
                person_slack_id=person_slack_id, correlation_id=correlation_id, answer_id=answer_id,
                detail=(detail or None) and detail[:2000]))
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def link_calls(self, call_ids: list[int], *, answer_id: str | None, correlation_id: str | None) -> None:
        """The answer these calls were made for, once it has an id."""
        if not call_ids:
            return
        with self._store._write() as conn:
            conn.execute(update(_CALLS).where(_CALLS.c.id.in_(call_ids))
                         .values(answer_id=answer_id, correlation_id=correlation_id))

    def calls(self, *, answer_id: str | None = None, correlation_id: str | None = None,
              since: datetime | None = None, limit: int = 200) -> list[CallRow]:
        query = select(_CALLS).order_by(_CALLS.c.id.desc()).limit(limit)
        if answer_id is not None:
            query = query.where(_CALLS.c.answer_id == answer_id)
        if correlation_id is not None:
            query = query.where(_CALLS.c.correlation_id == correlation_id)
        if since is not None:
            query = query.where(_CALLS.c.at >= since)
        with self._store._read() as conn:
            return [CallRow(**dict(r)) for r in conn.execute(query).mappings()]

    def call_counts(self, since: datetime, until: datetime | None = None) -> dict[tuple[str, str], int]:
        """``{(tool, outcome): calls}`` since then (the report)."""
        query = select(_CALLS.c.tool, _CALLS.c.outcome, func.count()).where(_CALLS.c.at >= since)
        if until is not None:
            query = query.where(_CALLS.c.at < until)
        with self._store._read() as conn:
            rows = conn.execute(query.group_by(_CALLS.c.tool, _CALLS.c.outcome)).all()
        return {(str(t), str(o)): int(n) for t, o, n in rows}

    # -- sealed tokens ------------------------------------------------------------------

    def put_token(self, tool: str, person_id: str, sealed: str, expires_at: datetime | None) -> None:
        with self._store._write() as conn:
            conn.execute(delete(_TOKENS).where(_TOKENS.c.tool == tool, _TOKENS.c.person_id == person_id))
            conn.execute(insert(_TOKENS).values(tool=tool, person_id=person_id, sealed=sealed,
                                                expires_at=expires_at, updated_at=_now()))

    def token(self, tool: str, person_id: str) -> SealedToken | None:
        with self._store._read() as conn:
            row = conn.execute(select(_TOKENS).where(_TOKENS.c.tool == tool, _TOKENS.c.person_id == person_id)
                               ).mappings().first()
        return None if row is None else SealedToken(row["sealed"], row["expires_at"], row["updated_at"])

    def drop_token(self, tool: str, person_id: str) -> bool:
        with self._store._write() as conn:
            result = conn.execute(delete(_TOKENS).where(_TOKENS.c.tool == tool, _TOKENS.c.person_id == person_id))
            return bool(result.rowcount)

    def connected(self, person_id: str) -> list[str]:
        """The tools this person has a credential for."""
        with self._store._read() as conn:
            return sorted(str(t) for t in conn.execute(
                select(_TOKENS.c.tool).where(_TOKENS.c.person_id == person_id)).scalars())
