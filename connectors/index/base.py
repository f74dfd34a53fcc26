"""The index interface and the records that cross it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from chatops.access import Acl, Audience


class IndexBusy(Exception):
    """The embedded index folder is held by another process."""

    @classmethod
    def at(cls, path: Path) -> "IndexBusy":
        return cls(f"the embedded index at {path} is open in another process (a running worker?); "
                   "stop it, or point QDRANT_URL at a Qdrant server")


def cosine(a: Sequence[float], b: Sequence[float] | None) -> float:
    """Cosine similarity of a query and a stored vector (0 when the vector is missing)."""
    if b is None or len(b) == 0:
        return 0.0
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
    return float(va @ vb) / (na * nb) if na and nb else 0.0


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


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float              # the ranking score (fused, not comparable across queries)
    similarity: float = 0.0   # cosine similarity of query and chunk (comparable; used as a floor)
    # The chunk's dense vector as stored, when the index returned it (pseudo-relevance feedback).
    vector: Sequence[float] | None = field(default=None, compare=False, repr=False)


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

    def search(self, query: Query, audience: Audience, *, limit: int, candidates: int,
               mode: str = "hybrid") -> list[Hit]:
        """``mode``: "hybrid" (dense + sparse fused by RRF in the engine), "dense" or "sparse"
        (raw scores). Every mode applies the audience filter."""
        ...

    def count(self) -> int: ...

    def close(self) -> None: ...
