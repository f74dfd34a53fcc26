"""What the conformance suite drives a source with: an adapter per kind (it knows its stand-in),
and a harness that syncs the source as the workers do and says what the index holds.

The harness runs a sync as a **chain of windows** (``workers/source_tasks.py``): one ``Sync`` per
window, against the source opened once (as a worker process keeps it), with a small item budget so
every case also crosses window boundaries; a chain ends when a window is done, stops on an error,
or finds the source busy. Its clock can be moved on (``later``), so a source that asked to be left
alone (``throttled_until``) is waited for without sleeping.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from chatops.access import Audience, Principal
from chatops.store.sources import SourceStates
from connectors.index.base import Query
from standins._loopback import Reply, Request
from tests.ingest_helpers import DIM, HashEmbedder
from usecases.sync import Budget, Sync, SyncReport

READER = "ana@contoso.com"      # may read the team's part of the source
INSIDER = "bob@contoso.com"     # may read the restricted part
OUTSIDER = "mallory@contoso.com"  # may read nothing
WINDOW_ITEMS = 3                # a window's budget: small, so chains cross windows

# The cases, by the names adapters use to say they cannot have one.
PAGING, THROTTLING, INTERRUPTION, UNREADABLE, FINDINGS = (
    "paging", "throttling", "interrupted pass", "unreadable permissions", "findings")


@dataclass(frozen=True)
class Ref:
    """One item in a stand-in, as the index should hold it."""

    doc_id: str
    title: str
    url: str | None = None
    handle: object = None      # the stand-in's own id of it


@dataclass(frozen=True)
class Seen:
    title: str
    url: str | None
    text: str


class Wiretap:
    """Sees every request a stand-in answers, first; a rule answers some of them instead (a
    fault the stand-in has no switch for)."""

    def __init__(self, server):
        self.requests: list[Request] = []
        self._rules: dict[str, tuple[Callable[[Request], bool], Reply]] = {}
        self._handle = server.handle
        server.handle = self._serve

    def _serve(self, request: Request) -> Reply:
        self.requests.append(request)
        for match, reply in list(self._rules.values()):
            if match(request):
                return reply
        return self._handle(request)

    def answer(self, name: str, match: Callable[[Request], bool], reply: Reply) -> None:
        self._rules[name] = (match, reply)

    def clear(self, name: str) -> None:
        self._rules.pop(name, None)

    def count(self, match: Callable[[Request], bool] = lambda r: True) -> int:
        return sum(1 for r in list(self.requests) if match(r))


class Adapter:
    """How one kind's stand-in is built and changed. Subclasses set what they cannot do, with
    the reason (the case is then skipped, saying so), and after which sync modes each kind of
    change shows in the index (``passes``; "changes" when not named)."""

    kind = ""
    unsupported: dict[str, str] = {}
    passes: dict[str, tuple[str, ...]] = {}
    renames_in_place = False      # a rename rewrites title and link in place (no download, no embedding)
    moves_in_place = False        # the same for a move

    def __init__(self):
        self.sleeps: list[float] = []     # what the source's pacing slept

    # building and opening ------------------------------------------------------------------
    def build(self) -> None:
        """The team's part (READER), a restricted part inside it (INSIDER), and an ``other`` part
        (READER) listed as a scope of its own where the kind has scopes."""
        raise NotImplementedError

    def open(self, max_wait: float):
        """The source, opened through the registry (or the suite's shared builder)."""
        raise NotImplementedError

    # changing an item ----------------------------------------------------------------------
    def create(self, name: str, text: str, where: str = "team") -> Ref: raise NotImplementedError
    def edit(self, ref: Ref, text: str) -> None: raise NotImplementedError
    def rename(self, ref: Ref, name: str) -> Ref: raise NotImplementedError
    def move(self, ref: Ref) -> Ref: raise NotImplementedError            # into the restricted part
    def delete(self, ref: Ref) -> None: raise NotImplementedError
    def share_only_with_insider(self, ref: Ref) -> None: raise NotImplementedError
    def hide_permissions(self, ref: Ref) -> None: raise NotImplementedError
    def reveal_permissions(self, ref: Ref) -> None: raise NotImplementedError
    def provoke_finding(self, ref: Ref) -> str: raise NotImplementedError   # the findings key it raises

    # faults and counts -------------------------------------------------------------------------
    def small_pages(self) -> None: raise NotImplementedError
    def throttle(self, count: int, retry_after: int) -> None: raise NotImplementedError
    def break_listing(self, where: str) -> None: raise NotImplementedError   # after the scope's first page
    def heal(self) -> None: raise NotImplementedError
    def scope(self, where: str) -> str: raise NotImplementedError
    def listings_started(self, where: str) -> int: raise NotImplementedError  # full listings begun
    def continued_listings(self) -> int: raise NotImplementedError   # listing pages asked for by a cursor
    def requests(self) -> int: raise NotImplementedError     # requests the stand-in saw

    def downloads(self) -> int | None:
        """Content the stand-in served (None: the kind has no server; the fetch count stands in)."""
        return None

    def close(self) -> None:
        pass


class Counted:
    """The source as the sync sees it, counting the documents it fetches (a transparent proxy)."""

    def __init__(self, source):
        self.inner = source
        self.fetched: Counter[str] = Counter()

    def fetch(self, item):
        self.fetched[item.doc_id] += 1
        return self.inner.fetch(item)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@dataclass
class Harness:
    adapter: Adapter
    states: SourceStates
    index: object
    embedder: HashEmbedder = field(default_factory=HashEmbedder)
    max_wait: float = 30.0
    _source: Counted | None = None
    _offset: timedelta = timedelta(0)

    # -- the source, synced as the workers do ------------------------------------------------
    @property
    def source(self) -> Counted:
        if self._source is None:
            self._source = Counted(self.adapter.open(self.max_wait))
        return self._source

    @property
    def name(self) -> str:
        return self.source.name

    def needs(self, case: str) -> None:
        why = self.adapter.unsupported.get(case)
        if why:
            pytest.skip(f"{self.adapter.kind} has no {case}: {why}")

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def later(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)

    def chain(self, mode: str) -> SyncReport:
        """Windows of ``mode`` until one is done, stops on an error or finds the source busy."""
        total = SyncReport(self.source.name, mode)
        for _ in range(500):
            sync = Sync(self.source, self.states, self.index, self.embedder, kind=self.adapter.kind, clock=self.now)
            report = sync.window(mode, Budget(items=WINDOW_ITEMS, seconds=None))
            total.absorb(report)
            if report.done or report.error or report.busy:
                return total
        raise AssertionError(f"the {mode} chain of {self.name} never ended")

    def catch_up(self, change: str) -> SyncReport:
        """The syncs after which the kind says this change shows (a scheduler runs them all)."""
        total = None
        for mode in self.adapter.passes.get(change, ("changes",)):
            report = self.chain(mode)
            assert report.error is None, report.summary()
            if total is None:
                total = report
            else:
                total.absorb(report)
        return total

    def start(self, *items: tuple[str, str]) -> list[Ref]:
        """The stand-in built with these (name, text) items in the team's part, and synced."""
        self.adapter.build()
        refs = [self.adapter.create(name, text) for name, text in items]
        report = self.chain("changes")          # a first sync: runs as a full one
        assert report.done and report.error is None, report.summary()
        assert report.mode == "full"
        return refs

    # -- what the index holds ------------------------------------------------------------------
    def seen(self, email: str | None) -> dict[str, Seen]:
        """The source's documents this person (None: a public channel) may see, by doc_id."""
        if email is None:
            audience = Audience.public("C-public")
        else:
            audience = Audience.of(Principal.of(email, self.states.groups_of(email, ())))
        hits = self.index.search(Query(dense=[0.5] * DIM, sparse=None), audience, limit=1000, candidates=1000,
                                 mode="dense")
        chunks: dict[str, list] = {}
        for hit in hits:
            if hit.chunk.source == self.source.source_id:
                chunks.setdefault(hit.chunk.doc_id, []).append(hit.chunk)
        return {doc_id: Seen(cs[0].title, cs[0].url, "\n".join(c.text for c in sorted(cs, key=lambda c: c.position)))
                for doc_id, cs in chunks.items()}

    def indexed(self) -> set[str]:
        """Every document of the source in the index, whoever may see it."""
        return set(self.index.document_hashes(self.source.source_id))

    def costs(self) -> tuple[int | None, int, int]:
        """(stand-in downloads, documents fetched, texts embedded) so far."""
        return self.adapter.downloads(), sum(self.source.fetched.values()), len(self.embedder.embedded)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        self.adapter.close()
