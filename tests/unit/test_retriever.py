"""Weighted fusion: per-query min-max normalisation, convex combination, stable ties."""

import pytest

from chatops.access import Acl
from connectors.index.base import Chunk, Hit
from connectors.index.retriever import fuse_weighted


def hit(cid: str, score: float, similarity: float = 0.0) -> Hit:
    chunk = Chunk(id=cid, source="s", doc_id=cid, title=cid, heading="", text=cid, position=0,
                  acl=Acl.of(public=True), doc_hash="h")
    return Hit(chunk=chunk, score=score, similarity=similarity)


def test_weights_decide_between_the_lists():
    dense = [hit("a", 0.9), hit("b", 0.5), hit("c", 0.1)]
    sparse = [hit("c", 12.0), hit("b", 6.0), hit("a", 0.0)]
    # dense normalised: a 1, b .5, c 0; sparse: c 1, b .5, a 0
    assert [h.chunk.id for h in fuse_weighted(dense, sparse, 0.75)] == ["a", "b", "c"]
    assert [h.chunk.id for h in fuse_weighted(dense, sparse, 0.25)] == ["c", "b", "a"]
    fused = {h.chunk.id: h.score for h in fuse_weighted(dense, sparse, 0.75)}
    assert fused == pytest.approx({"a": 0.75, "b": 0.5, "c": 0.25})


def test_a_document_in_one_list_only_gets_zero_from_the_other():
    fused = fuse_weighted([hit("a", 0.8), hit("b", 0.2)], [hit("z", 3.0), hit("a", 1.0)], 0.6)
    scores = {h.chunk.id: h.score for h in fused}
    assert scores == pytest.approx({"a": 0.6, "b": 0.0, "z": 0.4})


def test_ties_keep_dense_order_and_dense_hits_are_preferred():
    dense = [hit("a", 0.5, similarity=0.5), hit("b", 0.5, similarity=0.5)]
    fused = fuse_weighted(dense, [hit("b", 1.0, similarity=0.0)], 1.0)
    assert [h.chunk.id for h in fused] == ["a", "b"]
    assert fused[1].similarity == 0.5  # the dense hit's similarity, not the sparse one's


def test_empty_lists():
    assert fuse_weighted([], [], 0.5) == []
    assert [h.chunk.id for h in fuse_weighted([], [hit("x", 2.0)], 0.5)] == ["x"]
