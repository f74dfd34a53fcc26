"""What the operator console shows of where people asked and what retrieval found, under each
privacy mode, over HTTP: the console's own routes on a TestClient, a signed-in session in the real
Redis, the audit trail in a SQLite file.

A direct message's channel id stands for one person (the bot's DM with them), so only ``full``
shows it; under ``off`` a question's page gives counts of the documents retrieved and cited,
not their titles or ids (they tell what the question was about). A question's live tool calls,
recorded through ``ToolRecords`` like the tool loop records them, are listed on its page; their
arguments (filled in from the question) and details only where the question text is shown.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from chatops.store import Store
from chatops.store.answers import Answers
from chatops.store.tools import ToolRecords
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
                                           channel_type="im", asker_slack_id="UHR", correlation_id="corr-failed"),
        "channel": store.record_question(question="where is the VPN guide?", mode="no-evidence", at=at,
                                         channel="COPS0001", channel_type="channel", asker_slack_id="UANA"),
    }
    record_tool_calls(ToolRecords(store))
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


def record_tool_calls(records: ToolRecords) -> None:
    """The calls of the DM's answer (linked by its answer id), one of the failed question (no answer
    id: by its correlation id), and two of other answers that neither page may list."""
    asker = {"person_email": "hr.person@example.com", "person_slack_id": "UHR"}
    records.record_call(tool="pagerduty", function="get_oncall", arguments={"service": "payroll-grievances"},
                        outcome="ok", duration_ms=42.4, result_chars=812, answer_id="ans-dm",
                        correlation_id="corr-dm", **asker)
    records.record_call(tool="tickets-live", function="search", arguments={"jql": 'text ~ "my manager"'},
                        outcome="error", duration_ms=1530.0, result_chars=0, answer_id="ans-dm",
                        correlation_id="corr-dm", detail='Jira answered 400: text ~ "my manager" is not valid JQL', **asker)
    records.record_call(tool="health", function="error_rate", arguments={"service": "checkout"}, outcome="timeout",
                        duration_ms=10003.0, result_chars=None, correlation_id="corr-failed",
                        detail="no answer within 10 s", **asker)
    records.record_call(tool="pagerduty", function="list_incidents", arguments={"team": "someone-elses-question"},
                        outcome="ok", duration_ms=12.0, result_chars=40, answer_id="ans-other",
                        correlation_id="corr-failed", **asker)
    records.record_call(tool="pagerduty", function="list_incidents", arguments={"team": "another-answer"},
                        outcome="ok", duration_ms=12.0, result_chars=40, answer_id="ans-other", **asker)


def tool_call_rows(shown: str) -> list[str]:
    """The rows of the page's "Live tool calls" table, in order."""
    table = shown.split('id="tool-calls"', 1)[1].split("</table>", 1)[0]
    return table.split("<tr>")[2:]


@pytest.mark.parametrize("privacy", ["full", "anonymized"])
def test_a_questions_page_lists_its_live_tool_calls(console, privacy):
    page, ids = console
    shown = page(f"/admin/questions/{ids['dm']}", privacy)
    assert "Live tool calls" in shown
    first, second = tool_call_rows(shown)
    for cell in ("pagerduty", "get_oncall", "payroll-grievances", "42 ms", ">812<", 'data-outcome="ok"'):
        assert cell in first, cell
    for cell in ("tickets-live", "search", "my manager", "1.53 s", 'data-outcome="error"', "not valid JQL"):
        assert cell in second, cell
    for other in ("list_incidents", "someone-elses-question", "another-answer", "error_rate"):
        assert other not in shown, other


def test_an_answer_without_an_id_lists_the_calls_of_its_correlation_id(console):
    page, ids = console
    shown = page(f"/admin/questions/{ids['failed_dm']}", "anonymized")
    (only,) = tool_call_rows(shown)
    for cell in ("health", "error_rate", "checkout", "10.00 s", 'data-outcome="timeout"', "no answer within 10 s"):
        assert cell in only, cell
    assert "someone-elses-question" not in shown        # the same correlation id, but another answer's call


def test_privacy_off_hides_the_arguments_and_details_of_tool_calls(console):
    page, ids = console
    off = page(f"/admin/questions/{ids['dm']}", "off")
    first, second = tool_call_rows(off)
    for leak in ("payroll-grievances", "my manager", "not valid JQL", "hr.person", "UHR"):
        assert leak not in off, leak
    assert "get_oncall" in first and 'data-outcome="ok"' in first and ">812<" in first and "hidden" in first
    assert "search" in second and 'data-outcome="error"' in second and "hidden" in second
    assert "No live tool was called for this answer." in page(f"/admin/questions/{ids['channel']}", "off")


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


def test_the_overview_counts_tool_calls_per_tool_and_outcome_under_every_mode(console):
    page, _ids = console
    for privacy in ("anonymized", "off"):
        shown = page("/admin/", privacy)
        table = shown.split('id="tool-calls"', 1)[1].split("</table>", 1)[0]
        for tool, outcome, calls in (("pagerduty", "ok", 3), ("tickets-live", "error", 1), ("tickets-live", "ok", 0),
                                     ("health", "timeout", 1), ("health", "ok", 0)):
            assert f'data-tool="{tool}" data-outcome="{outcome}">{calls}<' in table, (privacy, tool, outcome)
        assert 'data-tool="pagerduty">3<' in table and 'data-tool="health">1<' in table
        assert "refused" not in table        # outcomes nobody had are not columns
        assert "payroll-grievances" not in shown
