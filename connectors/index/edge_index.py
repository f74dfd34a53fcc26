"""The index on Qdrant Edge (``qdrant-edge-py``): Qdrant's engine in this process.

Same contract as :class:`connectors.index.qdrant_index.QdrantIndex`: one shard
with two named vectors, ``dense`` (cosine) and ``bm25`` (sparse, IDF computed
by the engine); payload indexes on the ACL fields and on ``source``/``doc_id``;
every search carries the audience filter in each prefetch and in the fused
query, and every returned hit is checked again in Python against the same
audience.

Things about qdrant-edge 0.9 this module works around or relies on:

* ``MatchValue(True)`` never matches a boolean payload: the binding converts a
  Python ``bool`` to the integer 1 (``bool`` is an ``int`` subclass and the
  integer variant is tried first). ``numpy.True_`` is not an ``int`` and comes
  through as a real boolean, so the public condition is built with it.
* The engine takes a lock on the shard's WAL: a second ``EdgeShard`` on the
  same folder, in this process or another, fails with a plain ``Exception``
  ("... WouldBlock"). We also hold our own ``flock`` on ``edge.lock`` from
  construction to ``close()``, so a second opener gets :class:`IndexBusy`
  before touching the engine, whatever the engine's message says, and two
  processes cannot both decide to *create* the shard.
* HNSW is built only by ``optimize()`` (there is no background optimizer);
  until then searches are exact (brute force over the payload-index-filtered
  points); after it, too, a filter matching less than ``full_scan_threshold_kb``
  of vectors is searched exactly (see :data:`FULL_SCAN_THRESHOLD_KB`).
  ``optimize()`` holds the GIL for its whole run (minutes at 100k points), so it
  is never called implicitly: call :meth:`EdgeIndex.optimize` after a bulk
  ingest, from the process that ingests.
* ``query``/``count``/``scroll`` let other Python threads run (measured: a
  spinning thread keeps ~40% of its speed during queries, ~0% during
  ``optimize()``, ~2% during ``flush()``) and the engine guards its segments with
  its own locks; concurrent reads plus one writer ran without errors. So reads
  are not serialised here; writes are (one ``threading.Lock``), and ``close()``
  waits for calls in flight.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import qdrant_edge as qe

from chatops.access import Audience
from connectors.index.base import (DOCUMENT_FIELDS, Built, Chunk, DocumentState, FilterTerms, Hit, IndexBusy, Query,
                                   SparseVec, acl_filter_with, checked_hits, read_built, write_built)

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "bm25"
SHARD_DIR = "shard"
LOCK_FILE = "edge.lock"
_ACL_FIELDS = {
    "acl_groups": qe.PayloadSchemaType.Keyword,
    "acl_users": qe.PayloadSchemaType.Keyword,
    "acl_public": qe.PayloadSchemaType.Bool,
    "source": qe.PayloadSchemaType.Keyword,
    "doc_id": qe.PayloadSchemaType.Keyword,
}
_WRITE_BATCH = 256
# A filter matching less than this much dense-vector data (KB; 200,000 KB is about 133,000
# vectors of 384 floats), in a segment, is answered by an exact scan of the points the payload
# index selects, not by HNSW (which optimize() still builds, for broader filters). The engine's
# default (10,000 KB) sends broader ACL filters to filtered HNSW, which lost results in
# benchmarks/filtered_recall.py at 100k points: recall@10 0.63 / 0.24 with 10% / 50% visible
# (uniform random vectors), 0.987 / 0.996 (clustered ones); no hnsw_ef, ACORN, m or payload_m
# setting reached 0.99 for less than the exact scan costs (~8 / ~21 ms p50 there, 2 cores).
FULL_SCAN_THRESHOLD_KB = 200_000
_HNSW_M, _HNSW_EF_CONSTRUCT = 16, 100  # the engine's defaults, restated: HnswIndexConfig needs them
# Dense searches on an optimised shard read the int8 copy of the vectors, then rescore twice the
# asked-for candidates with the float vectors. Without the explicit rescore the engine's answer
# lost results (recall@10 0.944 against numpy at 100k clustered vectors, 44 % visible); with it,
# 1.0, and a filtered search took 3.3 ms p50 instead of 8.8 ms on floats (100k chunks, 44 % visible;
# benchmarks/scale.py engine).
_RESCORED = qe.SearchParams(quantization=qe.QuantizationSearchParams(rescore=True, oversampling=2.0))
_FULL_VECTORS = qe.QuantizationSearchParams(ignore=True)  # exact=True means exact: no int8 copy

# See the module docstring: a Python bool would become MatchValue(1) and match nothing.
_TRUE = np.True_


def _is_true() -> qe.MatchValue:
    match = qe.MatchValue(_TRUE)
    if not isinstance(match.value, bool):  # pragma: no cover - guards a binding change
        raise RuntimeError("qdrant_edge no longer builds a boolean MatchValue from numpy.True_; "
                           "the acl_public condition would match nothing")
    return match


TERMS = FilterTerms(filter=qe.Filter, field=lambda key, match: qe.FieldCondition(key=key, match=match),
                    is_true=_is_true, any_of=qe.MatchAny)


def acl_filter(audience: Audience) -> qe.Filter:
    """The Qdrant Edge filter for 'every member of the audience may see this chunk' (the one
    translation in connectors.index.base, with Edge's classes)."""
    return acl_filter_with(audience, TERMS)


class _Gate:
    """Shared/exclusive gate: reads and writes share it, ``close`` takes it alone
    (waits for calls in flight, then no new call gets in)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._closing = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            if self._closing:
                raise RuntimeError("the edge index is closed")
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    def close(self) -> bool:
        """Wait until idle and shut the gate; False if it was already shut."""
        with self._cond:
            if self._closing:
                return False
            self._closing = True
            self._cond.wait_for(lambda: self._active == 0)
            return True


class EdgeIndex:
    @classmethod
    def at(cls, *, path: Path, dim: int, embedder: str | None = None, provider: str | None = None,
           **_) -> "EdgeIndex":
        """The registry's opener (connectors/index/registry.py)."""
        return cls(path=path, dim=dim, embedder=embedder, provider=provider)

    kind = "edge"

    def __init__(self, *, path: Path, dim: int, rrf_k: int = 60, exact: bool = False,
                 indexing_threshold_kb: int | None = None,
                 full_scan_threshold_kb: int | None = FULL_SCAN_THRESHOLD_KB, quantization: bool = True,
                 embedder: str | None = None, provider: str | None = None):
        """Open (or prepare to create) the shard under ``path``.

        ``exact`` makes every dense search a full scan (``SearchParams(exact=True)``),
        ignoring HNSW: slower on a large optimised shard, for comparisons and tests
        (``search(..., exact=...)`` overrides it for one call).
        ``indexing_threshold_kb`` is the segment size above which ``optimize()`` builds
        HNSW (engine default 10,000 KB, about 6,500 vectors of 384 floats); None keeps
        what the shard has. ``full_scan_threshold_kb``: filters matching less vector data
        than this are searched exactly (:data:`FULL_SCAN_THRESHOLD_KB`); None keeps what the
        shard has (engine default 10,000 KB). A changed value reaches an existing shard's
        segments at its next ``optimize()``. ``quantization``: keep an int8 copy of the dense
        vectors in RAM (built by ``optimize()``) and search it first, then rescore twice the
        asked-for number of candidates with the full vectors (see :data:`_RESCORED`).
        """
        self._path = Path(path)
        self._shard_path = self._path / SHARD_DIR
        self._dim = dim
        self._embedder = embedder     # recorded when the shard is created (built_with)
        self._provider = provider
        self._rrf_k = rrf_k
        self._quantization = quantization
        self._approx_params: qe.SearchParams | None = _RESCORED if quantization else None
        self._exact_params = qe.SearchParams(exact=True, quantization=_FULL_VECTORS)
        self._params = self._exact_params if exact else self._approx_params
        self._indexing_threshold_kb = indexing_threshold_kb
        self._full_scan_threshold_kb = full_scan_threshold_kb
        self._write_lock = threading.Lock()
        self._gate = _Gate()
        self._path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._take_lock()
        self._shard: qe.EdgeShard | None = None
        try:
            if self._exists():
                self._shard = self._open(lambda: qe.EdgeShard.load(str(self._shard_path), self._config()))
        except BaseException:
            self._release_lock()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _take_lock(self) -> int:
        fd = os.open(self._path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise IndexBusy.at(self._path) from None
            raise
        return fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _exists(self) -> bool:
        return (self._shard_path / "edge_config.json").exists()

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self._dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            optimizers=(qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb)
                        if self._indexing_threshold_kb is not None else None),
            hnsw_config=(qe.HnswIndexConfig(m=_HNSW_M, ef_construct=_HNSW_EF_CONSTRUCT,
                                            full_scan_threshold=self._full_scan_threshold_kb)
                         if self._full_scan_threshold_kb is not None else None),
            quantization_config=(qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99,
                                                              always_ram=True)
                                 if self._quantization else None),
        )

    def _open(self, opener) -> qe.EdgeShard:
        try:
            return opener()
        except Exception as exc:  # the binding raises plain Exception for engine errors
            if "WouldBlock" in str(exc):  # the engine's own WAL lock
                raise IndexBusy.at(self._path) from None
            raise

    # -- the VectorIndex protocol ------------------------------------------------------------

    def ensure_collection(self) -> None:
        with self._gate.shared(), self._write_lock:
            if self._shard is None:
                self._shard = self._open(lambda: qe.EdgeShard.create(str(self._shard_path), self._config()))
                write_built(self._path, Built(self._embedder, self._dim, self._provider))
            have = set(self._shard.info().payload_schema)
            missing = [name for name in _ACL_FIELDS if name not in have]
            for name in missing:
                self._shard.update(qe.UpdateOperation.create_field_index(name, _ACL_FIELDS[name]))
            if missing:
                self._shard.flush()

    def upsert(self, chunks: Sequence[Chunk], dense, sparse: Sequence[SparseVec]) -> None:
        points = []
        for chunk, d, s in zip(chunks, dense, sparse, strict=True):
            vector: dict = {DENSE: [float(x) for x in d]}
            if s.indices:
                vector[SPARSE] = qe.SparseVector(list(s.indices), [float(v) for v in s.values])
            points.append(qe.Point(chunk.id, vector, chunk.to_payload()))
        if not points:
            return
        with self._gate.shared(), self._write_lock:
            shard = self._require()
            for start in range(0, len(points), _WRITE_BATCH):
                shard.update(qe.UpdateOperation.upsert_points(points[start:start + _WRITE_BATCH]))
            shard.flush()

    def delete_documents(self, source: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        flt = _documents(source, doc_ids)
        with self._gate.shared(), self._write_lock:
            if self._shard is None:
                return
            self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))
            self._shard.flush()

    def update_documents(self, source: str, doc_ids: Sequence[str], payload: dict) -> None:
        if not doc_ids or not payload:
            return
        flt = _documents(source, doc_ids)
        with self._gate.shared(), self._write_lock:
            if self._shard is None:
                return
            self._shard.update(qe.UpdateOperation.set_payload_by_filter(flt, payload))
            self._shard.flush()

    def document_hashes(self, source: str) -> dict[str, str]:
        flt = qe.Filter(must=[qe.FieldCondition(key="source", match=qe.MatchValue(source))])
        out: dict[str, str] = {}
        with self._gate.shared():
            if self._shard is None:
                return out
            offset = None
            while True:
                records, offset = self._shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=1000, filter=flt, with_payload=["doc_id", "doc_hash"],
                    with_vector=False,
                ))
                for r in records:
                    payload = r.payload or {}
                    out[payload["doc_id"]] = payload["doc_hash"]
                if offset is None:
                    return out

    def documents(self, source: str, doc_ids: Sequence[str]) -> dict[str, DocumentState]:
        flt = qe.Filter(must=[qe.FieldCondition(key="source", match=qe.MatchValue(source)),
                              qe.FieldCondition(key="doc_id", match=qe.MatchAny(list(doc_ids)))])
        out: dict[str, DocumentState] = {}
        with self._gate.shared():
            if self._shard is None or not doc_ids:
                return out
            offset = None
            while True:
                records, offset = self._shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=256, filter=flt, with_payload=list(DOCUMENT_FIELDS), with_vector=False))
                for r in records:
                    payload = r.payload or {}
                    out.setdefault(payload["doc_id"], DocumentState.from_payload(payload))
                if offset is None:
                    return out

    def search(self, query: Query, audience: Audience, *, limit: int, candidates: int,
               mode: str = "hybrid", exact: bool | None = None) -> list[Hit]:
        """``exact``: True forces a full scan of the dense search for this call, False the
        HNSW search; None (the default) follows the ``exact`` given to the constructor."""
        params = self._params if exact is None else (self._exact_params if exact else self._approx_params)
        flt = acl_filter(audience)
        dense = [float(x) for x in query.dense]
        dense_query = qe.Query.Nearest(dense, using=DENSE)
        has_sparse = query.sparse is not None and bool(query.sparse.indices)
        if mode == "sparse":
            if not has_sparse:
                return []
            sparse = qe.SparseVector(list(query.sparse.indices), [float(v) for v in query.sparse.values])
            request = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(sparse, using=SPARSE), filter=flt,
                                      with_payload=True, with_vector=[DENSE])
        elif mode == "hybrid" and has_sparse:
            sparse = qe.SparseVector(list(query.sparse.indices), [float(v) for v in query.sparse.values])
            request = qe.QueryRequest(
                limit=limit,
                prefetches=[
                    qe.Prefetch(limit=candidates, query=dense_query, filter=flt, params=params),
                    qe.Prefetch(limit=candidates, query=qe.Query.Nearest(sparse, using=SPARSE), filter=flt),
                ],
                query=qe.Fusion.Rrf(k=self._rrf_k),
                filter=flt, with_payload=True, with_vector=[DENSE],
            )
        else:
            request = qe.QueryRequest(limit=limit, query=dense_query, filter=flt, params=params,
                                      with_payload=True, with_vector=[DENSE])
        with self._gate.shared():
            if self._shard is None:  # nothing ingested yet
                return []
            points = self._shard.query(request)
        return checked_hits(audience, dense, (
            (point.id, point.payload, point.score,
             (point.vector if isinstance(point.vector, dict) else {}).get(DENSE)) for point in points))

    def built_with(self) -> Built | None:
        return read_built(self._path) if self._exists() else None

    def scroll_chunks(self, offset=None, limit: int = 256) -> tuple[list[Chunk], object]:
        """One page of every chunk as stored (payload, no vectors), and the next page's offset
        (None after the last): a rebuild reads the stored text from here."""
        with self._gate.shared():
            if self._shard is None:
                return [], None
            records, nxt = self._shard.scroll(qe.ScrollRequest(offset=offset, limit=limit, with_payload=True,
                                                               with_vector=False))
        return [Chunk.from_payload(r.id, r.payload or {}) for r in records], nxt

    def have_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these point ids are stored."""
        with self._gate.shared():
            if self._shard is None or not ids:
                return set()
            records = self._shard.retrieve(list(ids), False, False)
        return {str(r.id) for r in records}

    def count(self) -> int:
        with self._gate.shared():
            if self._shard is None:
                return 0
            return self._shard.count(qe.CountRequest(exact=True))

    def close(self) -> None:
        if not self._gate.close():
            return
        with self._write_lock:
            shard, self._shard = self._shard, None
            try:
                if shard is not None:
                    shard.flush()
                    shard.close()
            except Exception:  # pragma: no cover - closing is best effort
                log.exception("closing the edge index failed")
            finally:
                self._release_lock()

    # -- beyond the protocol ---------------------------------------------------------------

    def optimize(self) -> bool:
        """Build HNSW (and merge/vacuum segments) now; True if anything changed.

        Blocking, CPU-heavy, and it holds the GIL throughout: every other Python
        thread of this process stops until it returns. Run it after a bulk ingest
        in the ingesting process, not in a process that is answering questions.
        """
        with self._gate.shared(), self._write_lock:
            if self._shard is None:
                return False
            changed = self._shard.optimize()
            self._shard.flush()
            return changed

    def _require(self) -> qe.EdgeShard:
        if self._shard is None:
            raise RuntimeError("the edge index has no shard yet: call ensure_collection() first")
        return self._shard

    def __del__(self):  # pragma: no cover - safety net for a forgotten close()
        try:
            if getattr(self, "_lock_fd", None) is not None:
                self.close()
        except Exception:
            pass


def _documents(source: str, doc_ids: Sequence[str]) -> "qe.Filter":
    """These documents of one source (every chunk of each)."""
    return qe.Filter(must=[
        qe.FieldCondition(key="source", match=qe.MatchValue(source)),
        qe.FieldCondition(key="doc_id", match=qe.MatchAny(list(doc_ids))),
    ])
