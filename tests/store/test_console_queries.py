"""The console's reads of the audit store (``Answers.history``, ``question_row``, ``channels``) on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chatops.store.answers import Answers

NOW = datetime(2024, 5, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def answers(store):
    def ask(n, mode, channel, days):
        return store.record_question(question=f"q{n}", mode=mode, channel=channel, at=NOW - timedelta(days=days),
                                     asker_slack_id="UA", facts={"answer_id": f"a{n}", "answer": f"answer {n}",
                                                                 "retrieved": [{"doc_id": "d", "score": 0.5}]})
    ids = [ask(1, "llm", "C1", 1), ask(2, "llm", "C2", 2), ask(3, "no-evidence", "C1", 3), ask(4, "refused", None, 4),
           ask(5, "llm", "C1", 40)]
    a = Answers(store)
    a.vote(a.get("a1"), "UA", "helpful")
    a.vote(a.get("a1"), "UB", "not_helpful")
    a.vote(a.get("a2"), "UA", "not_helpful")
    return a, ids


def test_history_filters_pages_and_counts_votes(answers):
    a, ids = answers
    since = NOW - timedelta(days=30)
    rows, total = a.history(since)
    assert total == 4 and [r["question"] for r in rows] == ["q1", "q2", "q3", "q4"]        # newest first
    assert (rows[0]["helpful"], rows[0]["not_helpful"]) == (1, 1) and (rows[2]["helpful"], rows[2]["not_helpful"]) == (0, 0)
    assert "answer" not in rows[0] and "retrieved" not in rows[0]
    assert [r["question"] for r in a.history(since, channel="C1")[0]] == ["q1", "q3"]
    assert [r["question"] for r in a.history(since, modes=("llm",))[0]] == ["q1", "q2"]
    assert [r["question"] for r in a.history(since, feedback="helpful")[0]] == ["q1"]
    assert [r["question"] for r in a.history(since, feedback="not_helpful")[0]] == ["q1", "q2"]
    assert [r["question"] for r in a.history(since, feedback="none")[0]] == ["q3", "q4"]
    page, total = a.history(since, limit=2, offset=2)
    assert total == 4 and [r["question"] for r in page] == ["q3", "q4"]
    assert a.history(since, until=NOW - timedelta(days=2))[1] == 2
    with pytest.raises(ValueError):
        a.history(since, feedback="loved")


def test_one_question_and_the_channels(answers):
    a, ids = answers
    row = a.question_row(ids[0])
    assert row["answer"] == "answer 1" and row["retrieved"] == [{"doc_id": "d", "score": 0.5}] and row["at"] == NOW - timedelta(days=1)
    assert a.question_row(10_000) is None
    assert a.channels(NOW - timedelta(days=30)) == ["C1", "C2"]
