"""What the operator console shows of where people asked and what retrieval found, under each
privacy mode, over HTTP: the console's own routes on a TestClient, a signed-in session in the real
Redis, the audit trail in a SQLite file.

A direct message's channel id stands for one person (the bot's DM with them), so only ``full``
shows it; under ``off`` a question's page gives counts of the documents retrieved and cited,
not their titles or ids (they tell what the question was about).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from chatops.store import Store
from chatops.store.answers import Answers
from console.app import ConsoleConfig, ConsoleDeps, console_routes
from console.auth import SESSION_COOKIE, Sessions
from console.privacy import PrivacySetting
from tests.security.conftest import redis_or_skip

pytestmark = pytest.mark.redis

DM = "D07HR4SSM"                      # the bot's DM with one person
DM_PEOPLE = "GMPDMANABEN"             # a group DM: a handful of people
RETRIEVED = [{"doc_id": "hr/complaints/harassment-procedure.md", "source": "fs:hr",
              "title": "Harassment complaint procedure", "score": 0.81},
             {"doc_id": "hr/complaints/anonymous-hotline.md", "source": "fs:hr",
              "title": "Anonymous ethics hotline", "score": 0.64}]
CITED = [{"n": 1, "title": "Harassment complaint procedure", "source": "hr/complaints/harassment-procedure.md",
          "url": "https://intranet.example/hr/harassment"}]


@pytest.fixture
def console(tmp_path):
    client = redis_or_skip()
    prefix = f"chatops-console-privacy-{uuid.uuid4().hex[:8]}"
    store = Store.for_url(f"sqlite:///{tmp_path / 'audit.db'}")
    at = datetime.now(UTC) - timedelta(hours=2)
    ids = {
        "dm": store.record_question(question="how do I report my manager?", mode="llm", at=at, channel=DM,
                                    channel_type="im", asker_slack_id="UHR", cited=CITED, audience="asker",
                                    facts={"answer_id": "ans-dm", "answer": "Use the procedure [1].",
                                           "retrieved": RETRIEVED, "sources_count": 2, "citations_kept": 1}),
        "mpim": store.record_question(question="who is on call?", mode="failed", at=at, channel=DM_PEOPLE,
                                      channel_type="mpim", asker_slack_id="UBEN"),
        "failed_dm": store.record_question(question="why did it time out?", mode="failed", at=at, channel=DM,
                                           channel_type="im", asker_slack_id="UHR"),
        "channel": store.record_question(question="where is the VPN guide?", mode="no-evidence", at=at,
                                         channel="COPS0001", channel_type="channel", asker_slack_id="UANA"),
    }
    config = ConsoleConfig(base_url="http://testserver", key_prefix=prefix, privacy="anonymized")
    deps = ConsoleDeps(config=config, redis=client, store=lambda: store, answers=lambda: Answers(store))
    web = TestClient(Starlette(routes=list(console_routes(deps))), base_url="http://testserver")
    web.cookies.set(SESSION_COOKIE, Sessions(client, prefix, 600).create("operator", "link").id, path="/admin")

    def page(path: str, privacy: str) -> str:
        PrivacySetting(client, prefix, "anonymized", b"").set(privacy)
        resp = web.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        return resp.text

    yield page, ids
    web.close()
    store.close()
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.mark.parametrize("privacy", ["anonymized", "off"])
def test_direct_message_ids_are_shown_only_under_privacy_full(console, privacy):
    page, ids = console
    for path in ("/admin/questions", f"/admin/questions/{ids['dm']}", f"/admin/questions/{ids['mpim']}",
                 "/admin/workers"):
        html = page(path, privacy)
        assert DM not in html and DM_PEOPLE not in html, path
        assert "direct message" in html, path
    assert "COPS0001" in page("/admin/questions", privacy)          # a channel is not a person: still shown


def test_direct_message_ids_are_shown_under_privacy_full(console):
    page, ids = console
    assert DM in page("/admin/questions", "full") and DM in page(f"/admin/questions/{ids['dm']}", "full")


def test_privacy_off_shows_counts_not_the_documents_a_question_retrieved(console):
    page, ids = console
    shown = page(f"/admin/questions/{ids['dm']}", "anonymized")
    assert "Harassment complaint procedure" in shown and "anonymous-hotline" in shown
    off = page(f"/admin/questions/{ids['dm']}", "off")
    for leak in ("Harassment complaint procedure", "Anonymous ethics hotline", "harassment-procedure",
                 "anonymous-hotline", "fs:hr", "intranet.example/hr"):
        assert leak not in off, leak
    assert "2 documents retrieved" in off and "1 cited" in off
