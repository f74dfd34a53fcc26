"""Finding 9: when chat.update keeps failing, the error report went out with chat.update too.

The question handler's report tries, in order: in place of the working message, in the thread,
in a DM; each attempt counted. The real question handler, slack_sdk client and Redis; a loopback
Slack that fails the methods the test names. (The thread fallback end to end, through a
real worker and its retries: test_worker_faults.py.)
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from chatops_app.container import Container
from chatops.settings import Settings
from tests.integration.harness import text_of
from tests.security.conftest import redis_or_skip
from standins.fake_slack import FakeSlack
from chatops.progress import Progress
from bot.questions.task import QUESTION

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def responder(tmp_path_factory):
    client = redis_or_skip()
    root = tmp_path_factory.mktemp("failure-report")
    (root / "directory.yml").write_text("users:\n  - {email: ana@corp.example, slack_id: UANA, groups: [sre]}\n")
    slack = FakeSlack(users={"UANA": {"id": "UANA", "profile": {"email": "ana@corp.example"}}}, channels={}).start()
    prefix = f"chatops-report-{uuid.uuid4().hex[:8]}"
    settings = Settings.load(CHATOPS_DATA_DIR=str(root / "data"), CHATOPS_DIRECTORY_FILE=str(root / "directory.yml"),
                             CHATOPS_IDENTITY_PROVIDER="directory", SLACK_BOT_TOKEN="xoxb-report",
                             SLACK_API_URL=slack.url, CHATOPS_KEY_PREFIX=prefix, REDIS_URL="redis://127.0.0.1:6379/0",
                             OPENAI_API_KEY=None, OPENAI_BASE_URL=None, CHATOPS_CONFIG=None, QDRANT_URL=None)
    container = Container(settings)
    yield container.handler(QUESTION.kind), slack, container
    container.close()
    slack.stop()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def count(via: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("chatops_failure_report_attempts_total", {"via": via, "outcome": outcome}) or 0.0


def question(channel: str = "CENG") -> dict:
    ts = f"1700000000.{uuid.uuid4().int % 10**6:06d}"
    return {"channel": channel, "channel_type": "channel", "user": "UANA", "text": "q", "ts": ts, "thread_ts": ts,
            "cid": uuid.uuid4().hex[:16]}


def with_working_message(responder, slack, payload) -> str:
    r, _, container = responder
    progress = Progress(container.redis, container.settings.key_prefix, QUESTION.key(payload), 600)
    ts = slack._next_ts()
    progress.mark("placeholder", ts)
    return ts


def test_update_failing_falls_back_to_the_thread(responder):
    r, slack, _ = responder
    payload = question()
    with_working_message(responder, slack, payload)
    before = count("update", "failed"), count("thread", "sent")
    slack.fail_next("chat.update", status=500, count=3)          # every attempt of the SDK's retries
    r.failed(payload, "ref-123", "Slack kept failing")
    report = slack.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == payload["ts"])
    assert "Reference: ref-123" in text_of(report)
    assert count("update", "failed") == before[0] + 1 and count("thread", "sent") == before[1] + 1


def test_thread_failing_too_falls_back_to_a_dm(responder):
    r, slack, _ = responder
    payload = question()
    with_working_message(responder, slack, payload)
    before = count("dm", "sent")
    slack.fail_next("chat.update", status=500, count=3)
    slack.fail_next("chat.postMessage", status=500, count=3)
    r.failed(payload, "ref-456")
    report = slack.wait_for("chat.postMessage", lambda p: p.get("channel") == "DUANA" and "ref-456" in text_of(p))
    assert report and slack.calls_to("conversations.open")
    assert count("dm", "sent") == before + 1


def test_a_failure_after_the_answer_was_posted_leaves_the_answer_alone(responder):
    r, slack, container = responder
    payload = question()
    ts = with_working_message(responder, slack, payload)
    Progress(container.redis, container.settings.key_prefix, QUESTION.key(payload), 600).mark("posted")
    r.failed(payload, "ref-789")
    assert not [p for p in slack.calls_to("chat.update") if p.get("ts") == ts]
    assert not [p for p in slack.calls_to("chat.postMessage") if "ref-789" in text_of(p)]
