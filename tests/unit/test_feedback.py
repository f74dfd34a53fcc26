"""Rocchio pseudo-relevance feedback (the ``feedback`` strategy) over a recording index."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from chatops.access import Acl, Audience, Principal
from connectors.index.base import Chunk, Hit, Query, SparseVec
from connectors.index.retriever import Retriever, rocchio

ALICE = Audience.of(Principal.of("alice@example.com", ["eng"]))


def chunk(cid: str) -> Chunk:
    return Chunk(id=cid, source="s", doc_id=cid, title=cid, heading="", text=cid, position=0,
                 acl=Acl.of(groups=["eng"]), doc_hash="h")


@dataclass
class RecordingIndex:
    """Dense search = exact cosine over a few stored vectors; sparse returns nothing."""
    vectors: dict[str, list[float]]
    calls: list = field(default_factory=list)

    def search(self, query, audience, *, limit, candidates, mode="hybrid", exact=None):
        self.calls.append((mode, list(query.dense), audience))
        if mode == "sparse":
            return []
        q = np.asarray(query.dense)
        scored = sorted(((float(q @ np.asarray(v)), cid) for cid, v in self.vectors.items()), reverse=True)
        return [Hit(chunk=chunk(cid), score=s, similarity=s, vector=self.vectors[cid]) for s, cid in scored[:limit]]


class Embedder:
    def embed_query(self, text):
        return [1.0, 0.0, 0.0], SparseVec((1,), (1.0,))


def test_rocchio_by_hand():
    # q = (1, 0); docs (0, 1) and (0, 2) normalise to (0, 1); mean (0, 1); q + 0.5 * mean = (1, .5)
    moved = rocchio([1.0, 0.0], [[0.0, 1.0], [0.0, 2.0]], 0.5)
    assert moved == pytest.approx([1 / np.sqrt(1.25), 0.5 / np.sqrt(1.25)])
    assert rocchio([3.0, 0.0], [[1.0, 0.0]], 1.0) == pytest.approx([1.0, 0.0])  # unit result


def test_rocchio_without_vectors_gives_nothing():
    assert rocchio([1.0, 0.0], [], 0.5) is None
    assert rocchio([1.0, 0.0], [None, None], 0.5) is None


def test_feedback_moves_the_query_toward_the_top_hits_and_reranks():
    # "b" is the best match for the question; "c" shares its direction with b, "d" is unrelated.
    index = RecordingIndex({"b": [0.8, 0.6, 0.0], "c": [0.3, 0.954, 0.0], "d": [0.5, 0.0, 0.866]})
    plain = Retriever(index, Embedder(), strategy="dense")
    query = plain.embed("q")
    assert [h.chunk.id for h in plain.search(query, ALICE, limit=3)] == ["b", "d", "c"]

    index.calls.clear()
    fed = Retriever(index, Embedder(), strategy="feedback", feedback_docs=1, feedback_weight=1.0,
                    dense_weight=1.0)
    hits = fed.search(query, ALICE, limit=3)
    assert [m for m, _, _ in index.calls] == ["dense", "sparse"]  # no third search: the pool is re-scored
    assert all(aud is ALICE for _, _, aud in index.calls)
    # ranked by the moved query q + top-1 vector (b), normalised: c moved above d
    moved = np.array([1.0, 0.0, 0.0]) + np.array([0.8, 0.6, 0.0])
    moved /= np.linalg.norm(moved)
    assert [h.chunk.id for h in hits] == ["b", "c", "d"]
    raw = {cid: float(np.asarray(v) @ moved) for cid, v in index.vectors.items()}
    middle = (raw["c"] - raw["d"]) / (raw["b"] - raw["d"])
    assert [h.score for h in hits] == pytest.approx([1.0, middle, 0.0])  # min-max of the moved cosines
    # similarities are those of the original question, not of the moved query
    assert {h.chunk.id: h.similarity for h in hits} == pytest.approx({"b": 0.8, "c": 0.3, "d": 0.5}, abs=1e-3)


def test_feedback_without_stored_vectors_is_plain_weighted():
    class NoVectors(RecordingIndex):
        def search(self, *a, **kw):
            return [Hit(chunk=h.chunk, score=h.score, similarity=h.similarity)
                    for h in super().search(*a, **kw)]

    index = NoVectors({"b": [0.8, 0.6, 0.0], "c": [0.0, 1.0, 0.0]})
    fed = Retriever(index, Embedder(), strategy="feedback")
    hits = fed.search(Query(dense=[1.0, 0.0, 0.0], sparse=None), ALICE, limit=2)
    assert [m for m, _, _ in index.calls] == ["dense", "sparse"]
    assert [h.chunk.id for h in hits] == ["b", "c"]


def test_feedback_ranks_sparse_only_candidates_by_the_moved_query():
    class SparseFinds(RecordingIndex):
        def search(self, query, audience, *, limit, candidates, mode="hybrid", exact=None):
            if mode == "sparse":
                self.calls.append((mode, list(query.dense), audience))
                return [Hit(chunk=chunk("e"), score=7.0, similarity=0.6, vector=[0.6, 0.8, 0.0])]
            return super().search(query, audience, limit=limit, candidates=candidates, mode=mode)

    index = SparseFinds({"b": [0.8, 0.6, 0.0], "d": [0.5, 0.0, 0.866]})
    hits = Retriever(index, Embedder(), strategy="feedback", feedback_docs=1, feedback_weight=1.0,
                     dense_weight=1.0).search(Query(dense=[1.0, 0.0, 0.0], sparse=None), ALICE, limit=3)
    assert [h.chunk.id for h in hits] == ["b", "e", "d"]  # e came from BM25 only, scored by the moved query
    assert hits[1].similarity == pytest.approx(0.6)      # ... and keeps its similarity to the question


def test_feedback_on_an_empty_result_searches_once():
    index = RecordingIndex({})
    assert Retriever(index, Embedder(), strategy="feedback").search(
        Query(dense=[1.0, 0.0, 0.0], sparse=None), ALICE, limit=3) == []
    assert [m for m, _, _ in index.calls] == ["dense", "sparse"]
