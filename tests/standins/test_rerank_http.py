"""The http reranker (connectors/rerank/http.py), with the real httpx client, against the loopback
rerank endpoint (standins/fake_rerank.py): the request's shape, the ranking, and every failure
raising RerankFailed within the timeout (the pipeline then keeps the first-stage order)."""

from __future__ import annotations

import time

import httpx
import pytest

from connectors.rerank.base import RerankFailed
from connectors.rerank.http import HttpReranker
from standins.fake_rerank import FakeRerank

KEY = "rr-test-key"
DOCS = ["Vacation policy: 27 days of paid vacation.",
        "Restart billing: run billctl restart on billing-7.",
        "Expenses: receipts within 30 days."]
QUERY = "how do I restart billing"


@pytest.fixture
def fake():
    with FakeRerank(api_key=KEY) as server:
        yield server


def reranker(fake, **kw) -> HttpReranker:
    kw.setdefault("api_key", KEY)
    kw.setdefault("timeout", 2.0)
    return HttpReranker(fake.url, model="bge-reranker-test", **kw)


def test_ranks_the_documents_and_sends_the_endpoints_shape_with_the_bearer_key(fake):
    ranking = reranker(fake).rerank(QUERY, DOCS)
    assert [r.index for r in ranking.ranked][0] == 1
    assert ranking.ranked[0].score > ranking.ranked[1].score
    assert sorted(r.index for r in ranking.ranked) == [0, 1, 2]
    [body] = fake.requests
    assert body == {"model": "bge-reranker-test", "query": QUERY, "documents": DOCS, "top_n": 3}
    assert fake.headers[0]["authorization"] == f"Bearer {KEY}"


def test_no_model_configured_sends_none(fake):
    HttpReranker(fake.url, api_key=KEY).rerank(QUERY, DOCS)
    assert "model" not in fake.requests[0]


def test_a_refused_key_fails_at_once_naming_the_status_and_what_the_server_said(fake):
    with pytest.raises(RerankFailed) as failed:
        reranker(fake, api_key="wrong").rerank(QUERY, DOCS)
    assert failed.value.outcome == "error"
    assert "401" in str(failed.value) and "invalid api token" in str(failed.value)
    assert "wrong" not in str(failed.value)      # the key is never in a message
    assert len(fake.requests) == 1               # 4xx: not retried


def test_a_429_is_retried_after_its_retry_after_when_that_fits_the_timeout(fake):
    fake.retry_after = "0.2"
    fake.script(429)
    start = time.monotonic()
    ranking = reranker(fake).rerank(QUERY, DOCS)
    assert ranking.ranked[0].index == 1
    assert len(fake.requests) == 2
    assert time.monotonic() - start >= 0.2


def test_a_429_whose_retry_after_would_pass_the_timeout_fails_at_once(fake):
    fake.retry_after = "30"
    fake.script(429)
    start = time.monotonic()
    with pytest.raises(RerankFailed, match="429.*would not fit"):
        reranker(fake, timeout=1.0).rerank(QUERY, DOCS)
    assert time.monotonic() - start < 0.5 and len(fake.requests) == 1


def test_5xx_is_retried_a_bounded_number_of_times(fake):
    fake.script(500, 503)
    assert reranker(fake).rerank(QUERY, DOCS).ranked[0].index == 1
    assert len(fake.requests) == 3
    fake.requests.clear()
    fake.script(500, 500, 500, 500)
    with pytest.raises(RerankFailed, match="500") as failed:
        reranker(fake).rerank(QUERY, DOCS)
    assert failed.value.outcome == "error" and len(fake.requests) == 3   # one try and two retries


def test_a_slow_endpoint_is_given_up_at_the_timeout(fake):
    fake.script("hang")
    start = time.monotonic()
    with pytest.raises(RerankFailed) as failed:
        reranker(fake, timeout=0.5).rerank(QUERY, DOCS)
    assert failed.value.outcome == "timeout"
    assert 0.4 < time.monotonic() - start < 1.5


@pytest.mark.parametrize("body,why", [
    ({"results": [{"index": 7, "relevance_score": 0.9}]}, "out of range"),
    ({"results": [{"index": 0, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.5}]}, "twice"),
    ({"results": [{"index": 0}]}, "not a ranking"),
    ({"data": []}, "not a ranking"),
    ("<html>gateway</html>", "not a ranking"),
])
def test_a_reply_that_is_not_a_ranking_is_invalid(fake, body, why):
    fake.script(("body", body))
    with pytest.raises(RerankFailed, match=why) as failed:
        reranker(fake).rerank(QUERY, DOCS)
    assert failed.value.outcome == "invalid"


def test_an_unreachable_endpoint_fails(fake):
    fake.stop()
    with pytest.raises(RerankFailed, match="cannot reach") as failed:
        reranker(fake).rerank(QUERY, DOCS)
    assert failed.value.outcome == "error"


def test_the_stand_in_refuses_bad_input_as_the_real_endpoints_do(fake):
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(fake.url, content=b"{not json", headers=auth).status_code == 400
    bad = httpx.post(fake.url, json={"query": "", "documents": "x", "top_n": 0}, headers=auth)
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "query"), ("body", "documents"),
                                                                ("body", "top_n")}
    top = httpx.post(fake.url, json={"query": QUERY, "documents": DOCS, "top_n": 1, "return_documents": True},
                     headers=auth).json()
    assert top["results"] == [{"index": 1, "relevance_score": top["results"][0]["relevance_score"],
                               "document": {"text": DOCS[1]}}]
    assert httpx.get(fake.url, headers=auth).status_code == 405
