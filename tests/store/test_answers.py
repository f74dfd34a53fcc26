"""Feedback and escalations in the audit store, on SQLite and PostgreSQL: the last click wins, a
vote from outside the audience keeps nothing else, escalating and resolving happen once."""

from __future__ import annotations

import threading

import pytest

from chatops.store.answers import Answers


@pytest.fixture
def answer(store):
    store.record_question(question="how many vacation days?", mode="llm", channel="C1", channel_type="channel",
                          asker_slack_id="UASK", facts={"answer_id": "ab12", "route": "gpt-big",
                                                         "audience_members": ["UASK", "UPEER", "UBOT"]})
    answers = Answers(store)
    return answers, answers.get("ab12")


def test_the_last_click_wins_and_a_reason_stays_with_its_vote(answer):
    answers, row = answer
    assert answers.vote(row, "UPEER", "helpful") is True
    answers.vote(row, "UPEER", "not_helpful", reason="It is out of date")
    answers.vote(row, "UPEER", "not_helpful")                   # the form's vote again: the reason stays
    (vote,) = answers.votes("ab12")
    assert (vote["vote"], vote["reason"], vote["in_audience"]) == ("not_helpful", "It is out of date", True)
    answers.vote(row, "UPEER", "helpful")                       # changed their mind: the reason goes
    assert answers.votes("ab12")[0]["reason"] is None
    with pytest.raises(ValueError):
        answers.vote(row, "UPEER", "meh")


def test_a_vote_from_outside_the_audience_is_counted_and_nothing_else_is_kept(answer):
    answers, row = answer
    assert answers.vote(row, "ULATE", "not_helpful", reason="xoxb-123-secret and more") is False
    (vote,) = answers.votes("ab12")
    assert vote["in_audience"] is False and vote["reason"] is None


def test_escalating_and_resolving_happen_once_each(answer):
    answers, row = answer
    assert answers.escalate(row, "UPEER") is True
    assert answers.escalate(row, "UASK") is False               # already escalated and open
    assert answers.resolve(row, "UASK") is True
    assert answers.resolve(row, "UASK") is False
    again = answers.get("ab12")
    assert again.escalated_by == "UPEER" and again.resolved_by == "UASK"
    assert answers.escalate(again, "UASK") is True              # resolved: it may be raised again
    assert answers.get("ab12").resolved_at is None


def test_many_clicks_of_one_person_at_once_leave_one_vote(answer):
    answers, row = answer
    errors = []

    def click(kind):
        try:
            answers.vote(row, "UPEER", kind)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=click, args=("helpful" if i % 2 else "not_helpful",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(answers.votes("ab12")) == 1
