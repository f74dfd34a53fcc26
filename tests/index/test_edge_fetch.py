"""EdgeIndex searches for ids and scores, then fetches payloads and vectors by id.

Between the two calls another thread may delete a point or change its ACL. The hit must
then be judged on what the fetch returned: a deleted point is left out, and a point whose
ACL no longer admits the audience is dropped by the Python re-check, never shown. The race
is made deterministic by a subclass that writes to the shard just before its fetch.
"""

from __future__ import annotations

import logging
import uuid

import numpy as np
import pytest

from chatops.access import Acl, Audience, Principal
from connectors.index.base import Chunk, Query, SparseVec
from connectors.index.edge_index import EdgeIndex

DIM = 8
ASKER = Audience.of(Principal.of("ana@example.com", ["eng"]))


def _chunk(i: int, acl: Acl) -> Chunk:
    return Chunk(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"fetch/{i}")), source="fs:/x", doc_id=f"d{i}.md",
                 title=f"d{i}", heading="h", text=f"text {i}", position=0, acl=acl, doc_hash=f"h{i}")


class RacingIndex(EdgeIndex):
    """Runs ``before_fetch`` (a write) between the engine's search and the fetch by id."""

    before_fetch = None

    def _fetch(self, ids):
        if self.before_fetch is not None:
            action, self.before_fetch = self.before_fetch, None
            action()
        return super()._fetch(ids)


@pytest.fixture
def index(tmp_path):
    idx = RacingIndex(path=tmp_path / "edge", dim=DIM)
    idx.ensure_collection()
    vectors = np.eye(DIM)[:3] + 0.1
    chunks = [_chunk(i, Acl.of(groups=["eng"])) for i in range(3)]
    idx.upsert(chunks, vectors.tolist(), [SparseVec((1,), (1.0,))] * 3)
    yield idx, chunks, vectors
    idx.close()


def _query(vector) -> Query:
    return Query(dense=list(vector), sparse=SparseVec((1,), (1.0,)))


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_hits_carry_payload_and_vector_from_the_fetch(index, mode):
    idx, chunks, vectors = index
    hits = idx.search(_query(vectors[0]), ASKER, limit=3, candidates=3, mode=mode)
    assert {h.chunk.id for h in hits} == {c.id for c in chunks}
    by_id = {c.id: (c, v) for c, v in zip(chunks, vectors)}
    for hit in hits:
        chunk, vector = by_id[hit.chunk.id]
        assert hit.chunk == chunk
        assert np.allclose(hit.vector / np.linalg.norm(hit.vector), vector / np.linalg.norm(vector), atol=1e-5)


def test_a_point_deleted_between_search_and_fetch_is_left_out(index):
    idx, chunks, vectors = index
    idx.before_fetch = lambda: idx.delete_documents("fs:/x", [chunks[0].doc_id])
    hits = idx.search(_query(vectors[0]), ASKER, limit=3, candidates=3, mode="dense")
    assert {h.chunk.id for h in hits} == {chunks[1].id, chunks[2].id}


def test_an_acl_narrowed_between_search_and_fetch_is_never_shown(index, caplog):
    idx, chunks, vectors = index
    secret = _chunk(0, Acl.of(groups=["finance"]))  # same id, now for finance only
    idx.before_fetch = lambda: idx.upsert([secret], [vectors[0].tolist()], [SparseVec((1,), (1.0,))])
    with caplog.at_level(logging.ERROR):
        hits = idx.search(_query(vectors[0]), ASKER, limit=3, candidates=3, mode="dense")
    assert chunks[0].id not in {h.chunk.id for h in hits}
    assert {h.chunk.id for h in hits} == {chunks[1].id, chunks[2].id}
    assert "may not see" in caplog.text
