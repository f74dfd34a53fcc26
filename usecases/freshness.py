"""How fresh each configured source is, and which sources' restricted documents to withhold.

A source's permissions are trusted for ``max_acl_age`` seconds after the start of its last
complete permission pass (its ACL watermark). Past that - the pass keeps failing, the
scheduler is down - its restricted documents are withheld from every answer until a pass
completes again; its public documents stay. ``chatops sources status``, the logs and the
``chatops_source_acl_stale`` gauge say so.
"""

from __future__ import annotations

import json

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from chatops import metrics
from chatops.store.sources import SourceStates

log = logging.getLogger(__name__)


def _age(now: datetime, when: datetime | None) -> float | None:
    return None if when is None else round((now - when).total_seconds(), 1)


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    source_id: str
    documents: int                 # listed documents in the index (readable or not)
    hidden: int                    # documents nobody may read (no grant, or unreadable permissions)
    unreadable: int                # documents whose permissions could not be read
    skipped: int
    failed: int                    # skipped after their reading failed twice
    retrying: int                  # reading them failed once: tried again at the next sync
    pending: int                   # waiting to have their permissions or links re-read
    last_incremental_at: datetime | None
    last_full_at: datetime | None
    acl_watermark: datetime | None
    running: bool
    last_error: str | None
    throttled_until: datetime | None
    findings: dict[str, int]       # what the last permission pass found that grants nothing
    stale: bool                    # past max_acl_age: restricted documents withheld
    synced: bool                   # has a sync state at all

    def as_json(self, now: datetime) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None
        return {"name": self.name, "kind": self.kind, "source_id": self.source_id, "documents": self.documents,
                "hidden": self.hidden, "unreadable": self.unreadable, "skipped": self.skipped,
                "failed": self.failed, "retrying": self.retrying, "pending": self.pending, "last_incremental_at": iso(self.last_incremental_at),
                "last_incremental_age_s": _age(now, self.last_incremental_at),
                "last_full_at": iso(self.last_full_at), "last_full_age_s": _age(now, self.last_full_at),
                "acl_watermark": iso(self.acl_watermark), "acl_age_s": _age(now, self.acl_watermark),
                "running": self.running, "last_error": self.last_error,
                "throttled_until": iso(self.throttled_until), "findings": self.findings, "stale": self.stale,
                "synced": self.synced}


def statuses(states: SourceStates, configured: dict[str, tuple[str, str]], *, max_acl_age: float,
             now: datetime | None = None) -> list[SourceStatus]:
    """Every configured source ({name: (kind, source id)}), in name order."""
    now = now or datetime.now(timezone.utc)
    rows = {r.name: r for r in states.all()}
    out = []
    for name, (kind, source_id) in sorted(configured.items()):
        row = rows.get(name)
        counts = states.counts(name) if row else {}
        indexed, hidden, unreadable = (counts.get(k, 0) for k in ("indexed", "hidden", "unreadable"))
        out.append(SourceStatus(
            name=name, kind=kind, source_id=source_id, documents=indexed + hidden + unreadable,
            hidden=hidden + unreadable, unreadable=unreadable, skipped=counts.get("skipped", 0) - counts.get("retrying", 0),
            failed=counts.get("failed", 0), retrying=counts.get("retrying", 0), pending=counts.get("pending", 0),
            last_incremental_at=row.last_incremental_at if row else None,
            last_full_at=row.last_full_at if row else None, acl_watermark=row.acl_watermark if row else None,
            running=bool(row and row.lease_until and row.lease_until > now),
            last_error=row.last_error if row else None, throttled_until=row.throttled_until if row else None,
            findings=_findings(row.findings if row else None),
            stale=bool(row and row.acl_stale(now, max_acl_age)), synced=row is not None))
    return out


class Withheld:
    """The index source ids whose restricted documents answers must not use now; read from the
    store at most every ``ttl`` seconds. If the store cannot be read, every configured source is
    withheld (fail closed) until it can."""

    def __init__(self, states: SourceStates, configured: dict[str, tuple[str, str]], *, max_acl_age: float,
                 ttl: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._states = states
        self._configured = configured
        self._max_age = max_acl_age
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value: frozenset[str] = frozenset()
        self._at: float | None = None

    def __call__(self) -> frozenset[str]:
        if not self._configured:
            return frozenset()
        with self._lock:
            if self._at is not None and self._clock() - self._at < self._ttl:
                return self._value
            self._value = self._read()
            self._at = self._clock()
            return self._value

    def _read(self) -> frozenset[str]:
        now = datetime.now(timezone.utc)
        try:
            rows = {r.name: r for r in self._states.all()}
        except Exception as exc:  # noqa: BLE001 - unknown freshness: trust no source's restrictions
            log.error("source state unreadable; withholding every source's restricted documents",
                      extra={"error": type(exc).__name__})
            return frozenset(sid for _, sid in self._configured.values())
        stale = set()
        for name, (_, source_id) in self._configured.items():
            row = rows.get(name)
            if row is None:
                continue   # never synced: nothing of it in the index through the framework
            age = row.acl_age(now)
            if age is not None:
                metrics.SOURCE_ACL_AGE.labels(source=name).set(age)
            is_stale = row.acl_stale(now, self._max_age)
            metrics.SOURCE_STALE.labels(source=name).set(1 if is_stale else 0)
            if is_stale:
                stale.add(source_id)
                log.warning("source permissions are stale; its restricted documents are withheld",
                            extra={"source": name, "acl_age_s": age, "max_acl_age_s": self._max_age})
        return frozenset(stale)


def _findings(text: str | None) -> dict[str, int]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int) and v} if isinstance(data, dict) else {}
