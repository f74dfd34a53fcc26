"""The index and the embedder of its active generation, as one pair that follows a switch.

A running process (a worker, ``chatops ask``) answers from the active generation
(connectors/index/generations.py). ``SwitchingIndex`` looks at the pointer (a ``stat`` of
``active.json``, or the server's alias) at most every ``poll`` seconds; when it moved, it opens
the new generation *and* the embedder that built it (its recorded provider and model), then
swaps both at once. The previous pair stays open ``grace`` seconds for questions in flight.

A question is never embedded with one model and searched in a collection built by another: the
vectors ``SwitchingIndex.embedder`` returns carry the name of the generation whose embedder made
them (``Tagged``), and a search goes to that generation (or, if it was closed meanwhile, fails
as a transient error and is asked again). Vectors without the tag (made by an embedder of their
own: the configured one) are taken only while the first generation is active, and must have its
length. Writes follow the same rule: vectors made for a
generation that is no longer active are made again with the active one's embedder.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from chatops.errors import TransientError
from connectors.embeddings.base import Embedder, EmbedderId, WrongEmbedder
from connectors.index.base import Built, Chunk, Query, SparseVec, VectorIndex

log = logging.getLogger(__name__)


class GenerationChanged(TransientError):
    """The index switched to another generation while this question was being answered."""

    service = "the index (it switched to a new generation)"


class Tagged(list):
    """Vectors (or one vector) made by the embedder of generation ``generation``."""

    generation: str | None = None

    @classmethod
    def of(cls, values, generation: str) -> "Tagged":
        out = cls(values)
        out.generation = generation
        return out


class Deferred:
    """An embedder fetched on each use (``get()``), not kept: its owner may drop and rebuild it."""

    def __init__(self, get: Callable[[], Embedder]):
        self._get = get

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        return getattr(self._get(), item)


@dataclass
class Pair:
    name: str
    index: VectorIndex
    embedder: Embedder
    retired_at: float | None = None


class SwitchingEmbedder:
    """The active generation's embedder, its vectors tagged (see the module)."""

    def __init__(self, owner: "SwitchingIndex"):
        self._owner = owner

    @property
    def provider(self) -> str:
        return getattr(self._owner.current().embedder, "provider", "local")

    @property
    def name(self) -> str | None:
        return getattr(self._owner.current().embedder, "name", None)

    @property
    def dim(self) -> int:
        return self._owner.current().embedder.dim

    def embed_query(self, text: str):
        pair = self._owner.current()
        dense, sparse = pair.embedder.embed_query(text)
        return Tagged.of(dense, pair.name), sparse

    def embed_documents(self, texts: Sequence[str]):
        pair = self._owner.current()
        dense, sparse = pair.embedder.embed_documents(texts)
        return Tagged.of(dense, pair.name), sparse

    def embed_dense(self, texts: Sequence[str]):
        pair = self._owner.current()
        return Tagged.of(pair.embedder.embed_dense(texts), pair.name)

    def embed_sparse(self, texts: Sequence[str]) -> list[SparseVec]:
        return self._owner.current().embedder.embed_sparse(texts)

    def __getattr__(self, item):   # a provider's extras (warm-up, close...): the active one's
        return getattr(self._owner.current().embedder, item)


class SwitchingIndex:
    """A ``VectorIndex`` over the active generation that follows a switch (see the module).

    ``open_pair(name)``: that generation's index and the embedder that built it (refusing a
    mismatch); ``stamp()``: changes when the pointer moves; ``active()``: the pointer's name."""

    def __init__(self, first: Pair, *, open_pair: Callable[[str], Pair], stamp: Callable[[], object],
                 active: Callable[[], str], poll: float = 2.0, grace: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self._current = first
        self._first = first.name      # untagged vectors are the configured embedder's: this one's only
        self._previous: Pair | None = None
        self._open_pair, self._stamp_of, self._active_of = open_pair, stamp, active
        self._poll, self._grace, self._clock = poll, grace, clock
        self._stamp = stamp()
        self._checked = clock()
        self._writes = threading.RLock()     # writes, and the switch (rebuild.exclusive)
        self._swap = threading.Lock()
        self._reloading = threading.Lock()
        self._last_failure: str | None = None
        self.embedder = SwitchingEmbedder(self)

    # -- following the pointer -------------------------------------------------------------

    def current(self) -> Pair:
        now = self._clock()
        if now - self._checked >= self._poll:
            self._checked = now
            self._follow()
        return self._current

    def generation(self) -> str:
        return self._current.name

    def _follow(self) -> None:
        try:
            stamp = self._stamp_of()
            if stamp == self._stamp:
                self._close_retired()
                return
            self.reload(stamp, wait=False)
        except Exception as exc:   # the old pair answers on; the next poll tries again (logged once per reason)
            why = f"{type(exc).__name__}: {exc}"
            if why != self._last_failure:
                self._last_failure = why
                log.exception("could not follow the index's switch to a new generation; still answering from %s",
                              self._current.name)

    def reload(self, stamp: object = None, *, wait: bool = True) -> None:
        """Open the active generation (and its embedder) if it is not the current one, and swap.
        The new pair is opened (a model loaded) outside the locks: questions keep being answered
        from the current one meanwhile. ``wait=False`` (a question's poll): return at once if
        another thread is at it."""
        if not self._reloading.acquire(blocking=wait):
            return
        try:
            name = self._active_of()
            stamp = self._stamp_of() if stamp is None else stamp
            if name != self._current.name:
                fresh = self._open_pair(name)
                with self._swap:
                    old, self._previous = self._previous, self._current
                    self._previous.retired_at = self._clock()
                    self._current = fresh
                if old is not None:
                    _close(old)
                timer = threading.Timer(self._grace + 0.1, self._close_retired)   # also when no question comes
                timer.daemon = True
                timer.start()
                log.info("index switched to generation %s (%s)", name, EmbedderId.of(fresh.embedder).describe())
            self._stamp = stamp
        finally:
            self._reloading.release()

    def _close_retired(self) -> None:
        prev = self._previous
        if prev is not None and prev.retired_at is not None and self._clock() - prev.retired_at >= self._grace:
            with self._swap:
                if self._previous is prev:
                    self._previous = None
                    _close(prev)

    def writes_paused(self):
        """Writes wait while this is held (the rebuild's final check and switch)."""
        return self._writes

    def _for_vectors(self, vectors, what: str) -> Pair:
        tag = getattr(vectors, "generation", None)
        current = self.current()
        if tag is None and current.name != self._first:
            # untagged vectors come from the configured embedder (the first generation's), not this one's
            raise GenerationChanged(f"{what} made outside the index's embedder, after the index switched from "
                                    f"{self._first} to {current.name}; ask again")
        if tag is None or tag == current.name:
            if tag is None and vectors is not None and len(vectors) and _length(vectors, what) != current.embedder.dim:
                raise WrongEmbedder(f"{what} of {_length(vectors, what)} dims for generation {current.name} "
                                    f"({current.embedder.dim} dims)")
            return current
        prev = self._previous
        if prev is not None and tag == prev.name:
            return prev
        raise GenerationChanged(f"the index switched from generation {tag} to {current.name}; ask again")

    # -- the VectorIndex protocol --------------------------------------------------------------

    def search(self, query: Query, audience, *, limit: int, candidates: int, mode: str = "hybrid", **kw):
        pair = self._for_vectors(query.dense, "a query vector")
        return pair.index.search(query, audience, limit=limit, candidates=candidates, mode=mode, **kw)

    def upsert(self, chunks: Sequence[Chunk], dense, sparse: Sequence[SparseVec]) -> None:
        with self._writes:
            current = self.current()
            made_for = getattr(dense, "generation", None) or self._first   # untagged: the configured embedder's
            if made_for != current.name:   # made for a generation gone by: embedded again for this one
                dense, sparse = current.embedder.embed_documents([c.embedding_text() for c in chunks])
            elif getattr(dense, "generation", None) is None and len(dense):
                self._for_vectors(dense, "vectors")
            current.index.upsert(chunks, dense, sparse)

    def delete_documents(self, source: str, doc_ids: Sequence[str]) -> None:
        with self._writes:
            self.current().index.delete_documents(source, doc_ids)

    def update_documents(self, source: str, doc_ids: Sequence[str], payload: dict) -> None:
        with self._writes:
            self.current().index.update_documents(source, doc_ids, payload)

    def ensure_collection(self) -> None:
        with self._writes:
            self.current().index.ensure_collection()

    def document_hashes(self, source: str) -> dict[str, str]:
        return self.current().index.document_hashes(source)

    def documents(self, source: str, doc_ids: Sequence[str]):
        return self.current().index.documents(source, doc_ids)

    def count(self) -> int:
        return self.current().index.count()

    def built_with(self) -> Built | None:
        return self.current().index.built_with()

    def optimize(self) -> bool:
        with self._writes:
            return self.current().index.optimize()

    def scroll_chunks(self, offset=None, limit: int = 256):
        return self.current().index.scroll_chunks(offset, limit)   # type: ignore[attr-defined]

    def have_ids(self, ids: Sequence[str]) -> set[str]:
        return self.current().index.have_ids(ids)   # type: ignore[attr-defined]

    def close(self) -> None:
        with self._swap:
            for pair in (self._previous, self._current):
                if pair is not None:
                    _close(pair)
            self._previous = None

    def __getattr__(self, item):   # an engine's extras (kind, search(..., exact=)...): the active one's
        if item.startswith("_"):
            raise AttributeError(item)
        return getattr(self._current.index, item)


def _length(vectors, what: str) -> int:
    first = vectors[0] if what != "a query vector" else vectors
    return len(first)


def _close(pair: Pair) -> None:
    try:
        pair.index.close()
    except Exception:  # pragma: no cover - closing is best effort
        log.exception("closing generation %s failed", pair.name)
