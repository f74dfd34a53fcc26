"""A thread's history goes only to those who may read it.

Each answer in a thread is kept as an exchange for the follow-ups. A private reply (``reply:
ephemeral``) was made for its asker alone: its exchange must never reach anyone else's prompt,
whether they reply in the thread or @-mention the bot inside it; the asker's own follow-ups keep
it. A channel answer stays the history of the channel's follow-ups.

Everything is real and in-process as the worker runs it: signed Slack payloads through the
composition root's web app, the question handler, the pipeline (directory file, channel members
from the loopback Slack, an embedded index), the real openai SDK against the loopback model,
which records every request. The model is a leaky one: it repeats the thread's earlier answers.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import yaml
from fastapi.testclient import TestClient

from chatops.settings import Settings
from chatops_app.container import Container
from connectors.sources.registry import filesystem_spec, open_source
from standins.fake_openai import FakeOpenAI
from standins.fake_slack import FakeSlack, event_body, sign
from tests.integration.harness import text_of
from usecases.answer import REWRITE_PROMPT
from usecases.ingest import ingest

pytestmark = pytest.mark.redis

SECRET = "thread-history-signing-secret"
HR, ENG, BOT = "UHRA", "UENGB", "UBOT"       # A is in hr, B is not
QUIET, OPEN, HRC = "CQUIET", "COPEN", "CHR"  # answers only the asker | in the thread | in the thread, HR only
BANDS = "senior engineer EUR 95k to 120k"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "hr/**"\n  groups: [hr]\n',
    "hr/salary-bands.md": f"# Salary bands\n\nThe salary band for a {BANDS}, staff engineer EUR 120k to 150k.\n",
    "handbook/pay-dates.md": "# Pay dates\n\nSalaries are paid on the 25th of each month by bank transfer.\n",
}
DIRECTORY = {"users": [{"email": "hr@corp.example", "groups": ["hr"]}, {"email": "eng@corp.example", "groups": []}]}
CONFIG = {"channels": {QUIET: {"reply": "ephemeral"}}}


def leaky_model(request: dict) -> str:
    """Rewrites: the last user line. Answers: whatever the thread said before, then the sources."""
    messages = request["messages"]
    if messages[0]["content"] == REWRITE_PROMPT:
        return messages[-1]["content"].rsplit("User: ", 1)[-1]
    earlier = " ".join(m["content"] for m in messages if m["role"] == "assistant")
    sources = messages[-1]["content"].split("<source ")[1:]
    quoted = " ".join(s.split(">", 1)[1].split("</source>")[0].strip() for s in sources)
    return (f"As I said earlier in this thread: {earlier} " if earlier else "") + f"{quoted} [1]"


@pytest.fixture
def world(tmp_path, redis_client):
    client = redis_client
    for rel, text in CORPUS.items():
        (tmp_path / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "corpus" / rel).write_text(text)
    (tmp_path / "directory.yml").write_text(yaml.safe_dump(DIRECTORY))
    (tmp_path / "config.yml").write_text(yaml.safe_dump(CONFIG))
    users = {HR: {"id": HR, "profile": {"email": "hr@corp.example"}},
             ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
             BOT: {"id": BOT, "is_bot": True}}
    channels = {QUIET: [HR, ENG, BOT], OPEN: [HR, ENG, BOT], HRC: [HR, BOT]}
    slack = FakeSlack(users=users, channels=channels, bot_user_id=BOT).start()
    llm = FakeOpenAI(reply=leaky_model).start()
    prefix = f"chatops-threads-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(
        CHATOPS_DATA_DIR=str(tmp_path / "data"), QDRANT_PATH=str(tmp_path / "index"), QDRANT_URL=None,
        DATABASE_URL="sqlite:///:memory:", CHATOPS_DIRECTORY_FILE=str(tmp_path / "directory.yml"),
        CHATOPS_IDENTITY_PROVIDER="directory", CHATOPS_CONFIG=str(tmp_path / "config.yml"),
        SLACK_BOT_TOKEN="xoxb-threads", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.url,
        OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-threads-key-000", CHATOPS_KEY_PREFIX=prefix,
        CHATOPS_MIN_SIMILARITY="0.0", CHATOPS_NO_EVIDENCE_RULE="floor", CHATOPS_TOP_K="1", CHATOPS_SLACK_CHANNEL_PACE="0", CHATOPS_CACHE_TTL="0")
    container = Container(settings)
    queued: list[tuple[str, dict]] = []
    container._built["dispatch"] = lambda kind, payload: queued.append((kind, payload))
    ingest(open_source(filesystem_spec(tmp_path / "corpus"), settings.group_names), container.index,
           container.embedder)
    web = TestClient(container.web_app())
    yield {"slack": slack, "llm": llm, "container": container, "queued": queued, "web": web}
    web.close()
    container.close()
    slack.stop()
    llm.stop()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def say_only(w, event: dict) -> None:
    body = event_body(event, f"Ev{uuid.uuid4().hex[:10]}")
    resp = w["web"].post("/slack/events", content=body,
                         headers={"Content-Type": "application/json", **sign(body, SECRET)})
    assert resp.status_code == 200, resp.text


def say(w, event: dict) -> list[dict]:
    """Slack delivers the event; the worker runs what it queued. The model requests it caused."""
    say_only(w, event)
    before = len(w["llm"].requests)
    assert w["queued"], "the event was not taken as a question"
    while w["queued"]:
        kind, payload = w["queued"].pop(0)
        w["container"].handler(kind).handle(payload)
    return w["llm"].requests[before:]


def mention(channel: str, user: str, text: str, thread_ts: str | None = None) -> dict:
    event = {"type": "app_mention", "channel": channel, "channel_type": "channel", "user": user,
             "text": f"<@{BOT}> {text}", "ts": f"{time.time():.6f}"}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def reply(channel: str, user: str, text: str, thread_ts: str) -> dict:
    return {"type": "message", "channel": channel, "channel_type": "channel", "user": user, "text": text,
            "ts": f"{time.time():.6f}", "thread_ts": thread_ts}


def shown_to(w, user: str) -> str:
    return " ".join(text_of(p) for p in w["slack"].calls_to("chat.postEphemeral") if p.get("user") == user)


def private_salary_answer(w) -> str:
    """A (hr) asks in the ephemeral channel; the answer quotes the bands to A alone. Its thread."""
    first = mention(QUIET, HR, "what are the salary bands for engineers?")
    calls = say(w, first)
    assert calls and BANDS in shown_to(w, HR)           # A's private answer carries the restricted text
    assert BANDS not in shown_to(w, ENG)
    return first["ts"]


@pytest.mark.parametrize("how", [reply, mention], ids=["thread_reply", "mention_in_thread"])
def test_a_private_answer_is_never_history_for_someone_else_in_its_thread(world, how):
    w = world
    thread = private_salary_answer(w)
    w["slack"].reset()
    calls = say(w, how(QUIET, ENG, "and when are salaries paid?", thread))
    assert calls, "B's question was answered without the model: nothing checked"
    for request in calls:                               # neither a rewrite nor the answer carries it
        assert BANDS not in json.dumps(request), request["messages"][0]["content"][:60]
        assert not any(m["role"] == "assistant" for m in request["messages"])
    assert BANDS not in shown_to(w, ENG)
    assert "25th" in shown_to(w, ENG)                   # B still gets an answer from what B may see


def test_the_askers_own_follow_up_keeps_their_private_history(world):
    w = world
    thread = private_salary_answer(w)
    calls = say(w, reply(QUIET, HR, "and for staff engineers?", thread))
    rewrite = [c for c in calls if c["messages"][0]["content"] == REWRITE_PROMPT]
    answer = [c for c in calls if c["messages"][0]["content"] != REWRITE_PROMPT]
    assert len(rewrite) == 1 and BANDS in json.dumps(rewrite[0])
    assert len(answer) == 1 and any(m["role"] == "assistant" and BANDS in m["content"]
                                    for m in answer[0]["messages"])


def test_someone_elses_follow_up_to_a_private_answer_does_not_make_it_history_for_the_asker_either(world):
    """B's exchange in A's thread was made for B: A's next follow-up sees A's history, not B's."""
    w = world
    thread = private_salary_answer(w)
    say(w, reply(QUIET, ENG, "what is the pay date, with a code word ZEBRA-ONLY-FOR-B?", thread))
    calls = say(w, reply(QUIET, HR, "and for staff engineers?", thread))
    assert calls and all("ZEBRA-ONLY-FOR-B" not in json.dumps(c) for c in calls)
    assert any(BANDS in json.dumps(c) for c in calls)


def test_a_channel_answer_stays_history_for_the_channels_follow_ups(world):
    w = world
    first = mention(OPEN, ENG, "when are salaries paid?")
    say(w, first)
    calls = say(w, reply(OPEN, HR, "and by which means?", first["ts"]))
    assert any(m["role"] == "assistant" and "25th" in m["content"] for c in calls for m in c["messages"])


def test_what_an_answer_took_from_its_history_goes_with_it(world):
    """In an HR-only channel, a follow-up's answer repeats the bands from its history while its own
    document is public. When someone outside HR joins, neither exchange is their history."""
    w = world
    first = mention(HRC, HR, "what are the salary bands for engineers?")
    say(w, first)
    calls = say(w, reply(HRC, HR, "and when are salaries paid?", first["ts"]))
    answer = next(c for c in calls if c["messages"][0]["content"] != REWRITE_PROMPT)
    assert "Pay dates" in answer["messages"][-1]["content"] and "Salary bands" not in answer["messages"][-1]["content"]
    w["slack"].channels[HRC].append(ENG)
    say_only(w, {"type": "member_joined_channel", "channel": HRC, "user": ENG})
    calls = say(w, reply(HRC, ENG, "and by which means?", first["ts"]))
    assert calls and all(BANDS not in json.dumps(c) for c in calls)
