"""Keep one source's documents and permissions in the index: content, permissions, full.

Three kinds of sync, each run in **windows** (at most ``Budget.items`` items or
``Budget.seconds`` seconds; the state in the database says where the next window goes on), so
one huge source never holds a worker for long and other sources' windows run in between:

* ``changes`` — each scope's changes since its stored cursor (a scope without one is listed
  in full and diffed); changed documents are fetched, chunked, embedded and written with
  their permissions; deleted ones removed; renamed or moved ones get their new title and
  link in place (no re-embedding); items whose permissions the source flags, and everything
  below a moved or re-shared folder, are re-read;
* ``permissions`` — the members of the source's own groups, then the permissions of every
  document, written in place where they changed (``index.update_documents``: no download, no
  embedding). Its start, once it completes, becomes the source's **ACL watermark**;
* ``full`` — every scope listed anew and diffed (what is no longer listed is pruned), then a
  permission pass.

Only one window per source runs at a time (a lease in the database). A source that cannot
be read (throttled past the bound, down) stops the window; the error is recorded and the
next window resumes from the stored cursor. Index writes come before the state that records
them, so a window cut short is redone, never skipped.

Documents nobody may read (or whose permissions could not be read) are indexed with an empty
ACL, which no filter matches: when someone is granted access later, only the ACL changes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

from tqdm import tqdm

from chatops.access import Acl
from chatops.store.sources import ItemRow, SourceRow, SourceStates
from connectors.index.base import VectorIndex
from connectors.embeddings.base import Embedder
from connectors.sources.base import GONE, CursorExpired, Item, SourceUnavailable, SyncSource, Unfetchable
from usecases.ingest import ChunkWriter

log = logging.getLogger(__name__)

MODES = ("changes", "permissions", "full")
PERMISSION_BATCH = 100   # items whose permissions are read (and written) together
MAX_TRIES = 2            # a file whose reading fails this many times (at one version) is skipped
STOPPED = "the worker stopped while reading it"   # a try that never came back


@dataclass
class Budget:
    """How much one window may do; ``None`` for no bound (the CLI runs a sync to the end)."""

    items: int | None = 2000
    seconds: float | None = 120.0
    _spent: int = 0
    _deadline: float | None = None

    def __post_init__(self) -> None:
        self._deadline = None if self.seconds is None else time.monotonic() + self.seconds

    @classmethod
    def unbounded(cls) -> "Budget":
        return cls(items=None, seconds=None)

    def spend(self, n: int = 1) -> None:
        self._spent += n

    @property
    def exhausted(self) -> bool:
        if self.items is not None and self._spent >= self.items:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline


@dataclass
class SyncReport:
    source: str
    mode: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    renamed: int = 0                 # new title or link, written in place
    permissions_changed: int = 0     # documents whose ACL changed, written in place
    deleted: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (title, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (title, reason): tried again next sync
    unreadable: int = 0              # documents whose permissions could not be read: hidden
    resynced: list[str] = field(default_factory=list)              # scopes listed again (410)
    groups: int | None = None        # source groups synced (a permission pass's start)
    done: bool = True                # False: the window ended early; the next one goes on
    busy: bool = False               # another sync of this source holds the lease
    error: str | None = None
    error_transient: bool = True     # the error may pass by itself (else a person must fix something)

    def absorb(self, other: "SyncReport") -> None:
        for name in ("added", "updated", "unchanged", "renamed", "permissions_changed", "deleted", "unreadable"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped += other.skipped
        self.failed += other.failed
        self.resynced += other.resynced
        self.groups = other.groups if other.groups is not None else self.groups
        self.done, self.busy, self.error = other.done, other.busy, other.error
        self.error_transient = other.error_transient
        self.mode = other.mode or self.mode   # a first "changes" sync runs as a full one

    def summary(self) -> str:
        if self.busy:
            return f"{self.source}: another sync of this source is running; try again when it ends"
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.permissions_changed} permissions changed",
                 f"{self.deleted} deleted", f"{self.renamed} renamed or moved", f"{self.unchanged} unchanged"]
        text = f"synced {self.source} ({self.mode}): " + ", ".join(parts)
        if self.skipped:
            reasons = Counter(reason for _, reason in self.skipped)
            text += f"; {len(self.skipped)} skipped (" + "; ".join(
                f"{n} {reason}" for reason, n in reasons.most_common()) + ")"
        if self.failed:
            reasons = Counter(reason for _, reason in self.failed)
            text += f"; {len(self.failed)} failed, tried again at the next sync (" + "; ".join(
                f"{n} {reason}" for reason, n in reasons.most_common()) + ")"
        if self.unreadable:
            text += f"; {self.unreadable} with unreadable permissions (hidden from everyone)"
        if self.resynced:
            text += f"; listed again after an expired cursor: {', '.join(self.resynced)}"
        if self.error:
            text += f"; stopped: {self.error}" + (" (the next sync resumes from here)" if self.error_transient else "")
        elif not self.done:
            text += "; more to do (the next window goes on)"
        return text


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _state_of(acl: Acl | None) -> str:
    if acl is None:
        return "unreadable"
    return "indexed" if acl.visible_to_anyone else "hidden"


class Sync:
    """Runs windows of one source's syncs against the index and the state store."""

    def __init__(self, source: SyncSource, states: SourceStates, index: VectorIndex, embedder: Embedder | None, *,
                 kind: str, batch_chunks: int = 1024, lease_ttl: float = 600.0, progress: bool = False,
                 clock: Callable[[], datetime] = _now):
        self.source = source
        self.states = states
        self.index = index
        self.embedder = embedder
        self.kind = kind
        self.batch_chunks = batch_chunks
        self.lease_ttl = lease_ttl
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._bar = tqdm(desc=f"sync {source.name}", unit="item", file=sys.stderr, disable=not progress)
        self.report = SyncReport(source.name, "")
        self.budget = Budget()

    # -- entry points ---------------------------------------------------------------------

    def window(self, mode: str, budget: Budget | None = None) -> SyncReport:
        """One window of ``mode``; ``report.done`` says whether the sync is complete."""
        if mode not in MODES:
            raise ValueError(f"unknown sync mode {mode!r} (known: {', '.join(MODES)})")
        self.report = SyncReport(self.source.name, mode)
        self.budget = budget or Budget()
        name = self.source.name
        self.states.ensure(name, self.source.source_id, self.kind)
        if not self.states.take_lease(name, self.owner, self.lease_ttl):
            self.report.busy, self.report.done = True, False
            return self.report
        st = self._state()
        if st.throttled_until is not None and st.throttled_until > self.clock():
            self.states.release_lease(name, self.owner)
            self.report.done = False
            self.report.error = f"the source asked us to wait until {st.throttled_until:%H:%M:%S} UTC"
            return self.report
        try:
            self.index.ensure_collection()
            done = self._run(mode)
            self.report.done = done
            # A complete pass clears the error a pass of its kind recorded (a content sync any):
            # a permission pass getting through says nothing of a content sync that cannot.
            if done and (mode != "permissions" or st.last_error_pass != "content"):
                self.states.set(name, last_error=None, last_error_at=None, last_error_pass=None)
        except SourceUnavailable as exc:
            self.report.done, self.report.error = False, str(exc)
            self.report.error_transient = exc.transient
            wait = getattr(exc, "retry_after", None)
            self.states.set(name, last_error=str(exc)[:500], last_error_at=self.clock(),
                            last_error_pass="permissions" if mode == "permissions" else "content",
                            throttled_until=self.clock() + timedelta(seconds=wait) if wait else None)
            log.error("source sync stopped", extra={"source": name, "mode": mode, "error": str(exc)[:300]})
        finally:
            self.states.release_lease(name, self.owner)
        log.info("source sync window", extra={
            "source": name, "mode": mode, "done": self.report.done, "added": self.report.added,
            "updated": self.report.updated, "deleted": self.report.deleted,
            "permissions_changed": self.report.permissions_changed, "skipped": len(self.report.skipped)})
        return self.report

    def _state(self) -> SourceRow:
        """The source's state row (``ensure`` made it before anything reads it)."""
        st = self.states.get(self.source.name)
        if st is None:
            raise LookupError(f"no sync state for the source {self.source.name}")
        return st

    def run(self, mode: str) -> SyncReport:
        """Windows until the sync completes or stops on an error (the CLI)."""
        total = SyncReport(self.source.name, mode)
        while True:
            total.absorb(self.window(mode, Budget()))
            if total.done or total.busy or total.error:
                self._bar.close()
                return total

    # -- the three kinds ------------------------------------------------------------------

    def _run(self, mode: str) -> bool:
        name = self.source.name
        st = self.states.ensure(name, self.source.source_id, self.kind)
        now = self.clock()
        if mode == "changes" and st.last_full_at is None and st.acl_watermark is None:
            mode = self.report.mode = "full"   # the first sync: the source's groups, content, permissions
        if mode == "full" and st.full_started_at is None:
            # The permission pass of a full sync starts with it, with the source's groups (where a
            # source starts counting its findings): what the content phase reads counts, and the
            # pass then reads only the rest.
            self.states.set(name, full_started_at=now, perm_started_at=now, perm_marker=None)
            for scope in self.states.scopes(name):
                self.states.set_scope(name, scope, run_mode="full", run_cursor=None, run_id=_run_id())
            self._groups()
        if mode in ("changes", "full"):
            st = self._state()
            if st.changes_started_at is None:
                self.states.set(name, changes_started_at=now)
                self.states.flag_retries(name)    # files that failed once: read again in this pass
            if not self._content(start_full=mode == "full"):
                return False
            st = self._state()
            self.states.set(name, last_incremental_at=st.changes_started_at, changes_started_at=None)
            if mode == "changes":
                return True
        st = self._state()
        if not self._permissions(not_before=st.full_started_at if mode == "full" else None):
            return False
        st = self._state()
        if st.full_started_at is not None and mode == "full":
            self.states.set(name, last_full_at=st.full_started_at, full_started_at=None)
        return True

    def _content(self, *, start_full: bool) -> bool:
        name = self.source.name
        scopes = self.source.scopes()
        self._drop_other_scopes(scopes)
        known = self.states.scopes(name)
        for scope in scopes:
            if start_full and scope not in known:
                self.states.set_scope(name, scope, run_mode="full", run_cursor=None, run_id=_run_id())
            if not self._scope(scope):
                return False
        return self._pending()

    def _scope(self, scope: str, *, again: bool = True) -> bool:
        """List one scope from where it stands; True when its listing is complete."""
        name = self.source.name
        sc = self.states.scopes(name).get(scope)
        mode: str | None
        if sc is None or sc.run_mode is None:
            full = sc is None or sc.cursor is None or self.source.lists_everything
            mode, run_id = ("full", _run_id()) if full else ("changes", None)
            self.states.set_scope(name, scope, run_mode=mode, run_id=run_id, run_cursor=None)
            sc = self.states.scopes(name)[scope]
        mode, run_id = sc.run_mode, sc.run_id
        start = sc.run_cursor if sc.run_cursor is not None else (sc.cursor if mode == "changes" else None)
        try:
            for page in self.source.changes(scope, start):
                self._apply(scope, page.items, listing_run=run_id if mode == "full" else None)
                if page.done:
                    if mode == "full":
                        assert run_id is not None, "a full listing has its run id"
                        self._prune(self.states.unseen(name, scope, run_id))
                    self.states.set_scope(name, scope, cursor=page.cursor, run_cursor=None, run_mode=None,
                                          run_id=None)
                    return True
                self.states.set_scope(name, scope, run_cursor=page.cursor)
                self.states.take_lease(name, self.owner, self.lease_ttl)
                if self.budget.exhausted:
                    return False
        except CursorExpired:
            if not again:
                raise SourceUnavailable(f"the listing of {scope} expired twice in a row") from None
            log.warning("cursor expired; listing the scope again", extra={"source": name, "scope": scope})
            self.report.resynced.append(scope)
            self.states.set_scope(name, scope, run_mode="full", run_id=_run_id(), run_cursor=None)
            return self._scope(scope, again=False)
        # A listing that ends without a last page: keep the cursor, nothing more to read now.
        self.states.set_scope(name, scope, run_cursor=None, run_mode=None, run_id=None)
        return True

    def _permissions(self, not_before: datetime | None = None) -> bool:
        """One window of the permission pass (a pass begun before ``not_before`` starts over)."""
        name = self.source.name
        st = self._state()
        if st.perm_started_at is None or (not_before is not None and st.perm_started_at < not_before):
            self.states.set(name, perm_started_at=self.clock(), perm_marker=None)
            st = self._state()
        if st.perm_marker is None:
            self._groups()
            marker = ""
        else:
            marker = st.perm_marker
        started = self._state().perm_started_at
        while True:
            rows, next_marker = self.states.documents_after(name, marker, PERMISSION_BATCH, read_before=started)
            if next_marker is None:
                break
            self._reread_permissions(rows)
            marker = next_marker
            self.states.set(name, perm_marker=marker)
            self.states.take_lease(name, self.owner, self.lease_ttl)
            if self.budget.exhausted:
                return False
        st = self._state()
        self.states.set(name, acl_watermark=st.perm_started_at, perm_started_at=None, perm_marker=None,
                        findings=json.dumps(self.source.findings()))
        return True

    def _groups(self) -> None:
        """The members of the source's own groups: a permission pass starts here."""
        groups = self.source.groups()
        self.states.replace_groups(self.source.name, [(g.token, m.kind, m.id) for g in groups for m in g.members])
        self.report.groups = len(groups)
        self.states.set(self.source.name, perm_marker="")

    # -- applying what the source says ----------------------------------------------------

    def _apply(self, scope: str, items: Sequence[Item], *, listing_run: str | None = None) -> None:
        name = self.source.name
        rows = self.states.items(name, [i.doc_id for i in items])
        fetch: list[tuple[Item, ItemRow | None]] = []
        puts: list[dict[str, Any]] = []
        reread: list[ItemRow] = []          # listed unchanged, but their permissions may not be
        below_acl: set[str] = set()         # below a re-shared folder: permissions re-read soon
        refresh: set[str] = set()           # below a moved folder: links and permissions
        for item in items:
            self.budget.spend()
            self._bar.update()
            row = rows.get(item.doc_id)
            if item.deleted:
                if row is not None:
                    self._remove(row)
                continue
            if item.folder:
                moved = row is not None and (row.parent != item.parent or row.title != item.title)
                puts.append(self._row(item, state="folder"))
                if moved:
                    refresh.update(r.doc_id for r in self.states.descendants(name, [item.doc_id]))
                elif item.sharing_changed:
                    below_acl.update(r.doc_id for r in self.states.descendants(name, [item.doc_id])
                                     if not r.folder)
                continue
            if item.skip:
                if row is not None and row.state not in ("skipped", "folder"):
                    self.index.delete_documents(self.source.source_id, [item.doc_id])
                puts.append(self._row(item, state="skipped", reason=item.skip, acl=None))
                self.report.skipped.append((item.title or item.doc_id, item.skip))
                continue
            if row is not None and not row.folder and row.version == item.version and not _retry_due(row, item):
                if row.state != "skipped" and (row.title != item.title or row.url != item.url):
                    self.index.update_documents(self.source.source_id, [item.doc_id],
                                                {"title": item.title, "url": item.url})
                    self.report.renamed += 1
                else:
                    self.report.unchanged += 1
                puts.append({"doc_id": item.doc_id, "scope": item.scope, "parent": item.parent,
                             "title": item.title, "url": item.url})
                if row.state != "skipped" and (item.sharing_changed or row.parent != item.parent):
                    reread.append(row)
                continue
            fetch.append((item, row))
        puts.extend(self._fetch(fetch))
        self.states.put_items(name, puts)
        self._reread_permissions(reread)
        if listing_run is not None:
            self.states.mark_seen(name, [i.doc_id for i in items if not i.deleted], listing_run)
        if refresh:
            self.states.set_pending(name, refresh, "refresh")
        if below_acl:
            self.states.set_pending(name, below_acl, "acl")

    def _fetch(self, todo: Sequence[tuple[Item, ItemRow | None]]) -> list[dict[str, Any]]:
        """Download, chunk, embed and write these documents, each with its permissions read now."""
        if not todo:
            return []
        acls = self.source.permissions([item for item, _ in todo])
        read_at = self.clock()
        writer = ChunkWriter(self.source.source_id, self.index, self._embedder(), self.batch_chunks)
        rows: list[dict[str, Any]] = []
        begun: list[str] = []      # new items recorded before they were read, with no final record yet
        try:
            for item, row in todo:
                acl = acls.get(item.doc_id)
                if acl is GONE:     # deleted between the listing and now
                    if row is not None:
                        self._remove(row)
                    continue
                tries = (row.tries if row is not None and row.tried_version == item.version else 0) + 1
                if tries > MAX_TRIES:             # both tries ended with the worker: not read a third time
                    self._skip(writer, rows, item, row, (row.reason if row else None) or f"failed twice: {STOPPED}",
                               tries=tries - 1)
                    continue
                self._begin(item, row, tries)
                if row is None:
                    begun.append(item.doc_id)
                try:
                    doc = self.source.fetch(item)
                except Unfetchable as exc:
                    reason = str(exc) or "unreadable"
                    if not exc.again:
                        self._skip(writer, rows, item, row, reason)
                    elif tries < MAX_TRIES:
                        self._skip(writer, rows, item, row, reason, tries=tries, again=True)
                    else:
                        self._skip(writer, rows, item, row, f"failed twice: {reason}", tries=tries)
                    continue
                except SourceUnavailable:
                    if row is not None:       # the source failed, not the file: this try does not count
                        self.states.clear_try(self.source.name, item.doc_id, tries - 1)
                    raise
                self.states.clear_try(self.source.name, item.doc_id)
                state = _state_of(acl)
                if state == "unreadable":
                    self.report.unreadable += 1
                acl = acl or Acl()
                writer.replace(replace(doc, acl=acl, content_hash=item.version,
                                       title=doc.title or item.title, url=doc.url or item.url))
                rows.append({**self._row(item, state=state, acl=acl), "acl_read_at": read_at})   # the listing's title and link
                if row is None or row.state in ("skipped", "folder"):
                    self.report.added += 1
                else:
                    self.report.updated += 1
        except SourceUnavailable:
            # The window stops here: the new items of this batch are as if never listed (the next
            # window lists them again) rather than left looking skipped.
            self.states.delete_items(self.source.name, begun)
            raise
        writer.flush()
        return rows

    def _begin(self, item: Item, row: ItemRow | None, tries: int) -> None:
        """Record a try before the file is read: a worker killed while reading it still counts it.
        A new item is recorded as skipped at no version, so the next listing reads it again."""
        new = None if row is not None else {**self._row(item, state="skipped"), "version": ""}
        reason = STOPPED if tries < MAX_TRIES else f"failed twice: {STOPPED}"
        self.states.record_try(self.source.name, item.doc_id, version=item.version, tries=tries, reason=reason,
                               new=new)

    def _skip(self, writer: ChunkWriter, rows: list[dict[str, Any]], item: Item, row: ItemRow | None, reason: str, *,
              tries: int = 0, again: bool = False) -> None:
        """List the document as skipped (its old text leaves the index); ``again``: read it once more
        at the next sync. ``tries``: the failed tries at this version (0: a failure no try changes)."""
        if row is not None and row.state not in ("skipped", "folder"):
            writer.remove(item.doc_id)
        rows.append({**self._row(item, state="skipped", reason=reason, acl=None), "tries": tries,
                     "tried_version": item.version if tries else None})
        (self.report.failed if again else self.report.skipped).append((item.title or item.doc_id, reason))

    def _pending(self) -> bool:
        """Re-read what was flagged: new links and permissions below a moved folder, permissions
        below a re-shared one. True when nothing is left."""
        name = self.source.name
        while not self.budget.exhausted:
            rows = self.states.pending(name, PERMISSION_BATCH)
            if not rows:
                return True
            reread = [r for r in rows if r.pending != "refresh"]
            refresh = [r for r in rows if r.pending == "refresh"]
            if refresh:
                current = self.source.refresh([_item_of(r) for r in refresh])
                fetch: list[tuple[Item, ItemRow | None]] = []
                puts = []
                for r in refresh:
                    item = current.get(r.doc_id)
                    if item is None:
                        self._remove(r)
                    elif not r.folder and ((r.state != "skipped" and item.version != r.version)
                                           or _retry_due(r, item)):
                        fetch.append((item, r))     # changed meanwhile, or failed once: fetched with its permissions
                    else:
                        if not r.folder and r.state != "skipped" and (item.title, item.url) != (r.title, r.url):
                            self.index.update_documents(self.source.source_id, [r.doc_id],
                                                        {"title": item.title, "url": item.url})
                            self.report.renamed += 1
                        puts.append({"doc_id": r.doc_id, "scope": item.scope, "parent": item.parent,
                                     "title": item.title, "url": item.url})
                        reread.append(replace(r, title=item.title, url=item.url))
                puts.extend(self._fetch(fetch))
                self.states.put_items(name, puts)
            self._reread_permissions(reread)
            self.states.set_pending(name, [r.doc_id for r in rows], None)
            self.states.take_lease(name, self.owner, self.lease_ttl)
        return not self.states.pending(name, 1)

    def _reread_permissions(self, rows: Sequence[ItemRow]) -> None:
        """Read these documents' permissions and write the changed ones in place, grouped by ACL."""
        rows = [r for r in rows if not r.folder and r.state != "skipped"]
        if not rows:
            return
        acls = self.source.permissions([_item_of(r) for r in rows])
        now = self.clock()
        by_acl: dict[Acl, list[str]] = defaultdict(list)
        puts = []
        for r in rows:
            self.budget.spend()
            self._bar.update()
            acl = acls.get(r.doc_id)
            if acl is GONE:           # deleted since it was listed: out now, not at the next full listing
                self._remove(r)
                continue
            state = _state_of(acl)
            acl = acl or Acl()
            if state == "unreadable" and r.state != "unreadable":
                self.report.unreadable += 1
            if r.acl != acl:
                by_acl[acl].append(r.doc_id)
                self.report.permissions_changed += 1
            puts.append({"doc_id": r.doc_id, "scope": r.scope, "acl": acl, "state": state, "acl_read_at": now})
        for acl, doc_ids in by_acl.items():
            self.index.update_documents(self.source.source_id, doc_ids, acl.to_payload())
        self.states.put_items(self.source.name, puts)

    def _remove(self, row: ItemRow) -> None:
        rows = [row] + (self.states.descendants(self.source.name, [row.doc_id]) if row.folder else [])
        docs = [r.doc_id for r in rows if not r.folder]
        self.index.delete_documents(self.source.source_id, docs)
        self.states.delete_items(self.source.name, [r.doc_id for r in rows])
        self.report.deleted += sum(1 for r in rows if not r.folder and r.state != "skipped")

    def _prune(self, rows: Iterable[ItemRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        self.index.delete_documents(self.source.source_id, [r.doc_id for r in rows if not r.folder])
        self.states.delete_items(self.source.name, [r.doc_id for r in rows])
        self.report.deleted += sum(1 for r in rows if not r.folder and r.state != "skipped")

    def _drop_other_scopes(self, scopes: Sequence[str]) -> None:
        """A drive no longer configured (or gone): its documents leave the index."""
        name = self.source.name
        self._prune(self.states.outside(name, scopes))
        for scope in set(self.states.scopes(name)) - set(scopes):
            self.states.drop_scope(name, scope)

    @staticmethod
    def _row(item: Item, *, state: str, acl: Acl | None = None, reason: str | None = None) -> dict[str, Any]:
        """An item's record: the listing's title and link (a rename is told by them)."""
        return {"doc_id": item.doc_id, "scope": item.scope, "parent": item.parent, "folder": item.folder,
                "version": item.version, "title": item.title, "url": item.url, "state": state,
                "reason": reason, "acl": acl, "pending": None, "acl_read_at": None, "tries": 0, "tried_version": None}

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            raise RuntimeError("this sync needs the embedding model")
        return self.embedder


def _retry_due(row: ItemRow, item: Item) -> bool:
    """Reading this version failed once: it is read once more (at the sync after the failure)."""
    return row.state == "skipped" and row.tries == 1 and row.tried_version == item.version


def _item_of(row: ItemRow) -> Item:
    return Item(doc_id=row.doc_id, scope=row.scope, version=row.version, title=row.title, url=row.url,
                parent=row.parent, folder=row.folder)


def _run_id() -> str:
    return uuid.uuid4().hex[:16]
