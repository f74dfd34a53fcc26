"""The retrieval metrics against values worked out by hand."""

import math

import pytest

from usecases.ir_metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k

QRELS = {"a": 2, "b": 1, "c": 0, "d": 1}   # c is judged, not relevant


def test_ndcg_perfect_ranking_is_one():
    assert ndcg_at_k(["a", "b", "d"], QRELS) == pytest.approx(1.0)


def test_ndcg_by_hand():
    # ranking c, a, x, b: DCG = 0/log2(2) + 2/log2(3) + 0 + 1/log2(5)
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    # ideal: 2, 1, 1 -> 2/1 + 1/log2(3) + 1/log2(4)
    idcg = 2 + 1 / math.log2(3) + 1 / 2
    assert ndcg_at_k(["c", "a", "x", "b"], QRELS) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["c", "a", "x", "b"], QRELS) == pytest.approx(0.5406, abs=1e-4)


def test_ndcg_cuts_at_k_and_handles_no_relevant():
    assert ndcg_at_k(["x", "a"], QRELS, k=1) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}) == 0.0


def test_recall_by_hand():
    assert recall_at_k(["a", "c", "x"], QRELS) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "b", "d"], QRELS, k=2) == pytest.approx(2 / 3)
    assert recall_at_k(["a"], {}) == 0.0


def test_mrr_by_hand():
    assert mrr_at_k(["c", "x", "b"], QRELS) == pytest.approx(1 / 3)
    assert mrr_at_k(["c", "x"], QRELS) == 0.0
    assert mrr_at_k(["x"] * 10 + ["a"], QRELS, k=10) == 0.0


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10.0], 0.99) == 10.0
    assert percentile(list(range(101)), 0.99) == pytest.approx(99.0)
