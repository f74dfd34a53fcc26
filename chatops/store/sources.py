"""The sync state of document sources, in the store's database (SQLite or PostgreSQL).

Per source: what finished when (the last content sync, full reconciliation and permission
pass; the start of the last complete permission pass is the **ACL watermark**), what is
under way, the last error, and a lease so that one sync per source runs at a time. Per
scope (a SharePoint drive): the cursor the next incremental sync starts from, and the
listing under way. Per item: its version, title, link, folder, ACL and state, so a listing
knows what changed without asking the index. Per source group: its members.

Writes that belong together are one transaction (a group's members are replaced at once: a
membership change is never half applied).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
import builtins
from typing import Any, Iterable, Sequence, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from chatops.access import Acl
from chatops.store.models import SourceGroupMember, SourceItem, SourceScope, SourceState
from chatops.store.store import Store

# Declarative classes type __table__ as any FromClause; these are their tables.
_STATE = cast(Table, SourceState.__table__)
_SCOPES = cast(Table, SourceScope.__table__)
_ITEMS = cast(Table, SourceItem.__table__)
_MEMBERS = cast(Table, SourceGroupMember.__table__)
_CHUNK = 500   # ids per IN (...) clause
_NEW_ITEM = {"doc_id", "scope", "folder", "version", "title", "state"}   # what a new item needs
_ITEM_KEY = (_ITEMS.c.source == bindparam("k_source"), _ITEMS.c.doc_id == bindparam("k_doc_id"))
_SET_TRIES = update(_ITEMS).where(*_ITEM_KEY).values(tries=bindparam("v_tries"), tried_version=bindparam("v_version"),
                                                     reason=bindparam("v_reason"))
_CLEAR_TRIES = update(_ITEMS).where(*_ITEM_KEY).values(tries=bindparam("v_tries"))


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SourceRow:
    name: str
    source_id: str
    kind: str
    created_at: datetime
    last_incremental_at: datetime | None
    last_full_at: datetime | None
    acl_watermark: datetime | None
    changes_started_at: datetime | None
    full_started_at: datetime | None
    perm_started_at: datetime | None
    perm_marker: str | None
    last_error: str | None
    last_error_at: datetime | None
    last_error_pass: str | None      # "content" or "permissions": which kind of pass recorded it
    throttled_until: datetime | None
    findings: str | None
    lease_owner: str | None
    lease_until: datetime | None

    def acl_age(self, now: datetime) -> float | None:
        """Seconds since the ACL watermark (None: no complete permission pass yet)."""
        return None if self.acl_watermark is None else (now - self.acl_watermark).total_seconds()

    def acl_stale(self, now: datetime, max_age: float) -> bool:
        """The permissions are too old to trust: the last complete pass began more than
        ``max_age`` seconds ago, or none has completed in ``max_age`` since the source appeared."""
        since = self.acl_watermark or self.created_at
        return (now - since).total_seconds() > max_age


@dataclass(frozen=True)
class ScopeRow:
    scope: str
    cursor: str | None
    run_cursor: str | None
    run_mode: str | None
    run_id: str | None


@dataclass(frozen=True)
class ItemRow:
    doc_id: str
    scope: str
    parent: str | None
    folder: bool
    version: str
    title: str
    url: str | None
    state: str
    reason: str | None
    acl: Acl | None
    pending: str | None
    seen_run: str | None
    acl_read_at: datetime | None
    tries: int = 0                   # tries at reading ``tried_version`` that did not succeed
    tried_version: str | None = None


def _source_row(r: Any) -> SourceRow:
    return SourceRow(**{k: r[k] for k in SourceRow.__dataclass_fields__})


def _item_row(r: Any) -> ItemRow:
    acl = Acl.from_payload(r["acl"]) if r["acl"] is not None else None
    return ItemRow(**{k: r[k] for k in ItemRow.__dataclass_fields__ if k != "acl"}, acl=acl)


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    values = list(values)
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


class SourceStates:
    """Source sync state over a :class:`~chatops.store.Store`'s database."""

    def __init__(self, store: Store):
        self._store = store
        self._dialect = store.dialect

    # -- sources ------------------------------------------------------------------------

    def ensure(self, name: str, source_id: str, kind: str) -> SourceRow:
        """The source's row, created on first use; a changed ``source_id``/``kind`` is recorded."""
        with self._store._write() as conn:
            row = conn.execute(select(_STATE).where(_STATE.c.name == name)).mappings().first()
            if row is None:
                conn.execute(insert(_STATE).values(name=name, source_id=source_id, kind=kind,
                                                   created_at=_now()))
            elif row["source_id"] != source_id or row["kind"] != kind:
                conn.execute(update(_STATE).where(_STATE.c.name == name)
                             .values(source_id=source_id, kind=kind))
            return _source_row(conn.execute(select(_STATE).where(_STATE.c.name == name)).mappings().one())

    def get(self, name: str) -> SourceRow | None:
        with self._store._read() as conn:
            row = conn.execute(select(_STATE).where(_STATE.c.name == name)).mappings().first()
            return _source_row(row) if row else None

    def all(self) -> list[SourceRow]:
        with self._store._read() as conn:
            return [_source_row(r) for r in conn.execute(select(_STATE).order_by(_STATE.c.name)).mappings()]

    def set(self, name: str, **fields: Any) -> None:
        unknown = set(fields) - set(SourceRow.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown source state field(s): {', '.join(sorted(unknown))}")
        with self._store._write() as conn:
            conn.execute(update(_STATE).where(_STATE.c.name == name).values(**fields))

    def take_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Hold the source's lease for ``ttl`` seconds (compare-and-set): False if another
        owner holds an unexpired one."""
        now = _now()
        with self._store._write() as conn:
            done = conn.execute(
                update(_STATE).where(_STATE.c.name == name, or_(
                    _STATE.c.lease_owner.is_(None), _STATE.c.lease_owner == owner,
                    _STATE.c.lease_until.is_(None), _STATE.c.lease_until < now))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=ttl)))
            return done.rowcount == 1

    def release_lease(self, name: str, owner: str) -> None:
        with self._store._write() as conn:
            conn.execute(update(_STATE).where(_STATE.c.name == name, _STATE.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))

    # -- scopes -------------------------------------------------------------------------

    def scopes(self, name: str) -> dict[str, ScopeRow]:
        with self._store._read() as conn:
            rows = conn.execute(select(_SCOPES).where(_SCOPES.c.source == name)).mappings()
            return {r["scope"]: ScopeRow(r["scope"], r["cursor"], r["run_cursor"], r["run_mode"], r["run_id"])
                    for r in rows}

    def set_scope(self, name: str, scope: str, **fields: Any) -> None:
        values: dict[str, Any] = {"cursor": None, "run_cursor": None, "run_mode": None, "run_id": None}
        current = self.scopes(name).get(scope)
        if current is not None:
            values.update(cursor=current.cursor, run_cursor=current.run_cursor,
                          run_mode=current.run_mode, run_id=current.run_id)
        values.update(fields)
        self._upsert(_SCOPES, [{"source": name, "scope": scope, **values}], ("source", "scope"))

    def drop_scope(self, name: str, scope: str) -> None:
        with self._store._write() as conn:
            conn.execute(delete(_SCOPES).where(_SCOPES.c.source == name, _SCOPES.c.scope == scope))

    # -- items --------------------------------------------------------------------------

    def items(self, name: str, doc_ids: Iterable[str]) -> dict[str, ItemRow]:
        out: dict[str, ItemRow] = {}
        with self._store._read() as conn:
            for part in _chunks(sorted(set(doc_ids))):
                for r in conn.execute(select(_ITEMS).where(_ITEMS.c.source == name,
                                                          _ITEMS.c.doc_id.in_(part))).mappings():
                    out[r["doc_id"]] = _item_row(r)
        return out

    def put_items(self, name: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert items or update the fields given (each a dict of :class:`ItemRow` fields, with
        at least doc_id, scope, folder, version, title and state for a new one; ``acl`` an Acl)."""
        if not rows:
            return
        by_fields: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            value = {"source": name, **row}
            if isinstance(value.get("acl"), Acl):
                value["acl"] = value["acl"].to_payload()
            by_fields[tuple(sorted(value))].append(value)
        for fields, values in by_fields.items():
            if _NEW_ITEM <= set(fields):
                self._upsert(_ITEMS, values, ("source", "doc_id"))
                continue
            # Some fields of items already there (an INSERT would need them all).
            changed = [f for f in fields if f not in ("source", "doc_id")]
            stmt = (update(_ITEMS).where(_ITEMS.c.source == bindparam("k_source"),
                                         _ITEMS.c.doc_id == bindparam("k_doc_id"))
                    .values({f: bindparam(f"v_{f}") for f in changed}))
            with self._store._write() as conn:
                conn.execute(stmt, [{"k_source": v["source"], "k_doc_id": v["doc_id"],
                                     **{f"v_{f}": v[f] for f in changed}} for v in values])

    def delete_items(self, name: str, doc_ids: Iterable[str]) -> None:
        with self._store._write() as conn:
            for part in _chunks(sorted(set(doc_ids))):
                conn.execute(delete(_ITEMS).where(_ITEMS.c.source == name, _ITEMS.c.doc_id.in_(part)))

    def mark_seen(self, name: str, doc_ids: Iterable[str], run_id: str) -> None:
        with self._store._write() as conn:
            for part in _chunks(sorted(set(doc_ids))):
                conn.execute(update(_ITEMS).where(_ITEMS.c.source == name, _ITEMS.c.doc_id.in_(part))
                             .values(seen_run=run_id))

    def unseen(self, name: str, scope: str, run_id: str) -> list[ItemRow]:
        """Items of the scope a complete listing (``run_id``) did not list: gone."""
        with self._store._read() as conn:
            rows = conn.execute(select(_ITEMS).where(
                _ITEMS.c.source == name, _ITEMS.c.scope == scope,
                or_(_ITEMS.c.seen_run.is_(None), _ITEMS.c.seen_run != run_id))).mappings()
            return [_item_row(r) for r in rows]

    def outside(self, name: str, scopes: Iterable[str]) -> list[ItemRow]:
        """Items of scopes the source no longer has (a drive removed or no longer configured)."""
        with self._store._read() as conn:
            rows = conn.execute(select(_ITEMS).where(_ITEMS.c.source == name,
                                                     _ITEMS.c.scope.not_in(list(scopes)))).mappings()
            return [_item_row(r) for r in rows]

    def descendants(self, name: str, folder_ids: Iterable[str]) -> list[ItemRow]:
        """Everything below these folders, at any depth."""
        found: dict[str, ItemRow] = {}
        frontier = sorted(set(folder_ids))
        with self._store._read() as conn:
            while frontier:
                nxt: list[str] = []
                for part in _chunks(frontier):
                    for r in conn.execute(select(_ITEMS).where(_ITEMS.c.source == name,
                                                              _ITEMS.c.parent.in_(part))).mappings():
                        if r["doc_id"] not in found:
                            found[r["doc_id"]] = _item_row(r)
                            if r["folder"]:
                                nxt.append(r["doc_id"])
                frontier = nxt
        return list(found.values())

    def set_pending(self, name: str, doc_ids: Iterable[str], pending: str | None) -> None:
        """Flag items to be re-read ("refresh" also re-reads permissions); never weakens a
        "refresh" to "acl"."""
        with self._store._write() as conn:
            for part in _chunks(sorted(set(doc_ids))):
                where = [_ITEMS.c.source == name, _ITEMS.c.doc_id.in_(part)]
                if pending == "acl":
                    where.append(or_(_ITEMS.c.pending.is_(None), _ITEMS.c.pending != "refresh"))
                conn.execute(update(_ITEMS).where(*where).values(pending=pending))

    def pending(self, name: str, limit: int) -> list[ItemRow]:
        with self._store._read() as conn:
            rows = conn.execute(select(_ITEMS).where(_ITEMS.c.source == name, _ITEMS.c.pending.is_not(None))
                                .order_by(_ITEMS.c.doc_id).limit(limit)).mappings()
            return [_item_row(r) for r in rows]

    def documents_after(self, name: str, marker: str, limit: int,
                        read_before: datetime | None = None) -> tuple[list[ItemRow], str | None]:
        """The next documents (not folders, not skipped) in doc_id order after ``marker``, leaving
        out those whose permissions were read at ``read_before`` or later; and the marker to go on
        from (None: the end)."""
        with self._store._read() as conn:
            ids = conn.execute(select(_ITEMS.c.doc_id).where(
                _ITEMS.c.source == name, _ITEMS.c.doc_id > marker, _ITEMS.c.folder.is_(False),
                _ITEMS.c.state != "skipped").order_by(_ITEMS.c.doc_id).limit(limit)).scalars().all()
            if not ids:
                return [], None
            where = [_ITEMS.c.source == name, _ITEMS.c.doc_id.in_(ids)]
            if read_before is not None:
                where.append(or_(_ITEMS.c.acl_read_at.is_(None), _ITEMS.c.acl_read_at < read_before))
            rows = conn.execute(select(_ITEMS).where(*where).order_by(_ITEMS.c.doc_id)).mappings()
            return [_item_row(r) for r in rows], ids[-1]

    def counts(self, name: str) -> dict[str, int]:
        """Items by state, plus "pending" (waiting to be re-read), and of the skipped ones "failed"
        (reading them failed twice) and "retrying" (failed once: tried again at the next sync)."""
        with self._store._read() as conn:
            out = {r[0]: r[1] for r in conn.execute(
                select(_ITEMS.c.state, func.count()).where(_ITEMS.c.source == name).group_by(_ITEMS.c.state))}
            out["pending"] = conn.execute(select(func.count()).where(
                _ITEMS.c.source == name, _ITEMS.c.pending.is_not(None))).scalar_one()
            skipped = [_ITEMS.c.source == name, _ITEMS.c.state == "skipped"]
            out["failed"] = conn.execute(select(func.count()).where(*skipped, _ITEMS.c.tries >= 2)).scalar_one()
            out["retrying"] = conn.execute(select(func.count()).where(*skipped, _ITEMS.c.tries == 1)).scalar_one()
        return out

    def record_try(self, name: str, doc_id: str, *, version: str, tries: int, reason: str,
                   new: dict[str, Any] | None = None) -> None:
        """A try at reading ``version`` of an item, recorded (committed) before the file is read;
        ``new``: the item's record when it has none yet. One small statement: it runs per file."""
        with self._store._write() as conn:
            if new is not None:
                conn.execute(insert(_ITEMS), [{**new, "source": name, "doc_id": doc_id, "reason": reason,
                                               "tries": tries, "tried_version": version}])
            else:
                conn.execute(_SET_TRIES, [{"k_source": name, "k_doc_id": doc_id, "v_tries": tries,
                                           "v_version": version, "v_reason": reason}])

    def clear_try(self, name: str, doc_id: str, tries: int = 0) -> None:
        """The try is over: read (0), or cut short by something other than the file (the tries
        before it)."""
        with self._store._write() as conn:
            conn.execute(_CLEAR_TRIES, [{"k_source": name, "k_doc_id": doc_id, "v_tries": tries}])

    def flag_retries(self, name: str) -> None:
        """Flag the items whose reading failed once to be read again ("refresh"): a source that
        lists only what changed would not list them again."""
        with self._store._write() as conn:
            conn.execute(update(_ITEMS).where(_ITEMS.c.source == name, _ITEMS.c.state == "skipped",
                                              _ITEMS.c.tries == 1).values(pending="refresh"))

    def skipped(self, name: str, limit: int = 50) -> list[tuple[str, str]]:
        with self._store._read() as conn:
            rows = conn.execute(select(_ITEMS.c.title, _ITEMS.c.reason).where(
                _ITEMS.c.source == name, _ITEMS.c.state == "skipped").order_by(_ITEMS.c.doc_id).limit(limit))
            return [(r[0], r[1] or "") for r in rows]

    # -- the source's own groups --------------------------------------------------------

    def replace_groups(self, name: str, members: Iterable[tuple[str, str, str]]) -> None:
        """Every (token, kind, member) of the source's groups, replacing the old ones at once."""
        unique = sorted(set(members))
        with self._store._write() as conn:
            conn.execute(delete(_MEMBERS).where(_MEMBERS.c.source == name))
            for start in range(0, len(unique), _CHUNK):
                conn.execute(insert(_MEMBERS), [{"source": name, "token": t, "kind": k, "member": m}
                                                for t, k, m in unique[start:start + _CHUNK]])

    def groups_of(self, email: str | None, groups: Iterable[str]) -> builtins.set[str]:
        """The source groups someone is in: as a person (email), through one of their
        identity-provider groups, or as anyone the directory knows (an "everyone" member)."""
        groups = sorted(set(groups))
        conditions = []
        if email:
            conditions.append(and_(_MEMBERS.c.kind == "user", _MEMBERS.c.member == email.strip().lower()))
            conditions.append(_MEMBERS.c.kind == "everyone")
        if groups:
            conditions.append(and_(_MEMBERS.c.kind == "group", _MEMBERS.c.member.in_(groups)))
        if not conditions:
            return set()
        with self._store._read() as conn:
            return set(conn.execute(select(_MEMBERS.c.token).where(or_(*conditions))).scalars())

    def group_members(self, name: str) -> dict[str, builtins.set[tuple[str, str]]]:
        out: dict[str, builtins.set[tuple[str, str]]] = defaultdict(builtins.set)
        with self._store._read() as conn:
            for token, kind, member in conn.execute(
                    select(_MEMBERS.c.token, _MEMBERS.c.kind, _MEMBERS.c.member).where(_MEMBERS.c.source == name)):
                out[token].add((kind, member))
        return dict(out)

    def forget(self, name: str) -> None:
        """Every record of a source (it was removed from the configuration)."""
        with self._store._write() as conn:
            for table in (_ITEMS, _SCOPES, _MEMBERS):
                conn.execute(delete(table).where(table.c.source == name))
            conn.execute(delete(_STATE).where(_STATE.c.name == name))

    # -- internals ----------------------------------------------------------------------

    def _upsert(self, table: Table, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> None:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        with self._store._write() as conn:
            for start in range(0, len(rows), _CHUNK):
                part = rows[start:start + _CHUNK]
                stmt = dialect.insert(table).values(part)
                cols = {c: stmt.excluded[c] for c in part[0] if c not in keys}
                conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=cols))
