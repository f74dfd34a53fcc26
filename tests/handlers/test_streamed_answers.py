"""Streamed answers (issue 22, CHATOPS_STREAMING=true), in-process as the worker runs them:
``QuestionHandler.handle`` -> ``Pipeline`` -> the real openai SDK streaming from a loopback OpenAI
(server-sent events, a fixed time to first token and per-token delay) -> ``SafeStreamer`` ->
``SlackGateway`` (the real slack_sdk) -> a loopback Slack recording every streamed message.

Assertions are on what Slack was asked to show: the status, each ``chat.appendStream``'s text
in order, the blocks given to ``chat.stopStream``; and on the audit row.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from slack_sdk import WebClient
import redis

from standins.fake_openai import FakeOpenAI
from standins.fake_slack import FakeSlack

pytestmark = pytest.mark.redis

ENG, HR, BOT = "UENG", "UHR", "UBOT"
CHANNEL = "CSTREAM"
DIRECTORY = f"""
users:
  - {{email: eng@corp.example, slack_id: {ENG}, groups: [engineering]}}
  - {{email: hr@corp.example, slack_id: {HR}, groups: [hr]}}
"""
SLACK_USERS = {
    ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
    HR: {"id": HR, "profile": {"email": "hr@corp.example"}},
    BOT: {"id": BOT, "is_bot": True, "profile": {}},
}
CORPUS = {
    ".acl.yml": '- match: "**"\n  public: true\n',
    "it/laptops.txt": "Laptops are ordered through the IT portal and arrive within five working days.\n",
}
ANSWER = ("Laptops are ordered through the IT portal [1]. They arrive within five working days [1].\n\n"
          "Ask the service desk if it is late [1].")
# The model also cites a source it was never given, links to another host, and claims a deed.
PLANTED = ("Laptops are ordered through the IT portal [1]. See [the form](https://attacker.example/?q=laptop) "
           "or https://attacker.example/collect?d=secret for more [7]. I have approved your laptop request. "
           "They arrive within five working days [1][12].")


def split3(text: str) -> list[str]:
    """Three characters at a time: every citation, URL and link arrives split across chunks."""
    return [text[i:i + 3] for i in range(0, len(text), 3)]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")

    from chatops_app.container import Container
    from chatops.settings import Settings
    from connectors.sources.filesystem.connector import FilesystemSource
    from usecases.ingest import ingest

    root = tmp_path_factory.mktemp("streamed")
    corpus = root / "corpus"
    for rel, text in CORPUS.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text)
    (root / "directory.yml").write_text(DIRECTORY)
    prefix = f"chatops-stream-{uuid.uuid4().hex[:8]}"
    with FakeSlack(users=SLACK_USERS, channels={CHANNEL: [ENG, BOT]}, bot_user_id=BOT) as slack, \
            FakeOpenAI(reply=ANSWER) as llm:
        settings = Settings.load(
            CHATOPS_DATA_DIR=str(root / "data"), QDRANT_PATH=str(root / "index"),
            CHATOPS_DIRECTORY_FILE=str(root / "directory.yml"), CHATOPS_IDENTITY_PROVIDER="directory",
            SLACK_BOT_TOKEN="xoxb-streamed", SLACK_API_URL=slack.url,
            OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-streamed-not-real",
            CHATOPS_LLM_TIMEOUT="5", CHATOPS_LLM_MAX_RETRIES="0", CHATOPS_KEY_PREFIX=prefix,
            CHATOPS_MIN_SIMILARITY="-1", CHATOPS_NO_EVIDENCE_RULE="floor", CHATOPS_CACHE_TTL="0", CHATOPS_STREAMING="true",
        )
        container = Container(settings)
        try:
            ingest(FilesystemSource(corpus, groups=settings.group_names), container.index, container.embedder)
            yield SimpleNamespace(container=container, slack=slack, llm=llm)
        finally:
            container.close()
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)


@pytest.fixture
def fresh(system):
    system.slack.reset()
    system.slack.messages_tab_enabled = True
    system.llm.reply = ANSWER
    system.llm.chunking = split3
    system.llm.first_token_delay, system.llm.token_delay = 0.05, 0.002
    return system


_counter = iter(range(1_000_000))


def ask(system, question: str, *, where: str = "dm", asker: str = ENG) -> dict:
    ts = f"{int(time.time())}.{next(_counter):06d}"
    if where == "dm":
        payload = {"channel": f"D{asker}", "channel_type": "im", "user": asker, "text": question, "ts": ts,
                   "thread_ts": None, "cid": f"cid-{ts}", "team": "T123"}
    else:
        payload = {"channel": CHANNEL, "channel_type": "channel", "user": asker, "text": question, "ts": ts,
                   "thread_ts": ts, "cid": f"cid-{ts}", "team": "T123"}
    system.container.handler("question").handle(payload)
    return payload


def audit_row(system, payload: dict) -> dict:
    from sqlalchemy import select

    from chatops.store.models import Question
    with system.container.store._read() as conn:
        rows = conn.execute(select(Question).where(Question.correlation_id == payload["cid"])).mappings().all()
    assert len(rows) == 1, rows
    return dict(rows[0])


def whole_answer(text: str) -> str:
    from usecases.answer import SourceDoc, apply_citations
    from usecases.claims import strip_state_claims
    cleaned, _ = strip_state_claims(text)
    return apply_citations(cleaned, [SourceDoc(1, "it/laptops.txt", "laptops", None, ("",), 1.0)])[0]


def answer_methods(system) -> list[str]:
    return [c["method"] for c in system.slack.calls
            if c["method"] in ("chat.postMessage", "chat.update", "chat.startStream", "chat.stopStream")]


def test_a_dm_answer_is_streamed_after_a_status_and_ends_with_sources_and_feedback(fresh):
    payload = ask(fresh, "how do I get a laptop?")
    slack = fresh.slack
    [stream] = slack.streams_in(payload["channel"], payload["ts"])
    assert stream.thread_ts == payload["ts"]          # in the question's own thread
    # the status came first, in the same thread, while retrieval ran
    methods = [c["method"] for c in slack.calls]
    assert methods.index("assistant.threads.setStatus") < methods.index("chat.startStream")
    status = slack.calls_to("assistant.threads.setStatus")[0]
    assert status["thread_ts"] == payload["ts"] and status["status"] and status["loading_messages"]
    # the text came in pieces, in order, and is the answer whole
    assert len(stream.appends) >= 2
    assert stream.text == whole_answer(ANSWER)
    assert all(a == a.strip() or "\n" in a or a.startswith(" ") for a in stream.appends)
    # the stop: the Sources and the feedback
    assert stream.state == "stopped" and not stream.stopped_by_user
    shown = repr(stream.blocks)
    assert "*Sources*" in shown and "laptops" in shown and "feedback" in shown.lower()
    # nothing posted or updated besides the stream: the answer is shown once
    assert answer_methods(fresh) == ["chat.startStream", "chat.stopStream"]
    row = audit_row(fresh, payload)
    assert row["mode"] == "llm" and row["answer"] == stream.text
    # the model was asked to stream, with its usage in the last chunk
    assert fresh.llm.requests[-1]["stream"] is True
    assert row["completion_tokens"]


def test_a_planted_link_an_unknown_citation_and_a_claim_never_reach_any_chunk(fresh):
    fresh.llm.reply = PLANTED
    payload = ask(fresh, "how do I get a laptop, quickly?")
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    assert stream.appends
    for text in stream.appends:
        assert "attacker.example" not in text and "approved" not in text
        assert set(re.findall(r"\[(\d+)\]", text)) <= {"1"}
    assert "[link removed: attacker[.]example]" in stream.text
    assert "[7]" not in stream.text and "[12]" not in stream.text
    row = audit_row(fresh, payload)
    assert row["citations_dropped"] == 2
    assert "left out a statement" in repr(stream.blocks)        # the claims note, at the stop


def test_a_channel_answer_streams_to_the_asker_with_the_recipient_and_the_channel_note(fresh):
    payload = ask(fresh, "how do I get a laptop for the team?", where="channel")
    [stream] = fresh.slack.streams_in(CHANNEL, payload["ts"])
    assert (stream.recipient_user_id, stream.recipient_team_id) == (ENG, "T123")
    assert stream.text == whole_answer(ANSWER)
    assert "everyone in this conversation may see" in repr(stream.blocks)


def test_a_channel_whose_members_changed_is_not_streamed_but_answered_whole_for_it(fresh, monkeypatch):
    from dataclasses import replace
    handler = fresh.container.handler("question")
    ask(fresh, "warm the channel's member list", where="channel")    # read (and cached) as [ENG, BOT]
    monkeypatch.setattr(handler, "timing", replace(handler.timing, channel_fresh=0.0))
    original = list(fresh.slack.channels[CHANNEL])
    fresh.slack.reset()
    fresh.slack.channels[CHANNEL] = original + [HR]      # someone joined after the list was read
    try:
        ts = f"{int(time.time())}.{next(_counter):06d}"
        payload = {"channel": CHANNEL, "channel_type": "channel", "user": ENG, "text": "laptop order?",
                   "ts": ts, "thread_ts": ts, "cid": f"cid-{ts}", "team": "T123"}
        handler.handle(payload)
    finally:
        fresh.slack.channels[CHANNEL] = original
    # the members were read again before any stream, and with HR in it, nothing was streamed
    assert fresh.slack.calls_to("conversations.members")
    assert fresh.slack.streams_in(CHANNEL, payload["ts"]) == []
    posted = [c for c in fresh.slack.calls_to("chat.postMessage") if c.get("thread_ts") == payload["ts"]]
    assert len(posted) == 1 and "Sources" in str(posted[0].get("blocks"))
    assert audit_row(fresh, payload)["audience_members"] == sorted(original + [HR])


def test_when_slack_refuses_the_stream_the_answer_is_posted_whole_once(fresh):
    fresh.slack.messages_tab_enabled = False          # chat.startStream in a DM: messages_tab_disabled
    payload = ask(fresh, "how do I get a laptop, please?")
    assert fresh.slack.streams_in(payload["channel"], payload["ts"]) == []
    posted = fresh.slack.calls_to("chat.postMessage")
    assert len(posted) == 1 and posted[0]["thread_ts"] == payload["ts"]
    assert "Sources" in str(posted[0]["blocks"]) and "IT portal" in str(posted[0]["blocks"])
    assert audit_row(fresh, payload)["mode"] == "llm"


def watch_first_append(slack: FakeSlack, then, holding: str = "") -> threading.Thread:
    """``then(ts)`` once the first append (holding ``holding``) reached Slack."""
    def run() -> None:
        params = slack.wait_for("chat.appendStream", lambda p: holding in str(p.get("markdown_text")), timeout=10)
        then(params["ts"])
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_expired_stream_falls_back_to_the_whole_answer_in_its_place(fresh):
    fresh.llm.token_delay = 0.02
    watcher = watch_first_append(fresh.slack, fresh.slack.expire)
    payload = ask(fresh, "how do I get a laptop, again?")
    watcher.join(5)
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    assert stream.state == "expired" or stream.state != "stopped"
    updates = fresh.slack.calls_to("chat.update")
    assert len(updates) == 1 and updates[0]["ts"] == stream.ts       # the whole answer, in its place
    assert "five working days" in str(updates[0]["blocks"])
    assert fresh.slack.calls_to("chat.postMessage") == []            # nothing posted twice


def test_stop_by_the_user_ends_generation_and_is_recorded(fresh):
    fresh.llm.token_delay = 0.03
    watcher = watch_first_append(fresh.slack, fresh.slack.stop_by_user, holding="[1]")   # a source shown
    payload = ask(fresh, "how do I get a laptop, now?")
    watcher.join(5)
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    assert stream.stopped_by_user
    assert len(stream.text) < len(whole_answer(ANSWER))
    deadline = time.monotonic() + 3
    while fresh.llm.streams_cut < 1 and time.monotonic() < deadline:     # the stand-in sees the hang-up
        time.sleep(0.02)
    assert fresh.llm.streams_cut >= 1                                  # the model's stream was closed
    row = audit_row(fresh, payload)
    assert row["answer"] == stream.text and "stopped" in (row.get("stages") or {})
    assert "Sources" in repr(stream.blocks)                           # the stop still has them


def test_a_dm_stream_opens_with_the_steps_as_task_updates(fresh):
    payload = ask(fresh, "how do I get a laptop, step by step?")
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    start = stream.calls[0]
    assert start[0] == "start" and [c["type"] for c in start[1]] == ["task_update"]
    assert stream.tasks["search"]["status"] == "complete"
    assert stream.tasks["search"]["title"] == "Searching the documents"   # no configured sources to name
    # the steps came before the answer's first word, and the status was not set again once open
    kinds = [(verb, chunk["type"]) for verb, chunks in stream.calls for chunk in chunks]
    assert kinds.index(("append", "task_update")) < kinds.index(("append", "markdown_text"))
    assert stream.text == whole_answer(ANSWER)


def test_an_answer_not_written_as_it_came_ends_the_opened_stream_with_its_blocks(fresh):
    fresh.llm.mode = "error"                        # the model is down: an extractive answer
    try:
        payload = ask(fresh, "how do I get a laptop without the model?")
    finally:
        fresh.llm.mode = "ok"
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    assert stream.state == "stopped" and stream.text == ""
    assert "IT portal" in repr(stream.blocks) and "Sources" in repr(stream.blocks)
    assert answer_methods(fresh) == ["chat.startStream", "chat.stopStream"]     # shown once
    assert audit_row(fresh, payload)["mode"] == "extractive"


def test_stop_pressed_in_slack_ends_generation_before_the_next_piece(fresh):
    fresh.llm.token_delay = 0.03
    state = fresh.container.state

    def mark(ts: str) -> None:
        stream = fresh.slack.stream(ts)
        state.mark_stopped(stream.channel, stream.thread_ts)     # what the agent_session_stopped listener does
    watcher = watch_first_append(fresh.slack, mark, holding="[1]")
    payload = ask(fresh, "how do I get a laptop, stop me?")
    watcher.join(5)
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    refused = [c for c in fresh.slack.calls if c["method"] == "chat.appendStream"
               and not c.get("response", {}).get("ok", True)]
    assert refused == []                          # Slack never had to refuse a piece
    assert len(stream.text) < len(whole_answer(ANSWER))
    row = audit_row(fresh, payload)
    assert row["answer"] == stream.text and "stopped" in (row.get("stages") or {})


def test_a_redelivery_after_a_crash_mid_stream_ends_that_stream_and_answers_in_its_place(fresh):
    handler = fresh.container.handler("question")
    ts = f"{int(time.time())}.{next(_counter):06d}"
    payload = {"channel": f"D{ENG}", "channel_type": "im", "user": ENG, "text": "how do I get a laptop after a crash?", "ts": ts,
               "cid": f"cid-{ts}", "team": "T123"}
    progress = fresh.container.progress_for("question", payload)
    client = WebClient(token="xoxb-streamed", base_url=fresh.slack.url)
    left = client.chat_startStream(channel=payload["channel"], thread_ts=ts)["ts"]
    client.chat_appendStream(channel=payload["channel"], ts=left, markdown_text="Laptops are")
    progress.mark("stream_ts", left)              # what the first delivery recorded before it died
    handler.handle(payload)
    stream = fresh.slack.stream(left)
    assert stream.state == "stopped"              # ended, not left "writing"
    [update] = stream.updates                     # the whole answer in its place, once
    assert "IT portal" in str(update.get("blocks"))
    assert fresh.slack.streams_in(payload["channel"], ts) == [stream]     # no second stream


def test_stop_pressed_while_the_steps_show_ends_with_stopped_and_no_answer(fresh):
    fresh.llm.first_token_delay = 1.0              # the steps show for a second before any word
    state = fresh.container.state

    def press_stop() -> None:
        started = fresh.slack.wait_for("chat.startStream", timeout=10)
        state.mark_stopped(started["channel"], started["thread_ts"])   # what the listener does
    watcher = threading.Thread(target=press_stop, daemon=True)
    watcher.start()
    payload = ask(fresh, "how do I get a laptop, stopped early?")
    watcher.join(5)
    [stream] = fresh.slack.streams_in(payload["channel"], payload["ts"])
    assert stream.text == "" and "Stopped." in repr(stream.blocks) and "Sources" not in repr(stream.blocks)
    row = audit_row(fresh, payload)
    assert row["answer"] == "" and "stopped" in (row.get("stages") or {})
