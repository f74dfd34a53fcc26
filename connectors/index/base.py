"""The index interface and the records that cross it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from chatops.access import Acl, Audience
from chatops.errors import TransientError

log = logging.getLogger(__name__)


class IndexUnavailable(TransientError):
    """The index server did not answer, or answered 429/5xx: trying again later may work."""

    service = "the index"


class IndexBusy(Exception):
    """The embedded index folder is held by another process."""

    @classmethod
    def at(cls, path: Path) -> "IndexBusy":
        return cls(f"the embedded index at {path} is open in another process (a running worker?); "
                   "stop it, or point QDRANT_URL at a Qdrant server")


@dataclass(frozen=True)
class SparseVec:
    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chunk:
    id: str               # stable UUID derived from (source, doc, position)
    source: str           # connector root id, e.g. "fs:/srv/docs"
    doc_id: str           # document path relative to the root (filesystem connector)
    title: str
    heading: str
    text: str
    position: int
    acl: Acl
    doc_hash: str
    url: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def embedding_text(self) -> str:
        head = self.title if not self.heading or self.heading == self.title else f"{self.title} — {self.heading}"
        return f"{head}\n{self.text}"

    def to_payload(self) -> dict:
        return {
            "source": self.source,
            "doc_id": self.doc_id,
            "title": self.title,
            "heading": self.heading,
            "text": self.text,
            "position": self.position,
            "doc_hash": self.doc_hash,
            "url": self.url,
            **self.acl.to_payload(),
        }

    @classmethod
    def from_payload(cls, point_id: str, p: dict) -> "Chunk":
        return cls(
            id=str(point_id), source=p.get("source", ""), doc_id=p.get("doc_id", ""),
            title=p.get("title", ""), heading=p.get("heading", ""), text=p.get("text", ""),
            position=int(p.get("position", 0)), acl=Acl.from_payload(p),
            doc_hash=p.get("doc_hash", ""), url=p.get("url"),
        )


DOCUMENT_FIELDS = ("doc_id", "doc_hash", "acl_groups", "acl_users", "acl_public")


@dataclass(frozen=True)
class DocumentState:
    """A document as indexed now: its content hash and who may see it."""

    doc_hash: str
    acl: Acl

    @classmethod
    def from_payload(cls, payload: dict) -> "DocumentState":
        return cls(doc_hash=str(payload.get("doc_hash", "")), acl=Acl.from_payload(payload))


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float              # the ranking score (fused, not comparable across queries)
    similarity: float = 0.0   # cosine similarity of query and chunk (comparable; used as a floor)
    # The chunk's dense vector as stored, when the index returned it (pseudo-relevance feedback).
    vector: Sequence[float] | None = field(default=None, compare=False, repr=False)
    # The second stage's relevance score when a reranker ranked it (usecases/rerank.py; comparable
    # across one reranker's answers, not across rerankers); None: not reranked.
    rerank_score: float | None = None


def checked_hits(audience: Audience, query: Sequence[float],
                 rows: Iterable[tuple[object, dict | None, float, Sequence[float] | None]]) -> list[Hit]:
    """Hits from an engine's (id, payload, score, dense vector) rows, each re-checked against the
    audience in Python, with the cosine similarity to ``query`` computed for all rows at once."""
    kept: list[tuple[Chunk, float, Sequence[float] | None]] = []
    for point_id, payload, score, vector in rows:
        chunk = Chunk.from_payload(point_id, payload or {})
        if not audience.may_use(chunk.acl, chunk.source):
            # The filter and the Python rule disagree: never show it, and say so loudly.
            log.error("index returned a chunk the audience may not see; dropped", extra={"doc_id": chunk.doc_id})
            continue
        kept.append((chunk, float(score), vector))
    with_vectors = [i for i, (_, _, v) in enumerate(kept) if v is not None and len(v)]
    similarity = [0.0] * len(kept)
    if with_vectors:
        m = np.asarray([kept[i][2] for i in with_vectors], dtype=np.float64)
        q = np.asarray(query, dtype=np.float64)
        norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
        sims = (m @ q) / np.where(norms > 0, norms, 1.0)
        for row, (i, s) in enumerate(zip(with_vectors, sims.tolist())):
            similarity[i] = s
            kept[i] = (kept[i][0], kept[i][1], m[row])  # as an array: feedback stacks them again
    return [Hit(chunk=c, score=s, similarity=sim, vector=v) for (c, s, v), sim in zip(kept, similarity)]


@dataclass(frozen=True)
class FilterTerms:
    """How one engine spells a payload filter: its own filter, condition and match classes."""

    filter: Callable[..., Any]               # filter(must=[...]) or filter(should=[...])
    field: Callable[[str, Any], Any]         # field(key, match)
    is_true: Callable[[], Any]               # a match of the boolean True
    any_of: Callable[[list[str]], Any]       # a match of any of these keywords


def acl_filter_with(audience: Audience, terms: FilterTerms):
    """The audience rule (``Audience.filter_terms``) as an engine's filter: a ``must`` over one
    ``should`` group per person (public, or the person's email among the users, or one of the
    person's groups), and, when sources are withheld, one more (public, or not of those sources);
    public only for a public-only or empty audience; never an empty match. An audience limited to
    some sources (``Audience.sources``) also must match one of them."""
    public = terms.field("acl_public", terms.is_true())
    # A channel limited to some sources: only their documents, public ones included (an empty
    # list matches nothing, which is what it means).
    limit = ([terms.field("source", terms.any_of(sorted(audience.sources) or ["\x00none"]))]
             if audience.sources is not None else [])
    people = audience.filter_terms()
    if people is None:
        return terms.filter(must=[public, *limit])
    per_person = list(limit)
    if audience.withheld:   # public, or from a source whose permissions are fresh
        per_person.append(terms.filter(should=[
            public, terms.filter(must_not=[terms.field("source", terms.any_of(sorted(audience.withheld)))])]))
    for email, groups in people:
        should: list = [public]
        if email:
            should.append(terms.field("acl_users", terms.any_of([email])))
        if groups:
            should.append(terms.field("acl_groups", terms.any_of(list(groups))))
        per_person.append(terms.filter(should=should))
    return terms.filter(must=per_person)


@dataclass(frozen=True)
class Built:
    """What an index was built with: the embedding model's name, its vectors' dimension and the
    embedding provider (None in an index recorded before providers: the local one built it)."""

    embedder: str | None
    dim: int
    provider: str | None = None


EMBEDDER_FILE = "embedder.json"     # beside an embedded index's files: its Built


def write_built(folder: Path, built: Built) -> None:
    (folder / EMBEDDER_FILE).write_text(json.dumps({"embedder": built.embedder, "dim": built.dim,
                                                    "provider": built.provider}))


def read_built(folder: Path) -> Built | None:
    """An embedded index's record, read without opening the index (a worker may hold it)."""
    try:
        raw = json.loads((folder / EMBEDDER_FILE).read_text())
        return Built(raw.get("embedder"), int(raw["dim"]), raw.get("provider"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class Query:
    dense: Sequence[float]
    sparse: SparseVec | None


class VectorIndex(Protocol):
    def ensure_collection(self) -> None: ...

    def upsert(self, chunks: Sequence[Chunk], dense: Sequence[Sequence[float]],
               sparse: Sequence[SparseVec]) -> None: ...

    def delete_documents(self, source: str, doc_ids: Sequence[str]) -> None: ...

    def document_hashes(self, source: str) -> dict[str, str]:
        """doc_id -> doc_hash of everything indexed for one source root."""
        ...

    def documents(self, source: str, doc_ids: Sequence[str]) -> dict[str, DocumentState]:
        """doc_id -> its hash and ACL as indexed now, for those of these documents that are there."""
        ...

    def update_documents(self, source: str, doc_ids: Sequence[str], payload: dict) -> None:
        """Set these payload fields on every chunk of these documents, in place: a new ACL
        (``Acl.to_payload()``) or a new title and link. No re-embedding."""
        ...

    def search(self, query: Query, audience: Audience, *, limit: int, candidates: int,
               mode: str = "hybrid") -> list[Hit]:
        """``mode``: "hybrid" (dense + sparse fused by RRF in the engine), "dense" or "sparse"
        (raw scores). Every mode applies the audience filter."""
        ...

    def count(self) -> int: ...

    def built_with(self) -> "Built | None":
        """The embedder the collection was created for (recorded at creation); None when it does
        not exist yet, or was created before chatops recorded it."""
        ...

    def optimize(self) -> bool:
        """Build what makes searches fast (HNSW...) where the engine builds it apart; returns
        whether anything was built. Slow (minutes): never in the worker."""
        ...

    def close(self) -> None: ...
