"""The report's arithmetic on hand-made audit rows (the store's side is in tests/store)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from usecases.report import as_text, build, percentile

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def row(mode, *, at=T0, question="q", stages=None, prompt=None, completion=None, cost=None, route=None,
        escalated=False, resolved=False, latency=None):
    return {"mode": mode, "at": at, "question": question, "stages": stages or {}, "prompt_tokens": prompt,
            "completion_tokens": completion, "cost": cost, "route": route, "latency_ms": latency,
            "escalated_at": at if escalated else None, "resolved_at": at if resolved else None}


def vote(answer_id, kind, *, cited=(), route="big", in_audience=True):
    return {"answer_id": answer_id, "vote": kind, "route": route, "answered_at": T0, "in_audience": in_audience,
            "cited": [{"source": d, "title": d.upper()} for d in cited]}


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 50) == 50.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_rates_tokens_cost_cache_and_escalations():
    rows = [
        row("llm", stages={"retrieval": 10, "generation": 900}, prompt=100, completion=20, cost=0.002, route="big",
            latency=1000),
        row("llm", stages={"retrieval": 30, "generation": 1100}, prompt=300, completion=40, cost=0.004, route="big",
            escalated=True, latency=1200),
        row("cached", stages={"retrieval": 0, "cache": 2}, cost=0.0, route="big", latency=15),
        row("extractive", prompt=None, cost=0.0, at=T0 + timedelta(days=1)),
        row("no-evidence", question="Where is the VPN guide?", at=T0 + timedelta(days=1)),
        row("no-evidence", question="where is the vpn guide", at=T0 + timedelta(days=1), escalated=True,
            resolved=True),
        row("no-evidence", question="Parking rules?"),
        row("refused"),
        row("greeting"),
    ]
    votes = [vote("a1", "not_helpful", cited=["doc/x.md"]), vote("a1", "helpful", cited=["doc/x.md"]),
             vote("a2", "not_helpful", cited=["doc/x.md", "doc/y.md"]),
             vote("a2", "not_helpful", cited=["doc/y.md"], in_audience=False, route="small")]
    r = build(rows, votes, since=T0, until=T0 + timedelta(days=2))
    assert r.questions == 8 and r.greetings == 1
    assert r.answered_rate == round(4 / 8, 4) and r.no_evidence_rate == round(3 / 8, 4) and r.refused_rate == 0.125
    assert r.cache_hit_ratio == 0.25
    assert (r.input_tokens, r.output_tokens) == (400, 60) and r.tokens_per_answer == 115.0
    assert r.cost == 0.006 and r.cost_per_answer == 0.0015
    assert r.escalations == 2 and r.escalations_open == 1
    assert r.helpful == 1 and r.not_helpful == 3 and r.feedback_rate == 0.5
    assert r.not_helpful_by_route == {"big": {"not_helpful": 2, "helpful": 1}, "small": {"not_helpful": 1}}
    assert r.top_unanswered[0]["count"] == 2 and r.top_unanswered[0]["question"].lower().startswith("where is")
    # the vote from outside the audience counts, but says nothing about doc/y.md
    assert r.most_disliked == [{"title": "DOC/X.MD", "doc_id": "doc/x.md", "not_helpful": 2},
                               {"title": "DOC/Y.MD", "doc_id": "doc/y.md", "not_helpful": 1}]
    assert r.latency_ms["retrieval"] == {"p50": 10.0, "p95": 30.0}
    assert r.latency_ms["generation"]["p95"] == 1100.0 and r.latency_ms["total"]["p50"] == 1000.0
    assert [d["date"] for d in r.per_day] == ["2026-11-20", "2026-11-21"]
    assert r.per_day[0]["answered"] == 3 and r.per_day[1]["no-evidence"] == 2 and r.per_day[0]["cost"] == {"big": 0.006}
    assert r.per_day[0]["tokens"] == 460 and r.per_day[1]["tokens"] == 0
    text = as_text(r)
    assert "answered       50.0%" in text and "where is the vpn guide" in text.lower() and "DOC/X.MD" in text


def test_an_empty_period_has_no_rates_rather_than_zeroes():
    r = build([], [], since=T0, until=T0)
    assert r.questions == 0 and r.answered_rate is None and r.cost_per_answer is None and r.latency_ms == {}
    assert "Questions        0" in as_text(r)


def test_tool_calls_are_counted_per_tool_and_outcome_ok_first_and_none_without_calls():
    counts = {("tickets-live", "timeout"): 1, ("pagerduty", "error"): 2, ("pagerduty", "ok"): 9,
              ("tickets-live", "ok"): 4, ("health", "skipped"): 0}
    r = build([], [], since=T0, until=T0 + timedelta(days=1), tool_counts=counts)
    assert r.tool_calls == {"pagerduty": {"ok": 9, "error": 2}, "tickets-live": {"ok": 4, "timeout": 1}}
    assert list(r.tool_calls) == ["pagerduty", "tickets-live"] and list(r.tool_calls["pagerduty"]) == ["ok", "error"]
    assert json.loads(json.dumps(r.as_json()))["tool_calls"] == r.tool_calls
    text = as_text(r)
    assert "Live tool calls  16 in all" in text and "  pagerduty      ok 9, error 2" in text
    assert "health" not in text
    assert "Live tool calls" not in as_text(build([], [], since=T0, until=T0))
