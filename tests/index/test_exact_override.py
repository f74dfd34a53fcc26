"""``EdgeIndex.search(..., exact=...)``: a per-call override of the instance's ``exact``.

Two edge indexes hold the same 400 seeded points with a real HNSW graph that
searches really use (indexing and full-scan thresholds lowered to 1 and 10 KB, then
``optimize()``): one opened with ``exact`` left at its default, one with ``exact=True``. ``exact=True`` on the default index must give what the exact
instance gives (and, dense-only, what numpy brute force gives); leaving ``exact``
out must keep each instance's behaviour; and the flag must reach the engine's
request (at 400 points HNSW is usually exact anyway, so results alone could not
tell the two paths apart).
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from chatops.access import Acl, Audience, Principal
from connectors.index.base import Chunk, Query, SparseVec
from connectors.index.edge_index import EdgeIndex

DIM = 384
N = 400
_NS = uuid.UUID("6f1c2b7e-93a4-4d0e-b5c8-2e7a9d1f4c63")


def _corpus():
    rng = np.random.default_rng(2024)
    dense = rng.normal(size=(N, DIM))
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    chunks, sparse = [], []
    for i in range(N):
        u = rng.random()
        if u < 0.05:
            acl = Acl.of(public=True)
        elif u < 0.15:
            acl = Acl.of(groups=["rare"])
        else:
            acl = Acl.of(groups=[f"g{i % 4}"], users=[f"u{i % 9}@example.com"])
        chunks.append(Chunk(id=str(uuid.uuid5(_NS, str(i))), source="fs:/x", doc_id=f"d/{i}.md", title=f"d{i}",
                            heading="h", text=f"chunk {i}", position=0, acl=acl, doc_hash=f"h{i}"))
        idx = sorted(int(t) for t in rng.choice(500, 6, replace=False))
        sparse.append(SparseVec(tuple(idx), tuple(float(x) for x in rng.uniform(0.1, 1.0, 6))))
    queries = []
    for i in range(8):
        v = dense[i * 37] + 0.4 * rng.normal(size=DIM) / np.sqrt(DIM)
        qi = sorted(int(t) for t in rng.choice(500, 3, replace=False))
        queries.append(Query(dense=(v / np.linalg.norm(v)).tolist(), sparse=SparseVec(tuple(qi), (1.0,) * 3)))
    return chunks, dense, sparse, queries


CHUNKS, DENSE, SPARSE, QUERIES = _corpus()
AUDIENCES = {
    "rare": Audience.of(Principal.of("someone@example.com", ["rare"])),
    "broad": Audience.of(Principal.of("u3@example.com", ["g1", "g2"])),
    "public": Audience.public("external"),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("exact-override")
    kw = {"dim": DIM, "indexing_threshold_kb": 1, "full_scan_threshold_kb": 10}
    indexes = {"default": EdgeIndex(path=base / "default", **kw),
               "exact": EdgeIndex(path=base / "exact", exact=True, **kw)}
    for idx in indexes.values():
        idx.ensure_collection()
        idx.upsert(CHUNKS, DENSE.tolist(), SPARSE)
        assert idx.optimize() is True
        assert idx._shard.info().indexed_vectors_count >= N  # a real HNSW graph exists
    yield indexes
    for idx in indexes.values():
        idx.close()


def _results(idx, q, audience, mode, **kw) -> dict | list:
    """Dense: the ranked (id, score) list. Hybrid: {id: RRF score} of the whole fused list
    (limit >= 2 * candidates), because equal RRF scores come back in no fixed order."""
    if mode == "dense":
        return [(h.chunk.id, round(h.score, 6)) for h in idx.search(q, audience, limit=10, candidates=20,
                                                                     mode=mode, **kw)]
    return {h.chunk.id: round(h.score, 6) for h in idx.search(q, audience, limit=40, candidates=20,
                                                              mode=mode, **kw)}


def _brute_force(audience: Audience, q: Query, k: int) -> list[str]:
    visible = np.array([audience.can_see(c.acl) for c in CHUNKS])
    scores = np.where(visible, DENSE @ np.asarray(q.dense), -np.inf)
    return [CHUNKS[i].id for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize("name", sorted(AUDIENCES))
def test_exact_true_per_call_equals_the_exact_instance(pair, name, mode):
    audience = AUDIENCES[name]
    for q in QUERIES:
        got = _results(pair["default"], q, audience, mode, exact=True)
        assert got and got == _results(pair["exact"], q, audience, mode)
        if mode == "dense":
            assert [cid for cid, _ in got] == _brute_force(audience, q, 10)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_leaving_exact_out_keeps_the_instance_default(pair, mode):
    audience = AUDIENCES["broad"]
    for q in QUERIES:
        for idx, same in ((pair["default"], False), (pair["exact"], True)):
            assert _results(idx, q, audience, mode) == _results(idx, q, audience, mode, exact=same)


class _Spy:
    """Stands in for the engine shard: records every query request, delegates everything."""

    def __init__(self, shard):
        self._shard = shard
        self.requests = []

    def query(self, request):
        self.requests.append(request)
        return self._shard.query(request)

    def __getattr__(self, name):
        return getattr(self._shard, name)


def _dense_params(request, mode):
    return request.prefetches[0].params if mode == "hybrid" else request.params


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
@pytest.mark.parametrize("which", ["default", "exact"])
def test_the_override_reaches_the_engine(pair, which, mode, monkeypatch):
    idx = pair[which]
    spy = _Spy(idx._shard)
    monkeypatch.setattr(idx, "_shard", spy)
    q = QUERIES[0]
    for exact in (None, True, False):
        idx.search(q, AUDIENCES["broad"], limit=5, candidates=10, mode=mode, exact=exact)
    implicit, forced_exact, forced_approx = (_dense_params(r, mode) for r in spy.requests)
    assert forced_exact is not None and forced_exact.exact is True
    assert forced_exact.quantization.ignore is True  # exact means the float vectors, not the int8 copy
    assert forced_approx is None or forced_approx.exact is False
    # the normal search reads the int8 copy and rescores twice the candidates with the floats
    assert forced_approx.quantization.rescore is True and forced_approx.quantization.oversampling == 2.0
    if which == "exact":
        assert implicit is not None and implicit.exact is True
    else:
        assert implicit is None or implicit.exact is False
