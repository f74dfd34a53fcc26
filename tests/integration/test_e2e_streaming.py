"""Streamed answers end to end (issue 22, ``CHATOPS_STREAMING=true``): signed Slack events into the
real web app, the question task on a real worker process (Celery on the real Redis), the real openai
SDK streaming from the OpenAI stand-in (server-sent events), and the real slack_sdk writing
``chat.startStream`` / ``appendStream`` / ``stopStream`` to the Slack stand-in, which records every
streamed message call by call.

The in-process twins of these tests (one handler, no web app nor worker) are in
tests/handlers/test_streamed_answers.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time

import pytest

from tests.integration.harness import BOT, System, new_ts, wait_for

ANA, BEN, CARLA, DAN = "UANA", "UBEN", "UCARLA", "UDAN"
CHANNEL = "CSTREAMING"
TEAM = "T123"
CORPUS = {
    ".acl.yml": '- match: "**"\n  groups: [engineering]\n',
    "it/laptops.md": "# Laptops\n\nLaptops are ordered through the IT portal and arrive within five working days.\n",
    # a planted link to another host, as a compromised page would carry it
    "it/monitors.md": "# Monitors\n\nMonitors are ordered at https://orders.attacker.example/monitor?d=badge "
                      "and arrive within two days.\n",
}
DIRECTORY = f"""
users:
  - {{email: ana@corp.example, slack_id: {ANA}, groups: [engineering]}}
  - {{email: ben@corp.example, slack_id: {BEN}, groups: [engineering]}}
  - {{email: carla@corp.example, slack_id: {CARLA}, groups: [engineering]}}
  - {{email: dan@corp.example, slack_id: {DAN}, groups: [engineering]}}
"""
USERS = {
    **{u: {"id": u, "profile": {"email": f"{u[1:].lower()}@corp.example"}} for u in (ANA, BEN, CARLA, DAN)},
    BOT: {"id": BOT, "is_bot": True, "profile": {}},
}
ANSWER = ("Laptops are ordered through the IT portal [1]. They arrive within five working days [1]. "
          "Ask the service desk if one is late [1].")
PLANTED = ("Monitors are ordered at https://orders.attacker.example/monitor?d=badge [1]. "
           "They arrive within two days [9]. The service desk can help too [1].")
LONG = " ".join(f"Step {n} of ordering a laptop is described in the IT portal [1]." for n in range(1, 31))


def split3(text: str) -> list[str]:
    """Three characters at a time: every citation and URL arrives split across the model's pieces."""
    return [text[i:i + 3] for i in range(0, len(text), 3)]


def words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*|\s+", text)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-streaming")
    s = System.start(root, corpus=CORPUS, directory=DIRECTORY, reply=ANSWER, users=USERS,
                     channels={CHANNEL: [ANA, BEN, BOT]},
                     extra_env={"CHATOPS_STREAMING": "true", "CHATOPS_MIN_SIMILARITY": "-1", "CHATOPS_NO_EVIDENCE_RULE": "floor",
                                "CHATOPS_LLM_TIMEOUT": "10"})
    yield s
    s.stop()


@pytest.fixture
def fresh(system):
    system.slack.messages_tab_enabled = True
    system.llm.reply = ANSWER
    system.llm.chunking = words
    system.llm.first_token_delay, system.llm.token_delay = 0.05, 0.02
    return system


def dm(system: System, user: str, text: str) -> dict:
    event = {"type": "message", "channel": f"D{user}", "channel_type": "im", "user": user, "text": text,
             "ts": new_ts()}
    assert system.post_event(event).status_code == 200
    return event


def finished_stream(system: System, channel: str, thread_ts: str, timeout: float = 45.0):
    """The stream in the thread once ``chat.stopStream`` took it."""
    def done():
        streams = system.slack.streams_in(channel, thread_ts)
        return streams[0] if streams and streams[0].message is not None else None
    return wait_for(done, timeout=timeout, what=f"a finished stream in {channel}/{thread_ts}")


def audit_row(system: System, question: str, timeout: float = 20.0) -> dict:
    path = system.root / "data" / "chatops.db"

    def read():
        conn = sqlite3.connect(path)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute("SELECT * FROM questions WHERE question = ?", (question,)).fetchall()
        except sqlite3.OperationalError:
            return None
        finally:
            conn.close()
        return [dict(r) for r in rows]
    rows = wait_for(read, timeout=timeout, what=f"the audit row of {question!r}")
    assert len(rows) == 1, rows
    row = rows[0]
    row["stages"] = json.loads(row["stages"]) if row["stages"] else {}
    return row


def calls_since(system: System, since: int) -> list[dict]:
    return list(system.slack.calls)[since:]


def feedback_element(blocks: list[dict]) -> dict | None:
    for block in blocks or []:
        if block.get("type") == "context_actions":
            for element in block.get("elements", []):
                if element.get("type") == "feedback_buttons":
                    return element
    return None


def in_thread(call: dict, channel: str, thread_ts: str) -> bool:
    p = call["params"]
    return (p.get("channel") == channel or p.get("channel_id") == channel) and p.get("thread_ts") == thread_ts


def test_a_dm_answer_shows_a_status_then_streams_in_order_and_stops_with_sources_and_feedback(fresh):
    since = len(fresh.slack.calls)
    question = "how do I get a laptop?"
    event = dm(fresh, ANA, question)
    stream = finished_stream(fresh, event["channel"], event["ts"])
    mine = [c for c in calls_since(fresh, since) if in_thread(c, event["channel"], event["ts"])
            or c["params"].get("ts") == stream.ts]
    methods = [c["method"] for c in mine]
    # the status first, in the question's own thread, with loading messages
    assert methods[0] == "assistant.threads.setStatus", methods
    assert mine[0]["params"]["status"] and mine[0]["params"]["loading_messages"]
    # then the stream: started, appended (more than once), stopped; nothing posted nor updated besides
    assert methods.index("chat.startStream") > 0
    streamed = [m for m in methods if m.startswith("chat.")]
    assert streamed[0] == "chat.startStream" and streamed[-1] == "chat.stopStream"
    assert set(streamed[1:-1]) == {"chat.appendStream"} and len(streamed) >= 4, streamed
    assert [kind for kind, _ in stream.calls][0] == "start" and [kind for kind, _ in stream.calls][-1] == "stop"
    assert len(stream.appends) >= 2
    # the appends, joined in order, are the answer as recorded
    row = audit_row(fresh, question)
    assert row["mode"] == "llm" and stream.text == row["answer"]
    assert "IT portal" in stream.text and "five working days" in stream.text
    assert stream.text.index("IT portal") < stream.text.index("five working days") < stream.text.index("service desk")
    # the stop: the Sources and Slack's feedback element
    assert not stream.stopped_by_user
    shown = json.dumps(stream.blocks)
    assert "*Sources*" in shown and "Laptops" in shown
    element = feedback_element(stream.blocks)
    assert element is not None and element["positive_button"]["value"] and element["negative_button"]["value"]
    # the model was asked to stream
    assert fresh.llm.requests[-1]["stream"] is True


def test_a_channel_answer_streams_to_the_asker_only_after_the_members_were_read(fresh):
    since = len(fresh.slack.calls)
    event = fresh.mention(CHANNEL, ANA, "how long does a laptop take to arrive?")
    assert fresh.post_event(event).status_code == 200
    stream = finished_stream(fresh, CHANNEL, event["ts"])
    assert (stream.recipient_user_id, stream.recipient_team_id) == (ANA, TEAM)
    methods = [(c["method"], c["params"].get("channel")) for c in calls_since(fresh, since)]
    members = methods.index(("conversations.members", CHANNEL))
    started = methods.index(("chat.startStream", CHANNEL))
    assert members < started, methods
    assert not any(m == "chat.appendStream" for m, _ in methods[:members])
    row = audit_row(fresh, "how long does a laptop take to arrive?")
    assert row["audience_members"] and set(json.loads(row["audience_members"])) >= {ANA, BEN}
    assert stream.text == row["answer"]
    assert "everyone in this conversation may see" in json.dumps(stream.blocks)


def test_a_planted_link_and_an_unknown_citation_never_reach_any_appended_chunk(fresh):
    fresh.llm.reply = PLANTED
    fresh.llm.chunking = split3
    question = "where do I order a monitor?"
    event = dm(fresh, BEN, question)
    stream = finished_stream(fresh, event["channel"], event["ts"])
    assert stream.appends
    for chunk in stream.chunks:
        text = json.dumps(chunk)
        assert "attacker.example" not in text, chunk
        assert "[9]" not in text, chunk
    assert "attacker[.]example" in stream.text           # shown inert, defanged
    assert "attacker.example" not in json.dumps(stream.blocks)
    row = audit_row(fresh, question)
    assert row["citations_dropped"] >= 1 and "[9]" not in row["answer"]


def test_stop_by_the_user_ends_generation_and_the_answer_is_recorded_as_stopped(fresh):
    fresh.llm.reply = LONG
    fresh.llm.token_delay = 0.06
    cut_before = fresh.llm.streams_cut
    question = "what are the steps of ordering a laptop?"
    event = dm(fresh, CARLA, question)
    first = fresh.slack.wait_for("chat.appendStream", lambda p: p.get("channel") == event["channel"]
                                 and "[1]" in str(p.get("markdown_text")), timeout=45)   # once a source is shown
    stopped = fresh.slack.stop_by_user(first["ts"])
    assert stopped["type"] == "agent_session_stopped" and stopped["streaming_message_ts"] == [first["ts"]]
    assert fresh.post_event(stopped).status_code == 200          # delivered signed, acknowledged
    stream = finished_stream(fresh, event["channel"], event["ts"])
    assert stream.stopped_by_user
    # generation ended: the model's stream was hung up on, and far from all of it was shown
    wait_for(lambda: fresh.llm.streams_cut > cut_before, timeout=10, what="the model's stream closed early")
    assert len(stream.text) < len(LONG) / 2
    refused = [c for c in fresh.slack.calls if c["method"] == "chat.appendStream"
               and c["params"].get("ts") == stream.ts and not c.get("response", {}).get("ok")]
    assert len(refused) <= 1                                      # one refused append, then no more
    # the final message still has its Sources
    assert "*Sources*" in json.dumps(stream.blocks)
    row = audit_row(fresh, question)
    assert "stopped" in row["stages"]
    assert row["answer"] == stream.text.strip()


def test_when_slack_refuses_to_start_a_stream_the_answer_is_posted_whole_once(fresh):
    # chat.startStream is tier 2: past its limit Slack answers 429, again after each Retry-After
    fresh.slack.fail_next("chat.startStream", status=429, retry_after=1, count=3)
    question = "how do I get a laptop, please?"
    event = dm(fresh, DAN, question)
    row = audit_row(fresh, question, timeout=45)
    assert fresh.slack.streams_in(event["channel"], event["ts"]) == []
    starts = [p for p in fresh.slack.calls_to("chat.startStream") if p.get("channel") == event["channel"]]
    assert len(starts) == 3                                       # the first try and the SDK's two retries
    posted = [p for p in fresh.slack.calls_to("chat.postMessage") if p.get("channel") == event["channel"]]
    assert len(posted) == 1 and posted[0]["thread_ts"] == event["ts"]
    shown = json.dumps(posted[0]["blocks"])
    assert "Sources" in shown and "IT portal" in shown and "five working days" in shown
    assert [p for p in fresh.slack.calls_to("chat.update") if p.get("channel") == event["channel"]] == []
    assert fresh.slack.calls_to("chat.appendStream") == [] or all(
        p.get("channel") != event["channel"] for p in fresh.slack.calls_to("chat.appendStream"))
    assert row["mode"] == "llm"
    time.sleep(1)
    assert len([p for p in fresh.slack.calls_to("chat.postMessage") if p.get("channel") == event["channel"]]) == 1
