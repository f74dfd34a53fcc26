"""The index on qdrant-client: a Qdrant server or cluster (``QDRANT_URL``) or
qdrant-client's local mode on disk (``QDRANT_PATH``).

One collection, two named vectors: ``dense`` (cosine) and ``bm25`` (sparse,
IDF computed by Qdrant). Every search carries the audience filter, in each
prefetch and in the fused query, and every returned hit is checked again in
Python against the same audience.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from qdrant_client import QdrantClient, models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from chatops.access import Audience
from connectors.index.base import (Built, Chunk, FilterTerms, Hit, IndexBusy, IndexUnavailable, Query, SparseVec,
                                   DOCUMENT_FIELDS, DocumentState, acl_filter_with, checked_hits)

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "bm25"
_ACL_FIELDS = {
    "acl_groups": models.PayloadSchemaType.KEYWORD,
    "acl_users": models.PayloadSchemaType.KEYWORD,
    "acl_public": models.PayloadSchemaType.BOOL,
    "source": models.PayloadSchemaType.KEYWORD,
    "doc_id": models.PayloadSchemaType.KEYWORD,
}


def is_transient_error(exc: BaseException) -> bool:
    """A Qdrant server that may answer if asked again: 429, 5xx, or no answer at all."""
    if isinstance(exc, ResourceExhaustedResponse):      # the client's own type for 429 + Retry-After
        return True
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, ResponseHandlingException)


TERMS = FilterTerms(filter=models.Filter, field=lambda key, match: models.FieldCondition(key=key, match=match),
                    is_true=lambda: models.MatchValue(value=True), any_of=lambda values: models.MatchAny(any=values))


def acl_filter(audience: Audience) -> models.Filter:
    """The Qdrant filter for 'every member of the audience may see this chunk'."""
    return acl_filter_with(audience, TERMS)


class QdrantIndex:
    @classmethod
    def local(cls, *, path: Path, dim: int, collection: str = "chatops", embedder: str | None = None,
              provider: str | None = None, **_) -> "QdrantIndex":
        """qdrant-client's local mode in a folder (the registry's "local" engine)."""
        return cls(collection=collection, dim=dim, path=path, embedder=embedder, provider=provider)

    @classmethod
    def server(cls, *, url: str, dim: int, collection: str = "chatops", api_key: str | None = None,
               embedder: str | None = None, provider: str | None = None, **_) -> "QdrantIndex":
        """A Qdrant server or cluster (the registry's "server" engine)."""
        return cls(collection=collection, dim=dim, url=url, api_key=api_key, embedder=embedder, provider=provider)

    def __init__(self, *, collection: str, dim: int, url: str | None = None,
                 path: Path | None = None, api_key: str | None = None, rrf_k: int = 60,
                 timeout: int = 10, embedder: str | None = None, provider: str | None = None):
        if url:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
            self.kind = "server"
        else:
            assert path is not None, "either url or path"
            Path(path).mkdir(parents=True, exist_ok=True)
            try:
                self._client = QdrantClient(path=str(path))
            except (RuntimeError, BlockingIOError) as exc:
                if "already accessed" in str(exc) or isinstance(exc, BlockingIOError):
                    raise IndexBusy.at(path) from None
                raise
            self.kind = "local"
        self._collection = collection
        self._dim = dim
        self._embedder = embedder     # recorded in the collection's metadata when it is created
        self._provider = provider
        self._rrf_k = rrf_k
        # Local mode is plain Python objects; serialise access from worker threads.
        self._lock = threading.RLock()

    @contextmanager
    def _calling(self):
        """One call at a time (local mode is plain Python objects); a server that did not answer,
        or answered 429/5xx, is ``IndexUnavailable`` (task runners retry it)."""
        with self._lock:
            try:
                yield
            except (ResourceExhaustedResponse, UnexpectedResponse, ResponseHandlingException) as exc:
                if is_transient_error(exc):
                    raise IndexUnavailable(f"the Qdrant server did not answer: {exc}") from exc
                raise

    def ensure_collection(self) -> None:
        with self._calling():
            if not self._client.collection_exists(self._collection):
                self._client.create_collection(
                    self._collection,
                    vectors_config={DENSE: models.VectorParams(size=self._dim,
                                                               distance=models.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    metadata={"chatops_embedder": self._embedder, "chatops_dim": self._dim,
                              "chatops_provider": self._provider},
                )
            if self.kind == "server":  # local mode has no payload indexes (it scans)
                for field_name, schema in _ACL_FIELDS.items():
                    self._client.create_payload_index(self._collection, field_name, field_schema=schema)

    def built_with(self) -> Built | None:
        with self._calling():
            if not self._client.collection_exists(self._collection):
                return None
            config = self._client.get_collection(self._collection).config
        metadata = config.metadata or {}
        vectors = config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else vectors
        if "chatops_dim" not in metadata:
            return None
        return Built(metadata.get("chatops_embedder"), int(getattr(dense, "size", metadata["chatops_dim"])),
                     metadata.get("chatops_provider"))

    def upsert(self, chunks: Sequence[Chunk], dense, sparse: Sequence[SparseVec]) -> None:
        points = []
        for chunk, d, s in zip(chunks, dense, sparse, strict=True):
            vector = {DENSE: [float(x) for x in d]}
            if s.indices:
                vector[SPARSE] = models.SparseVector(indices=list(s.indices), values=list(s.values))
            points.append(models.PointStruct(id=chunk.id, vector=vector, payload=chunk.to_payload()))
        with self._calling():
            for start in range(0, len(points), 256):
                self._client.upsert(self._collection, points=points[start:start + 256], wait=True)

    def delete_documents(self, source: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        flt = _documents(source, doc_ids)
        with self._calling():
            self._client.delete(self._collection, points_selector=models.FilterSelector(filter=flt), wait=True)

    def update_documents(self, source: str, doc_ids: Sequence[str], payload: dict) -> None:
        if not doc_ids or not payload:
            return
        flt = _documents(source, doc_ids)
        with self._calling():
            if self._client.collection_exists(self._collection):
                self._client.set_payload(self._collection, payload=payload, points=flt, wait=True)

    def document_hashes(self, source: str) -> dict[str, str]:
        flt = models.Filter(must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))])
        out: dict[str, str] = {}
        offset = None
        with self._calling():
            if not self._client.collection_exists(self._collection):
                return out
            while True:
                points, offset = self._client.scroll(
                    self._collection, scroll_filter=flt, limit=1000, offset=offset,
                    with_payload=["doc_id", "doc_hash"], with_vectors=False,
                )
                for p in points:
                    out[p.payload["doc_id"]] = p.payload["doc_hash"]
                if offset is None:
                    return out

    def documents(self, source: str, doc_ids: Sequence[str]) -> dict[str, DocumentState]:
        flt = models.Filter(must=[
            models.FieldCondition(key="source", match=models.MatchValue(value=source)),
            models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))])
        out: dict[str, DocumentState] = {}
        offset = None
        with self._calling():
            if not doc_ids or not self._client.collection_exists(self._collection):
                return out
            while True:
                points, offset = self._client.scroll(
                    self._collection, scroll_filter=flt, limit=256, offset=offset,
                    with_payload=list(DOCUMENT_FIELDS), with_vectors=False)
                for p in points:
                    out.setdefault(p.payload["doc_id"], DocumentState.from_payload(p.payload))
                if offset is None:
                    return out

    def search(self, query: Query, audience: Audience, *, limit: int, candidates: int,
               mode: str = "hybrid") -> list[Hit]:
        flt = acl_filter(audience)
        dense = [float(x) for x in query.dense]
        has_sparse = query.sparse is not None and bool(query.sparse.indices)
        if mode == "sparse" and not has_sparse:
            return []
        with self._calling():
            if mode == "sparse":
                result = self._client.query_points(
                    self._collection, using=SPARSE, query_filter=flt, limit=limit, with_payload=True,
                    with_vectors=[DENSE], query=models.SparseVector(indices=list(query.sparse.indices),
                                                                    values=list(query.sparse.values)),
                )
            elif mode == "hybrid" and has_sparse:
                sparse = models.SparseVector(indices=list(query.sparse.indices),
                                             values=list(query.sparse.values))
                result = self._client.query_points(
                    self._collection,
                    prefetch=[
                        models.Prefetch(query=dense, using=DENSE, filter=flt, limit=candidates),
                        models.Prefetch(query=sparse, using=SPARSE, filter=flt, limit=candidates),
                    ],
                    query=models.RrfQuery(rrf=models.Rrf(k=self._rrf_k)),
                    query_filter=flt, limit=limit, with_payload=True, with_vectors=[DENSE],
                )
            else:
                result = self._client.query_points(
                    self._collection, query=dense, using=DENSE, query_filter=flt,
                    limit=limit, with_payload=True, with_vectors=[DENSE],
                )
        return checked_hits(audience, dense, (
            (point.id, point.payload, point.score, (point.vector or {}).get(DENSE)) for point in result.points))

    def scroll_chunks(self, offset=None, limit: int = 256) -> tuple[list[Chunk], object]:
        """One page of every chunk as stored (payload, no vectors), and the next page's offset
        (None after the last): a rebuild reads the stored text from here."""
        with self._calling():
            if not self._client.collection_exists(self._collection):
                return [], None
            points, nxt = self._client.scroll(self._collection, limit=limit, offset=offset, with_payload=True,
                                              with_vectors=False)
        return [Chunk.from_payload(p.id, p.payload or {}) for p in points], nxt

    def have_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these point ids are stored."""
        with self._calling():
            if not ids or not self._client.collection_exists(self._collection):
                return set()
            points = self._client.retrieve(self._collection, ids=list(ids), with_payload=False, with_vectors=False)
        return {str(p.id) for p in points}

    def count(self) -> int:
        with self._calling():
            if not self._client.collection_exists(self._collection):
                return 0
            return self._client.count(self._collection, exact=True).count

    def optimize(self) -> bool:
        """Nothing to build: qdrant-client keeps its structures up to date as it writes."""
        return False

    def close(self) -> None:
        with self._lock:
            try:
                self._client.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass


def _documents(source: str, doc_ids: Sequence[str]) -> models.Filter:
    """These documents of one source (every chunk of each)."""
    return models.Filter(must=[
        models.FieldCondition(key="source", match=models.MatchValue(value=source)),
        models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))),
    ])
