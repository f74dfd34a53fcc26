"""The daily report in Slack says no more than the privacy setting allows, and never quotes what
was asked where the report channel could not read it: direct messages, group DMs, private
channels, or a conversation Slack cannot tell about.

The composition root's maintenance handler posts to the loopback Slack (conversations.info says
which channels are public, as Slack does); the audit trail is a SQLite file; the privacy setting is
the console's, in the real Redis.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chatops.settings import Settings
from chatops.store.tools import ToolRecords
from bot.maintenance.task import MAINTENANCE
from chatops_app.container import Container
from console.privacy import PrivacySetting
from standins.fake_slack import FakeSlack
from tests.integration.harness import text_of
from tests.security.conftest import redis_or_skip

pytestmark = pytest.mark.redis

PUBLIC = "where is the parking garage map?"
ASKED_ELSEWHERE = {
    "DANA0001": ("im", "how do I report my manager for harassment?"),
    "CLEGAL01": ("group", "is the acme merger still going ahead?"),       # private, as a message event says
    "CBOARD01": (None, "when are the layoffs announced?"),                # private, an @-mention: no type
    "GMPIM001": ("mpim", "who else is interviewing at globex?"),
    "CGONE001": (None, "can I see the ceo's expense claims?"),           # Slack no longer knows it
}


@pytest.fixture
def build(tmp_path):
    client = redis_or_skip()
    slack = FakeSlack(channels={"COPS0001": ["UANA", "UBOT"], "CLEGAL01": ["UANA", "UBOT"],
                                "CBOARD01": ["UANA", "UBOT"]},
                      private_channels={"CLEGAL01", "CBOARD01"}).start()
    (tmp_path / "directory.yml").write_text("users: []\n")
    prefixes, containers = [], []

    def make() -> Container:
        prefix = f"chatops-report-{uuid.uuid4().hex[:8]}"
        prefixes.append(prefix)
        container = Container(Settings.load(
            DATABASE_URL=f"sqlite:///{tmp_path / f'{prefix}.db'}", CHATOPS_DATA_DIR=str(tmp_path / "data"),
            SLACK_BOT_TOKEN="xoxb-report-test", SLACK_SIGNING_SECRET="report-signing-secret",
            SLACK_API_URL=slack.url, CHATOPS_KEY_PREFIX=prefix, CHATOPS_REPORT_CHANNEL="CREPORT1",
            CHATOPS_CACHE_TTL="0", CHATOPS_SLACK_CHANNEL_PACE="0", CHATOPS_IDENTITY_PROVIDER="directory",
            CHATOPS_DIRECTORY_FILE=str(tmp_path / "directory.yml")))
        containers.append(container)
        at = datetime.now(UTC) - timedelta(hours=1)
        for _ in range(2):
            container.store.record_question(question=PUBLIC, mode="no-evidence", at=at, channel="COPS0001",
                                            channel_type=None, asker_slack_id="UANA")
        for channel, (kind, text) in ASKED_ELSEWHERE.items():
            container.store.record_question(question=text, mode="no-evidence", at=at, channel=channel,
                                            channel_type=kind, asker_slack_id="UANA")
        return container

    yield slack, make
    for c in containers:
        c.close()
    slack.stop()
    for prefix in prefixes:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def posted_report(slack, container, privacy: str) -> str:
    s = container.settings
    PrivacySetting(container.redis, s.key_prefix, s.console_privacy, b"").set(privacy)
    slack.reset()
    container.handler(MAINTENANCE.kind).handle({"job": "daily_report"})
    (posted,) = slack.calls_to("chat.postMessage")
    assert posted["channel"] == "CREPORT1"
    return text_of(posted)


@pytest.mark.parametrize("privacy", ["full", "anonymized"])
def test_the_daily_report_quotes_only_questions_asked_in_public_channels(build, privacy):
    slack, make = build
    text = posted_report(slack, make(), privacy)
    assert PUBLIC in text and "(2×)" in text
    for _kind, asked in ASKED_ELSEWHERE.values():
        assert asked not in text
    assert "5 more" in text and "not shown" in text        # the operators know some were left out


def test_the_daily_report_under_privacy_off_has_counts_and_no_question_text(build):
    slack, make = build
    text = posted_report(slack, make(), "off")
    assert "Questions:* 7" in text
    assert PUBLIC not in text
    for _kind, asked in ASKED_ELSEWHERE.values():
        assert asked not in text
    assert "7 questions, not quoted (privacy: off)" in text


@pytest.mark.parametrize("privacy", ["full", "off"])
def test_the_daily_report_counts_live_tool_calls_by_tool_and_outcome_never_their_arguments(build, privacy):
    slack, make = build
    assert "Live tools" not in posted_report(slack, make(), privacy)          # no call, no line
    container = make()
    records = ToolRecords(container.store)
    for tool, outcome in (("pagerduty", "ok"), ("pagerduty", "ok"), ("pagerduty", "timeout"),
                          ("tickets-live", "error"), ("tickets-live", "not_connected")):
        records.record_call(tool=tool, function="lookup", arguments={"q": "my manager harassed me"}, outcome=outcome,
                            duration_ms=30.0, result_chars=10, person_email="ana@example.com", person_slack_id="UANA")
    text = posted_report(slack, container, privacy)
    assert "*Live tools:* 5 calls  ·  pagerduty 3 (1 timeout)  ·  tickets-live 2 (1 error, 1 not connected)" in text
    assert "my manager" not in text and "lookup" not in text
