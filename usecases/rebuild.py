"""Re-embedding the index into a new generation, from the stored chunk text (``chatops index rebuild``).

1. copy: every chunk of the active generation (payload: text, title, ACL, source, document...) is
   embedded with the new embedder, in pages, and written to the new generation; points already
   there are skipped by id, so running it again after a crash continues where it stopped;
2. check: the two generations hold the same documents, the same chunks per document and the same
   payloads (ACL fields included); what differs (a sync wrote to the active one meanwhile) is
   copied again;
3. switch, under ``exclusive`` (in the process that owns the index: writes wait): checked once more,
   copied again once if needed; still different → refused (``SwitchRefused``), nothing switched;
   otherwise the pointer (alias) moves to the new generation in one atomic step.

The old generation is kept; ``chatops index remove`` deletes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator, Protocol, Sequence

from chatops.errors import ConfigError
from connectors.index.base import Chunk, VectorIndex
from connectors.index.generations import GenerationState

PAGE = 256


class Embeds(Protocol):
    def embed_documents(self, texts: Sequence[str]) -> tuple[list[Any], list[Any]]: ...


class SwitchRefused(ConfigError):
    """The new generation did not match the active one at switch time: nothing switched."""


class Paused(Exception):
    """The copy stopped at its time budget (a worker task's time limit); running it again continues."""


class Gens(Protocol):
    def state(self, name: str) -> GenerationState | None: ...
    def save_state(self, state: GenerationState) -> None: ...
    def switch(self, name: str) -> None: ...


@dataclass
class Differences:
    missing: list[tuple[str, str]] = field(default_factory=list)     # documents only in the active one
    extra: list[tuple[str, str]] = field(default_factory=list)       # only in the new one
    chunks: list[tuple[str, str]] = field(default_factory=list)      # other chunks (ids or count)
    acl: list[tuple[str, str]] = field(default_factory=list)         # other ACL payloads
    payload: list[tuple[str, str]] = field(default_factory=list)     # other text, title, hash...
    documents: int = 0
    points: int = 0

    def docs(self) -> set[tuple[str, str]]:
        return {*self.missing, *self.extra, *self.chunks, *self.acl, *self.payload}

    def __bool__(self) -> bool:
        return bool(self.docs())

    def describe(self) -> str:
        parts = [f"{len(v)} {label}" for label, v in (
            ("documents missing", self.missing), ("documents extra", self.extra),
            ("documents with other chunks", self.chunks), ("documents with another ACL", self.acl),
            ("documents with other text or fields", self.payload)) if v]
        first = sorted(self.docs())[:3]
        return ", ".join(parts) + (" (" + ", ".join(f"{s} {d}" for s, d in first) + ")" if first else "")


@dataclass
class RebuildReport:
    generation: str
    points: int
    embedded: int          # embedded by this run (the rest were there from a run before)
    skipped: int
    recopied: int          # documents copied again after the check found them changed
    documents: int
    seconds: float
    switched: bool
    previous: str | None = None     # the generation that was active (kept)

    def summary(self) -> str:
        rate = self.embedded / self.seconds if self.seconds > 0 else 0.0
        return (f"generation {self.generation}: {self.points} chunks of {self.documents} documents "
                f"({self.embedded} embedded now at {rate:.0f}/s, {self.skipped} already there, "
                f"{self.recopied} documents copied again after a change), checked"
                + (", switched to it" if self.switched else ", not switched (--no-switch)"))


_ACL_KEYS = ("acl_groups", "acl_users", "acl_public")


def _digest(payload: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    picked = {k: payload.get(k) for k in keys} if keys is not None else \
        {k: v for k, v in payload.items() if k not in _ACL_KEYS}
    return hashlib.blake2b(json.dumps(picked, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def _acl(payload: dict[str, Any]) -> str:
    p = dict(payload)
    for key in ("acl_groups", "acl_users"):
        if isinstance(p.get(key), list):
            p[key] = sorted(p[key])
    return _digest(p, _ACL_KEYS)


def _pages(index: VectorIndex, limit: int = PAGE) -> Iterator[list[Chunk]]:
    offset = None
    while True:
        chunks, offset = index.scroll_chunks(offset, limit)   # type: ignore[attr-defined]
        if chunks:
            yield chunks
        if offset is None:
            return


def _summary(index: VectorIndex) -> dict[tuple[str, str], dict[str, tuple[str, str]]]:
    """(source, document) -> chunk id -> (digest of its fields but the ACL, digest of its ACL)."""
    out: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for page in _pages(index, 1000):
        for c in page:
            payload = c.to_payload()
            out.setdefault((c.source, c.doc_id), {})[c.id] = (_digest(payload), _acl(payload))
    return out


def compare(active: VectorIndex, new: VectorIndex) -> Differences:
    """What differs between the two generations, per document."""
    a, b = _summary(active), _summary(new)
    diff = Differences(documents=len(a), points=sum(len(v) for v in a.values()))
    for doc, chunks in a.items():
        other = b.get(doc)
        if other is None:
            diff.missing.append(doc)
        elif set(chunks) != set(other):
            diff.chunks.append(doc)
        elif any(chunks[i][1] != other[i][1] for i in chunks):
            diff.acl.append(doc)
        elif any(chunks[i][0] != other[i][0] for i in chunks):
            diff.payload.append(doc)
    diff.extra = [doc for doc in b if doc not in a]
    return diff


def _embed_into(target: VectorIndex, embedder: Embeds, chunks: list[Chunk]) -> None:
    if chunks:
        dense, sparse = embedder.embed_documents([c.embedding_text() for c in chunks])
        target.upsert(chunks, dense, sparse)


def recopy(active: VectorIndex, target: VectorIndex, embedder: Embeds, docs: set[tuple[str, str]]) -> int:
    """These documents made again in ``target`` from ``active`` (deleted there first)."""
    if not docs:
        return 0
    by_source: dict[str, list[str]] = {}
    for source, doc in docs:
        by_source.setdefault(source, []).append(doc)
    for source, doc_ids in by_source.items():
        target.delete_documents(source, doc_ids)
    pending: list[Chunk] = []
    for page in _pages(active):
        pending += [c for c in page if (c.source, c.doc_id) in docs]
        if len(pending) >= PAGE:
            _embed_into(target, embedder, pending)
            pending = []
    _embed_into(target, embedder, pending)
    return len(docs)


def rebuild(active: VectorIndex, target: VectorIndex, embedder: Embeds, gens: Gens, state: GenerationState, *,
            exclusive: Callable[[], ContextManager[Any]] = contextlib.nullcontext, switch: bool = True,
            after_switch: Callable[[], None] = lambda: None, progress: Callable[[str], None] = lambda line: None,
            every: float = 5.0, page: int = PAGE, budget: float | None = None,
            clock: Callable[[], float] = time.monotonic) -> RebuildReport:
    """Copy, check, switch (see the module). ``target`` is open and its collection made; it is
    closed before the switch (``after_switch`` then runs: the owner of the index reopens).
    ``budget``: seconds of copying, after which it stops between two pages (``Paused``)."""
    started = clock()
    state.total = active.count()
    state.state, state.detail, state.started_at = "building", "", time.time()
    gens.save_state(state)
    progress(f"rebuilding {state.name} with {state.provider}:{state.model} from {state.total} stored chunks")
    done = embedded = 0
    last = clock()
    for chunks in _pages(active, page):
        have = target.have_ids([c.id for c in chunks])    # type: ignore[attr-defined]
        todo = [c for c in chunks if c.id not in have]
        _embed_into(target, embedder, todo)
        done += len(chunks)
        embedded += len(todo)
        state.done = done
        gens.save_state(state)
        if budget is not None and clock() - started >= budget and done < state.total:
            progress(f"  {done}/{state.total} chunks; pausing at the time budget ({budget:g} s), to continue")
            raise Paused(f"{done}/{state.total} chunks copied in {budget:g} s")
        if clock() - last >= every:
            last = clock()
            rate = embedded / max(last - started, 1e-9)
            progress(f"  {done}/{state.total} chunks ({100 * done // max(state.total, 1)}%), "
                     f"{embedded} embedded now, {rate:.0f}/s")
    state.state, state.built_at = "complete", time.time()
    gens.save_state(state)
    progress(f"  {done}/{state.total} chunks written; checking against the active generation")
    recopied = recopy(active, target, embedder, compare(active, target).docs())
    with exclusive():
        diff = compare(active, target)
        if diff:
            recopied += recopy(active, target, embedder, diff.docs())
            diff = compare(active, target)
        if diff:
            state.state, state.detail = "complete", f"check refused: {diff.describe()}"
            gens.save_state(state)
            raise SwitchRefused(f"the new generation {state.name} differs from the active one ({diff.describe()}): "
                                "the index changed during the rebuild; nothing was switched, run "
                                "`chatops index rebuild` again (it continues)")
        state.state, state.checked_at, state.detail = "checked", time.time(), ""
        state.done = state.total = diff.points
        gens.save_state(state)
        target.close()
        if switch:
            gens.switch(state.name)
            after_switch()
    report = RebuildReport(generation=state.name, points=diff.points, embedded=embedded, skipped=done - embedded,
                           recopied=recopied, documents=diff.documents, seconds=clock() - started, switched=switch)
    progress(report.summary())
    return report
