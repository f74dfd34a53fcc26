"""bot.questions.listener: the pure helpers."""

import pytest

from bot.questions.listener import is_from_bot, question_payload, strip_mention

BOT = "UBOT"
BODY = {"event_id": "Ev1", "team_id": "T1"}


# --- strip_mention ------------------------------------------------------------------

def test_own_mention_is_stripped():
    assert strip_mention("<@UBOT> how do I reset my password?", BOT) == "how do I reset my password?"
    assert strip_mention("hey <@UBOT>, what is   the\nVPN?", BOT) == "hey , what is the VPN?"
    assert strip_mention("<@UBOT><@UBOT> twice", BOT) == "twice"


def test_other_mentions_are_kept():
    assert strip_mention("<@UBOT> ask <@U42> about it", BOT) == "ask <@U42> about it"


def test_without_bot_id_only_whitespace_is_normalised():
    assert strip_mention("  <@UBOT>   hi  ", None) == "<@UBOT> hi"


def test_only_a_mention_gives_empty_text():
    assert strip_mention("<@UBOT>", BOT) == ""


# --- is_from_bot ----------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    {"subtype": "bot_message", "text": "x"},
    {"bot_id": "B1", "user": "U1", "text": "x"},
    {"bot_profile": {"id": "B1"}, "user": "U1"},
    {"subtype": "message_changed", "message": {"user": "U1"}},
    {"subtype": "message_deleted"},
    {"subtype": "channel_join", "user": "U1"},
])
def test_from_bot_or_not_a_question(event):
    assert is_from_bot(event)


@pytest.mark.parametrize("event", [
    {"user": "U1", "text": "hi"},
    {"user": "U1", "text": "hi", "subtype": "thread_broadcast"},
    {"user": "U1", "text": "hi", "subtype": "file_share"},
    {"user": "U1", "bot_id": None, "text": "hi"},
])
def test_people_are_not_bots(event):
    assert not is_from_bot(event)


# --- question_payload ------------------------------------------------------------------

def test_top_level_channel_mention_answers_in_a_thread_on_the_message():
    event = {"type": "app_mention", "channel": "C1", "user": "U1", "ts": "100.1",
             "text": "<@UBOT> what is the leave policy?"}
    p = question_payload(event, BODY, BOT, "mention")
    assert p == {
        "kind": "mention", "event_id": "Ev1", "team": "T1", "channel": "C1", "channel_type": None,
        "user": "U1", "text": "what is the leave policy?", "ts": "100.1", "thread_ts": "100.1",
    }


def test_reply_in_thread_uses_the_thread_ts():
    event = {"channel": "C1", "channel_type": "channel", "user": "U1", "ts": "200.2",
             "thread_ts": "100.1", "text": "and for contractors?"}
    p = question_payload(event, BODY, BOT, "follow_up")
    assert p["thread_ts"] == "100.1"
    assert p["ts"] == "200.2"
    assert p["kind"] == "follow_up"


def test_top_level_dm_has_no_thread():
    event = {"channel": "D1", "channel_type": "im", "user": "U1", "ts": "300.3", "text": "hi"}
    p = question_payload(event, BODY, BOT, "dm")
    assert p["thread_ts"] is None
    assert p["channel_type"] == "im"


def test_dm_detected_from_channel_id_when_type_missing():
    event = {"channel": "D9", "user": "U1", "ts": "300.3", "text": "<@UBOT> hi"}
    p = question_payload(event, BODY, BOT, "mention")
    assert p["channel_type"] == "im"
    assert p["thread_ts"] is None
    assert p["text"] == "hi"


def test_dm_thread_reply_keeps_thread():
    event = {"channel": "D1", "channel_type": "im", "user": "U1", "ts": "400.4", "thread_ts": "300.3"}
    p = question_payload(event, BODY, BOT, "dm")
    assert p["thread_ts"] == "300.3"
    assert p["text"] == ""


def test_private_channel_mention_threads():
    event = {"channel": "G1", "channel_type": "group", "user": "U1", "ts": "5.5", "text": "<@UBOT> q"}
    assert question_payload(event, BODY, BOT, "mention")["thread_ts"] == "5.5"


def test_team_falls_back_to_event():
    event = {"channel": "C1", "user": "U1", "ts": "1.0", "text": "x", "team": "T9"}
    p = question_payload(event, {"event_id": "Ev2"}, BOT, "mention")
    assert p["team"] == "T9" and p["event_id"] == "Ev2"
