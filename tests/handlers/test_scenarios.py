"""Handler scenarios, in the style of slack-bolt's own tests: a signed payload in, the Web API
calls it causes asserted on a loopback Slack.

No Celery: the web app (the composition root's, signatures checked) hands each task to a
recorder instead of the queue, and the test runs the task's handler in this process. Real
parts: the web app and Bolt, the handlers, the use cases, an embedded index with the
offline model, the audit store (in-memory SQLite), Redis for duplicate claims and steps.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import yaml
from fastapi.testclient import TestClient

from chatops.settings import Settings
from chatops_app.container import Container
from connectors.sources.registry import filesystem_spec, open_source
from tests.actions_example import catalogue
from tests.integration.harness import text_of
from standins.fake_openai import FakeOpenAI
from standins.fake_slack import FakeSlack, block_actions_body, event_body, sign
from standins.fake_webhook import FakeWebhook
from usecases.ingest import ingest

pytestmark = pytest.mark.redis

SECRET = "scenario-signing-secret"
HOOK_SECRET = "scenario-hook-secret"
ANA, BEN, HR, BOT = "UANA", "UBEN", "UHR", "UBOT"
CORPUS = {
    ".acl.yml": '- match: "handbook/**"\n  public: true\n- match: "runbooks/**"\n  groups: [sre]\n'
                '- match: "hr/**"\n  groups: [hr]\n',
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "runbooks/restart.md": "# Restart billing\n\nRun `billctl restart --graceful` on the billing-7 cluster.\n",
    "hr/salary-bands.md": "# Salary bands\n\nThe L5 salary band runs from 121,000 to 152,000 EUR.\n",
}
DIRECTORY = {"users": [{"email": "ana@corp.example", "groups": ["sre"]}, {"email": "ben@corp.example", "groups": []},
                       {"email": "hr@corp.example", "groups": ["hr"]}]}


def model(request: dict):
    """Proposes a restart when asked to; otherwise repeats its first source."""
    prompt = request["messages"][-1]["content"]
    if "please restart billing" in prompt.rsplit("Question:", 1)[-1] and request.get("tools"):
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "restart_service", "arguments": json.dumps({"service": "billing", "env": "staging"})}}]}
    title = prompt.split('title="', 1)[1].split('"', 1)[0] if 'title="' in prompt else "nothing"
    return f"From {title} [1]."


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    root = tmp_path_factory.mktemp("scenarios")
    for rel, text in CORPUS.items():
        (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / rel).write_text(text)
    (root / "directory.yml").write_text(yaml.safe_dump(DIRECTORY))
    slack = FakeSlack(users={u: {"id": u, "profile": {"email": f"{n}@corp.example"}}
                             for u, n in ((ANA, "ana"), (BEN, "ben"), (HR, "hr"))} | {BOT: {"id": BOT, "is_bot": True}},
                      channels={"COPS": [ANA, BEN, BOT], "CHR": [HR, BOT]}, bot_user_id=BOT).start()
    llm, hook = FakeOpenAI(reply=model).start(), FakeWebhook().start()
    (root / "config.yml").write_text(catalogue(hook.url, secret_env="SCENARIO_HOOK_SECRET"))
    prefix = f"chatops-scenario-{uuid.uuid4().hex[:8]}"
    import os

    os.environ["SCENARIO_HOOK_SECRET"] = HOOK_SECRET
    settings = Settings.load(
        CHATOPS_DATA_DIR=str(root / "data"), QDRANT_PATH=str(root / "index"), QDRANT_URL=None,
        DATABASE_URL="sqlite:///:memory:", CHATOPS_DIRECTORY_FILE=str(root / "directory.yml"),
        CHATOPS_IDENTITY_PROVIDER="directory", CHATOPS_CONFIG=str(root / "config.yml"),
        SLACK_BOT_TOKEN="xoxb-scenario", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=slack.url,
        OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-scenario-key-000", CHATOPS_KEY_PREFIX=prefix,
        CHATOPS_MIN_SIMILARITY="0.05", CHATOPS_NO_EVIDENCE_RULE="floor", CHATOPS_CACHE_TTL="0", CHATOPS_SLACK_CHANNEL_PACE="0")
    container = Container(settings)
    ingest(open_source(filesystem_spec(root / "corpus"), settings.group_names), container.index, container.embedder)
    queued: list[tuple[str, dict]] = []
    container._built["dispatch"] = lambda kind, payload: queued.append((kind, payload))   # instead of Celery
    web = TestClient(container.web_app())
    yield {"container": container, "slack": slack, "llm": llm, "hook": hook, "web": web, "queued": queued}
    web.close()
    container.close()
    for server in (slack, llm, hook):
        server.stop()
    os.environ.pop("SCENARIO_HOOK_SECRET", None)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def post(world, body: bytes, content_type: str) -> None:
    resp = world["web"].post("/slack/events", content=body, headers={"Content-Type": content_type,
                                                                       **sign(body, SECRET)})
    assert resp.status_code == 200, resp.text


def run_queued(world) -> list[str]:
    """Run every queued task's handler, as a worker would; returns the kinds run."""
    kinds = []
    while world["queued"]:
        kind, payload = world["queued"].pop(0)
        world["container"].handler(kind).handle(payload)
        kinds.append(kind)
    return kinds


def mention(world, channel: str, user: str, text: str) -> dict:
    event = {"type": "app_mention", "channel": channel, "channel_type": "channel", "user": user,
             "text": f"<@{BOT}> {text}", "ts": f"{time.time():.6f}"}
    post(world, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")
    return event


def answer_in_thread(world, channel: str, ts: str) -> str:
    streamed = [m for m in world["slack"].shown() if m.get("streamed") and m.get("thread_ts") == ts]
    if streamed:
        assert len(streamed) == 1, f"{len(streamed)} answers in the thread"
        return text_of(streamed[0])
    posted = {c["response"]["ts"]: c["params"] for c in world["slack"].calls
              if c["method"] == "chat.postMessage" and c.get("response") and c["params"].get("thread_ts") == ts}
    updates = [p for p in world["slack"].calls_to("chat.update") if p.get("ts") in posted]
    assert len(updates) == 1, f"{len(updates)} answers in the thread"
    return text_of(updates[0])


def test_a_mention_is_answered_in_its_thread_for_everyone_there_with_an_audit_row(world):
    event = mention(world, "COPS", ANA, "how do I restart billing?")
    assert run_queued(world) == ["question"]
    answer = answer_in_thread(world, "COPS", event["ts"])
    # BEN is in the channel and may not see runbooks: the answer uses none, and ANA alone is
    # offered the full answer.
    assert "runbooks/restart.md" not in answer and "billctl" not in answer
    assert world["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == ANA
                                   and p.get("thread_ts") == event["ts"])
    rows = [e for e in world["container"].store.export(since=_yesterday()) if e["kind"] == "question"
            and e["question"]["channel"] == "COPS"]
    assert rows and rows[-1]["question"]["asker_slack_id"] == ANA


def test_a_dm_uses_the_askers_own_permissions(world):
    event = {"type": "message", "channel": f"D{HR}", "channel_type": "im", "user": HR,
             "text": "what is the L5 salary band?", "ts": f"{time.time():.6f}"}
    post(world, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")
    assert run_queued(world) == ["question"]
    update = world["slack"].wait_for_shown(lambda p: p.get("channel") == f"D{HR}")
    assert "hr/salary-bands.md" in text_of(update)


def test_a_proposal_approved_by_click_runs_once(world):
    event = mention(world, "COPS", BEN, "please restart billing in staging")
    run_queued(world)
    proposal = world["slack"].wait_for("chat.postMessage", lambda p: p.get("thread_ts") == event["ts"]
                                       and any(b.get("type") == "actions" for b in p.get("blocks") or []))
    approve = next(e for b in proposal["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == "proposal_approve")
    message = {"ts": next(c["response"]["ts"] for c in world["slack"].calls if c["params"] is proposal)}
    for user in (BEN, ANA, ANA):     # BEN may not; an SRE may, once; a second click changes nothing
        body = block_actions_body(user, "COPS", {**approve, "block_id": "b", "action_ts": f"{time.time():.6f}"},
                                  message)
        post(world, body, "application/x-www-form-urlencoded")
        assert run_queued(world) == ["decision"]
    assert len(world["hook"].requests) == 1
    result = world["slack"].wait_for("chat.postMessage", lambda p: p.get("thread_ts") == event["ts"]
                                     and "succeeded" in text_of(p))
    assert "restart_service" in text_of(result)
    refusals = [text_of(p) for p in world["slack"].calls_to("chat.postEphemeral") if p.get("user") in (BEN, ANA)]
    assert any("You can't approve this" in r for r in refusals)      # BEN: not an approver
    assert any("already approved" in r for r in refusals)


def test_the_full_answer_offer_sends_the_askers_answer_by_dm(world):
    world["slack"].channels["COPS"] = [ANA, HR, BOT]      # HR here: the runbook is hidden from the channel
    event = mention(world, "COPS", ANA, "how do I restart billing?")
    run_queued(world)
    offer = world["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == ANA and p.get("blocks")
                                    and p.get("thread_ts") == event["ts"])
    button = next(e for b in offer["blocks"] if b["type"] == "actions" for e in b["elements"])
    body = block_actions_body(ANA, "COPS", {**button, "action_ts": f"{time.time():.6f}"})
    post(world, body, "application/x-www-form-urlencoded")
    assert run_queued(world) == ["answer_in_dm"]
    dm = world["slack"].wait_for("chat.update", lambda p: p.get("channel") == f"D{ANA}")
    assert "runbooks/restart.md" in text_of(dm)


def test_a_redelivered_question_is_answered_once(world):
    event = mention(world, "COPS", ANA, "how many vacation days?")
    kind, payload = world["queued"][0]
    run_queued(world)
    world["container"].handler(kind).handle(payload)        # the broker delivers it again
    answer_in_thread(world, "COPS", event["ts"])             # still exactly one answer


def test_a_slack_retry_of_the_same_event_is_not_queued_twice(world):
    event = {"type": "app_mention", "channel": "COPS", "channel_type": "channel", "user": ANA,
             "text": f"<@{BOT}> hi", "ts": f"{time.time():.6f}"}
    body = event_body(event, "EvRetry1")
    post(world, body, "application/json")
    post(world, body, "application/json")
    assert [k for k, _ in world["queued"]] == ["question"]
    world["queued"].clear()


def _yesterday():
    from datetime import datetime, timedelta, timezone

    return datetime.now(timezone.utc) - timedelta(days=1)


def test_an_answer_is_counted_by_mode_and_its_stages_timed(world):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    answers = sum(sample("chatops_answers_total", mode=m, route=r) for m in ("llm", "extractive", "no-evidence")
                  for r in ("none", "gpt-4o-mini"))
    retrievals = sample("chatops_answer_stage_duration_seconds_count", stage="retrieval")
    event = {"type": "message", "channel": f"D{HR}", "channel_type": "im", "user": HR,
             "text": "what is the L5 salary band?", "ts": f"{time.time():.6f}"}
    post(world, event_body(event, f"Ev{uuid.uuid4().hex[:10]}"), "application/json")
    assert run_queued(world) == ["question"]
    world["slack"].wait_for_shown(lambda p: p.get("channel") == f"D{HR}")
    assert sum(sample("chatops_answers_total", mode=m, route=r) for m in ("llm", "extractive", "no-evidence")
               for r in ("none", "gpt-4o-mini")) == answers + 1
    assert sample("chatops_answer_stage_duration_seconds_count", stage="retrieval") == retrievals + 1
