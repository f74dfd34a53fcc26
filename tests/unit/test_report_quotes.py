"""Which unanswered questions a channel report may quote (usecases/report_quotes.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from usecases.report_quotes import quotes

AT = datetime(2024, 5, 1, 9, tzinfo=UTC)


def row(text: str, channel: str, mode: str = "no-evidence") -> dict:
    return {"question": text, "mode": mode, "at": AT, "channel": channel, "channel_type": None}


ROWS = [row("Where is the map?", "CPUB"), row("where is the map", "CPUB"), row("secret plan?", "CPRIV"),
        row("answered one", "CPUB", mode="llm")]


def test_only_questions_asked_where_public_says_are_quoted_and_the_rest_counted():
    asked = []

    def public(channel, channel_type):
        asked.append(channel)
        return channel == "CPUB"

    q = quotes(ROWS, privacy="anonymized", public=public)
    assert q.text_shown and [(e["question"], e["count"]) for e in q.questions] == [("where is the map", 2)]
    assert q.withheld == 1 and "CPRIV" in asked


def test_privacy_off_or_an_unknown_mode_quotes_nothing_and_asks_nobody():
    def public(channel, channel_type):
        raise AssertionError("not asked when no text is shown")

    for mode in ("off", "everything", ""):
        q = quotes(ROWS, privacy=mode, public=public)
        assert not q.text_shown and q.questions == [] and q.withheld == 3
