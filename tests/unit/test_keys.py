"""chatops/keys.py: every Redis key, byte for byte as a running deployment has stored it.

A key renamed by a refactor loses what is stored under the old name: a claim (a Slack retry is
answered twice), a lease or done mark (a task runs twice), a session (people signed out), a budget.
Each format here is the one the code wrote before the keys were built in one module.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chatops import keys
from chatops.tasks import TaskKind, TaskTable
from chatops_app.tasks import TASKS

P = "chatops"

PINNED = [
    (keys.claim(P, keys.CLAIM_MESSAGE, "C1:1700000000.000100"), "chatops:seen:msg:C1:1700000000.000100"),
    (keys.claim(P, keys.CLAIM_DM_OFFER_CLICK, "o1:U1"), "chatops:seen:click:o1:U1"),
    (keys.claim(P, keys.CLAIM_DECISION, "1.2:U1"), "chatops:seen:decide:1.2:U1"),
    (keys.claim(P, keys.CLAIM_FEEDBACK, "1.2:U1:vote"), "chatops:seen:feedback:1.2:U1:vote"),
    (keys.claim(P, keys.CLAIM_SLOW_DOWN, "U1"), "chatops:seen:slow_down:U1"),
    (keys.claim(P, keys.CLAIM_DAILY_REPORT, "2024-05-01"), "chatops:seen:daily_report:2024-05-01"),
    (keys.thread(P, "C1", "1.2"), "chatops:thread:C1:1.2"),
    (keys.bot_thread(P, "C1", "1.2"), "chatops:botthread:C1:1.2"),
    (keys.cache(P, keys.CACHE_MEMBERS, "C1"), "chatops:cache:members:C1"),
    (keys.cache(P, keys.CACHE_CHANNEL_NAME, "C1"), "chatops:cache:channel_name:C1"),
    (keys.cache(P, keys.CACHE_SLACK_USER, "U1"), "chatops:cache:slackuser:U1"),
    (keys.cache(P, keys.CACHE_OFFER, "o1"), "chatops:cache:offer:o1"),
    (keys.cache(P, keys.CACHE_APP_CONTEXT, "U1"), "chatops:cache:app_context:U1"),
    (keys.claim(P, keys.CLAIM_HOME_OPENED, "U1:home"), "chatops:seen:home_opened:U1:home"),
    (keys.progress(P, "question:C1:1.2"), "chatops:progress:question:C1:1.2"),
    (keys.lease(P, "question:C1:1.2"), "chatops:lease:question:C1:1.2"),
    (keys.lease(P, ""), "chatops:lease:"),
    (keys.done(P, "question:C1:1.2"), "chatops:done:question:C1:1.2"),
    (keys.inflight(P), "chatops:inflight"),
    (keys.inflight_seen(P), "chatops:inflight:seen"),
    (keys.workers(P), "chatops:workers"),
    (keys.consumed(P), "chatops:consumed"),
    (keys.beat(P), "chatops:beat"),
    (keys.ingest_job(P, "j1"), "chatops:ingest:j1"),
    (keys.ingest_job(P, "j1", "batches"), "chatops:ingest:j1:batches"),
    (keys.source_chain(P, "wiki", "changes"), "chatops:sources:chain:wiki:changes"),
    (keys.source_chain_again(P, "wiki", "changes"), "chatops:sources:chain:wiki:changes:again"),
    (keys.answer(P, "ab12"), "chatops:answers:ab12"),
    (keys.answers_pattern(P), "chatops:answers:*"),
    (keys.budget(P, "person", "U1", "day", datetime(2024, 5, 1, 7, tzinfo=timezone.utc)),
     "chatops:budget:person:U1:day:2024050107"),
    (keys.rate(P, "U1"), "chatops:rate:U1"),
    (keys.identity(P, "directory", "email:ana@example.com"), "chatops:identity:v2:directory:email:ana@example.com"),
    (keys.pace(P, "C1"), "chatops:pace:C1"),
    (keys.stream_stopped(P, "D1", "1.2"), "chatops:stopped:D1:1.2"),
    (keys.home_opened(P), "chatops:home:opened"),
    (keys.cache(P, keys.CACHE_HOME_NOTICE, "U1"), "chatops:cache:home_notice:U1"),
    (keys.claim(P, keys.CLAIM_HOME_REFRESH, "U1"), "chatops:seen:home_refresh:U1"),
    (keys.console_privacy(P), "chatops:console:privacy"),
    (keys.console_secret(P), "chatops:console:secret"),
    (keys.console_link(P, "l1"), "chatops:console:link:l1"),
    (keys.console_session(P, "ff00"), "chatops:console:session:ff00"),
    (keys.console_flow(P, "ff00"), "chatops:console:flow:ff00"),
    (keys.tool_oauth_flow(P, "ff00"), "chatops:tools:oauth:flow:ff00"),
    (keys.tool_oauth_client(P, "pagerduty"), "chatops:tools:oauth:client:pagerduty"),
    (keys.tool_token_lock(P, "pagerduty", "oid-1"), "chatops:tools:oauth:refresh:pagerduty:oid-1"),
]


@pytest.mark.parametrize("built, stored", PINNED, ids=[stored for _, stored in PINNED])
def test_each_key_is_the_one_a_deployment_has_stored(built, stored):
    assert built == stored


def test_every_key_builder_is_pinned():
    builders = {name for name in dir(keys) if not name.startswith("_") and callable(getattr(keys, name))
                and getattr(keys, name).__module__ == keys.__name__}
    pinned = {"claim", "thread", "bot_thread", "cache", "task", "progress", "lease", "done", "inflight",
              "inflight_seen", "workers", "consumed", "beat", "ingest_job", "source_chain", "source_chain_again",
              "answer", "answers_pattern", "budget", "rate", "identity", "pace", "stream_stopped", "home_opened", "console_privacy", "console_secret",
              "console_link", "console_session", "console_flow",
              "tool_oauth_flow", "tool_oauth_client", "tool_token_lock"}
    assert builders == pinned          # a new key: pin it above too


PAYLOAD = {"cid": "c1", "channel": "C1", "ts": "1.2", "offer_id": "o1", "user": "U1", "source": "wiki",
           "mode": "changes", "chain": None}


@pytest.mark.parametrize("kind, key", [
    ("question", "question:C1:1.2"),
    ("answer_in_dm", "answer_in_dm:o1:U1"),
    ("decision", "decision:c1"),
    ("feedback", "feedback:c1"),
    ("maintenance", "maintenance:c1"),
    ("ingest_plan", "ingest_plan:c1"),
    ("ingest_batch", "ingest_batch:c1"),
    ("source_sync", "source_sync:wiki:changes:None"),
    ("index_rebuild", "index_rebuild:c1"),
])
def test_each_task_kind_keeps_its_key(kind, key):
    assert TASKS.key(kind, PAYLOAD) == key


def test_the_task_table_holds_every_kind_once_with_its_celery_name_and_queue():
    assert {kind: (t.name, t.ingest) for kind, t in TASKS.items()} == {
        "question": ("chatops.question", False), "decision": ("chatops.decision", False),
        "answer_in_dm": ("chatops.answer_in_dm", False), "feedback": ("chatops.feedback", False),
        "tool_connection": ("chatops.tool_connection", False),
        "home": ("chatops.home", False),
        "maintenance": ("chatops.maintenance", True), "ingest_plan": ("chatops.ingest_plan", True),
        "ingest_batch": ("chatops.ingest_batch", True), "source_sync": ("chatops.source_sync", True),
        "index_rebuild": ("chatops.index_rebuild", True)}
    with pytest.raises(ValueError, match="declared twice"):
        TaskTable(TaskKind("x", "chatops.x", ingest=False), TaskKind("y", "chatops.x", ingest=False))


def test_a_missing_payload_field_is_named_none_as_before():
    assert TASKS.key("question", {"channel": "C1"}) == "question:C1:None"
    assert TASKS.key("decision", {}) == "decision:None"
