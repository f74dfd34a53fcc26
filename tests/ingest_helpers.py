"""Helpers for ingestion tests: an embedder stand-in and what an embedded index holds."""

from __future__ import annotations

import hashlib

import qdrant_edge as qe

from connectors.index.base import SparseVec

DIM = 8


class HashEmbedder:
    """For tests where the vectors do not matter: deterministic, instant, no model. It keeps
    what it embedded, so a test can tell which texts were (re-)embedded."""

    dim = DIM

    def __init__(self):
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return [self._dense(t) for t in texts], [self._sparse(t) for t in texts]

    def embed_query(self, text):
        return self._dense(text), self._sparse(text)

    @staticmethod
    def _dense(text: str) -> list[float]:
        digest = hashlib.sha256(text.encode()).digest()
        return [b / 255 + 0.01 for b in digest[:DIM]]

    @staticmethod
    def _sparse(text: str) -> SparseVec:
        ids = sorted({int(hashlib.md5(w.encode()).hexdigest()[:6], 16) for w in text.lower().split()})
        return SparseVec(tuple(ids), tuple(1.0 for _ in ids))


def index_points(index) -> dict[str, tuple[str, str, int]]:
    """Every point of an :class:`EdgeIndex`: chunk id -> (doc id, doc hash, position)."""
    out: dict[str, tuple[str, str, int]] = {}
    if index._shard is None:
        return out
    offset = None
    while True:
        records, offset = index._shard.scroll(qe.ScrollRequest(
            offset=offset, limit=1000, with_payload=["doc_id", "doc_hash", "position"], with_vector=False))
        for r in records:
            p = r.payload or {}
            out[str(r.id)] = (p["doc_id"], p["doc_hash"], int(p["position"]))
        if offset is None:
            return out
