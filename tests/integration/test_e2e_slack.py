"""End to end: signed Slack requests -> web app -> Redis -> a real worker process -> fake Slack.

Real parts: the FastAPI/Bolt web app served by uvicorn, Celery on the real Redis,
a `chatops worker` subprocess with an embedded index, the real slack_sdk and
openai clients. Stand-ins on loopback: the Slack Web API and the LLM server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from tests.standins.fake_openai import FakeOpenAI
from tests.standins.fake_slack import FakeSlack, block_actions_body, event_body, sign

SECRET = "e2e-signing-secret"
BOT = "UBOT"
ENG, HR, OUTSIDER = "UENG", "UHR", "UOUT"

CORPUS = {
    ".acl.yml": """
- match: "handbook/**"
  public: true
- match: "runbooks/**"
  groups: [engineering]
- match: "hr/**"
  groups: [hr]
""",
    "handbook/vacation.md": "# Vacation policy\n\nEveryone gets 27 days of paid vacation per calendar year.\n",
    "runbooks/restart-billing.md": (
        "# Restart the billing service\n\n## Steps\n\nDrain the billing queue with `billctl drain`, "
        "then run `billctl restart --graceful` on the billing-7 cluster.\n"),
    "hr/salary-bands.md": "# Salary bands\n\nThe L5 salary band runs from 121,000 to 152,000 EUR.\n",
}
DIRECTORY = f"""
users:
  - {{email: eng@corp.example, slack_id: {ENG}, groups: [engineering]}}
  - {{email: hr@corp.example, slack_id: {HR}, groups: [hr]}}
"""

pytestmark = pytest.mark.redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reply(request: dict) -> str:
    """A scripted model: cites source 1 and names its title, like a model that read it."""
    prompt = request["messages"][-1]["content"]
    titles = re.findall(r'<source n="(\d+)" title="([^"]*)"', prompt)
    if not titles:
        return "I could not find that in the documents."
    return f"According to {titles[0][1]}, here is what to do [{titles[0][0]}]. See also [9]."


def _text_of(params: dict) -> str:
    parts = [params.get("text") or ""]
    for block in params.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"].get("text", ""))
        for el in block.get("elements") or []:
            if isinstance(el, dict) and isinstance(el.get("text"), (str, dict)):
                parts.append(el["text"] if isinstance(el["text"], str) else el["text"].get("text", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
    except redis.RedisError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    root = tmp_path_factory.mktemp("e2e")
    corpus = root / "corpus"
    for rel, text in CORPUS.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text)
    (root / "directory.yml").write_text(DIRECTORY)
    run_id = uuid.uuid4().hex[:8]

    slack = FakeSlack(
        users={
            ENG: {"id": ENG, "profile": {"email": "eng@corp.example"}},
            HR: {"id": HR, "profile": {"email": "hr@corp.example"}},
            OUTSIDER: {"id": OUTSIDER, "profile": {"email": "someone@else.example"}},
            BOT: {"id": BOT, "is_bot": True, "profile": {}},
        },
        channels={"CENG": [ENG, BOT], "CMIX": [ENG, HR, BOT]},
        bot_user_id=BOT,
    ).start()
    llm = FakeOpenAI(reply=_reply).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_", "CHATOPS_", "QDRANT_", "ENTRA_"))},
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CHATOPS_QUEUE": f"chatops-e2e-{run_id}",
        "CHATOPS_KEY_PREFIX": f"chatops-e2e-{run_id}",
        "CHATOPS_DATA_DIR": str(root / "data"),
        "CHATOPS_DIRECTORY_FILE": str(root / "directory.yml"),
        "SLACK_BOT_TOKEN": "xoxb-e2e-token",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.url,
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": "sk-e2e-not-a-real-key",
        "CHATOPS_LLM_TIMEOUT": "3",
        "CHATOPS_LLM_MAX_RETRIES": "0",
        "CHATOPS_LOG_FORMAT": "json",
    }
    bin_dir = Path(sys.executable).parent
    ingest = subprocess.run([str(bin_dir / "chatops"), "ingest", str(corpus)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    log_path = root / "worker.log"
    log_file = open(log_path, "w")
    worker = subprocess.Popen([str(bin_dir / "chatops"), "worker", "--concurrency", "2"], env=env,
                              stdout=log_file, stderr=subprocess.STDOUT)

    # The web process, in this process, on a real port.
    import uvicorn

    from chatops.cli import build_web
    from chatops.settings import Settings

    settings = Settings.load(**{k: v for k, v in env.items() if k.startswith(("SLACK_", "CHATOPS_", "REDIS_"))})
    web = build_web(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "web app did not start"

    yield {"url": f"http://127.0.0.1:{port}", "slack": slack, "llm": llm, "log": log_path,
           "worker": worker, "prefix": env["CHATOPS_KEY_PREFIX"]}

    server.should_exit = True
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
    log_file.close()
    slack.stop()
    llm.stop()
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in r.scan_iter(f"{env['CHATOPS_KEY_PREFIX']}:*"):
        r.delete(key)


_counter = iter(range(10_000))


def _ts() -> str:
    return f"{int(time.time())}.{next(_counter):06d}"


def post_event(system, event: dict, *, secret: str = SECRET, retry: int | None = None,
               timestamp: int | None = None) -> requests.Response:
    body = event_body(event, event_id=f"Ev{uuid.uuid4().hex[:10]}")
    headers = {"Content-Type": "application/json", **sign(body, secret, timestamp)}
    if retry is not None:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return requests.post(f"{system['url']}/slack/events", data=body, headers=headers, timeout=10)


def mention(channel: str, user: str, text: str, thread_ts: str | None = None) -> dict:
    event = {"type": "app_mention", "channel": channel, "user": user, "text": f"<@{BOT}> {text}",
             "ts": _ts(), "channel_type": "channel"}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def final_reply(system, channel: str, thread_ts: str, timeout: float = 30.0) -> str:
    """The text of the answer that replaced the working message in this thread."""
    slack = system["slack"]
    working = slack.wait_for("chat.postMessage",
                             lambda p: p.get("channel") == channel and p.get("thread_ts") == thread_ts,
                             timeout=timeout)
    del working
    update = slack.wait_for("chat.update",
                            lambda p: p.get("channel") == channel and _thread_of(slack, p) == thread_ts,
                            timeout=timeout)
    return _text_of(update)


def _thread_of(slack, update_params: dict) -> str | None:
    """Which thread a chat.update belongs to: the thread of the message it updates."""
    for call in slack.calls:
        if call["method"] == "chat.postMessage" and call.get("response_ts") == update_params.get("ts"):
            return call["params"].get("thread_ts")
    return None


def test_mention_answer_cites_permitted_document_in_thread(system):
    event = mention("CENG", ENG, "how do I restart the billing service?")
    resp = post_event(system, event)
    assert resp.status_code == 200
    text = final_reply(system, "CENG", event["ts"])
    assert "runbooks/restart-billing.md" in text
    assert "[9]" not in text  # a citation to a source that was never supplied is dropped
    assert "hr/salary-bands.md" not in text


def test_channel_answer_only_uses_documents_every_member_may_see(system):
    event = mention("CMIX", ENG, "how do I restart the billing service?")
    assert post_event(system, event).status_code == 200
    text = final_reply(system, "CMIX", event["ts"])
    assert "runbooks/restart-billing.md" not in text
    assert "billctl" not in text
    # The asker alone may see it: an ephemeral offer of the full answer by DM.
    offer = system["slack"].wait_for(
        "chat.postEphemeral", lambda p: p.get("channel") == "CMIX" and p.get("user") == ENG)
    button = next(el for b in offer["blocks"] if b["type"] == "actions" for el in b["elements"])
    assert button["action_id"] == "answer_in_dm"

    # Someone else clicking the offer gets nothing.
    body = block_actions_body(HR, "CMIX", {**button, "block_id": "b1"})
    resp = requests.post(f"{system['url']}/slack/events", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)},
                         timeout=10)
    assert resp.status_code == 200
    system["slack"].wait_for("chat.postEphemeral", lambda p: p.get("user") == HR
                             and "Only the person who asked" in _text_of(p))
    # The asker's click: the full answer in a DM.
    body = block_actions_body(ENG, "CMIX", {**button, "block_id": "b1"})
    resp = requests.post(f"{system['url']}/slack/events", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body, SECRET)},
                         timeout=10)
    assert resp.status_code == 200
    dm = system["slack"].wait_for("conversations.open", lambda p: p.get("users") == ENG)
    assert dm
    update = system["slack"].wait_for("chat.update", lambda p: p.get("channel") == f"D{ENG}"
                                      and "runbooks/restart-billing.md" in _text_of(p))
    assert update


def test_dm_question_uses_the_askers_permissions(system):
    ts = _ts()
    event = {"type": "message", "channel": f"D{HR}", "channel_type": "im", "user": HR,
             "text": "what is the L5 salary band?", "ts": ts}
    assert post_event(system, event).status_code == 200
    update = system["slack"].wait_for("chat.update", lambda p: p.get("channel") == f"D{HR}"
                                      and "hr/salary-bands.md" in _text_of(p), timeout=30)
    assert "runbooks/" not in _text_of(update)


def test_follow_up_in_answered_thread_is_answered(system):
    first = mention("CENG", ENG, "how do I restart the billing service?")
    post_event(system, first)
    final_reply(system, "CENG", first["ts"])
    before = len(system["slack"].calls_to("chat.update"))
    follow = {"type": "message", "channel": "CENG", "channel_type": "channel", "user": ENG,
              "text": "and which cluster is that on?", "ts": _ts(), "thread_ts": first["ts"]}
    assert post_event(system, follow).status_code == 200
    deadline = time.time() + 30
    while time.time() < deadline and len(system["slack"].calls_to("chat.update")) <= before:
        time.sleep(0.1)
    after = system["slack"].calls_to("chat.update")[before:]
    assert any("runbooks/restart-billing.md" in _text_of(p) for p in after)
    # The model saw the earlier exchange as context.
    last_request = system["llm"].requests[-1]
    assert any(m["content"] == "how do I restart the billing service?" for m in last_request["messages"])


def test_unthreaded_channel_message_is_ignored_and_bot_messages_too(system):
    n = len(system["slack"].calls_to("chat.postMessage"))
    plain = {"type": "message", "channel": "CENG", "channel_type": "channel", "user": ENG,
             "text": "lunch?", "ts": _ts()}
    own = {"type": "message", "channel": f"D{ENG}", "channel_type": "im", "user": BOT, "bot_id": "B123",
           "text": "an answer", "ts": _ts()}
    assert post_event(system, plain).status_code == 200
    assert post_event(system, own).status_code == 200
    time.sleep(1.5)
    assert len(system["slack"].calls_to("chat.postMessage")) == n


def test_slack_retry_produces_no_second_answer(system):
    event = mention("CENG", ENG, "how many vacation days do we get?")
    assert post_event(system, event).status_code == 200
    assert post_event(system, event, retry=1).status_code == 200
    assert post_event(system, event, retry=2).status_code == 200
    text = final_reply(system, "CENG", event["ts"])
    assert "handbook/vacation.md" in text
    time.sleep(1.5)
    working = [p for p in system["slack"].calls_to("chat.postMessage") if p.get("thread_ts") == event["ts"]]
    assert len(working) == 1


def test_bad_signature_and_stale_request_are_rejected(system):
    event = mention("CENG", ENG, "how do I restart the billing service?")
    assert post_event(system, event, secret="wrong-secret").status_code == 401
    stale = int(time.time()) - 6 * 60
    assert post_event(system, event, timestamp=stale).status_code == 401
    time.sleep(1.5)
    assert not [p for p in system["slack"].calls_to("chat.postMessage") if p.get("thread_ts") == event["ts"]]


def test_unknown_user_is_refused_without_retrieval(system):
    requests_before = len(system["llm"].requests)
    event = mention("CENG", OUTSIDER, "how do I restart the billing service?")
    assert post_event(system, event).status_code == 200
    text = final_reply(system, "CENG", event["ts"])
    assert "couldn't find you in the company directory" in text
    assert "runbooks" not in text
    assert len(system["llm"].requests) == requests_before


def test_llm_down_gives_a_clear_extractive_answer(system):
    system["llm"].mode = "error"
    try:
        event = mention("CENG", ENG, "how do I restart the billing service?")
        assert post_event(system, event).status_code == 200
        text = final_reply(system, "CENG", event["ts"])
    finally:
        system["llm"].mode = "ok"
    assert "language model is unavailable" in text
    assert "runbooks/restart-billing.md" in text


def test_logs_follow_one_question_and_hold_no_secrets(system):
    event = mention("CENG", ENG, "how many vacation days do we get?")
    post_event(system, event)
    final_reply(system, "CENG", event["ts"])
    time.sleep(0.5)
    lines = [json.loads(line) for line in Path(system["log"]).read_text().splitlines()
             if line.startswith("{")]
    answered = [l for l in lines if l.get("msg") == "question answered"]
    assert answered and all(l.get("correlation_id") for l in answered)
    raw = Path(system["log"]).read_text()
    assert "xoxb-e2e-token" not in raw and "sk-e2e-not-a-real-key" not in raw
