"""The Jira connector with real requests against a loopback Jira Cloud (REST v3)."""

from __future__ import annotations

import base64

import pytest
import requests

from connectors.actions.base import ConnectorConfigError, ConnectorDeps, ExecutionContext
from connectors.actions.jira import JiraConnector
from connectors.atlassian.adf import adf_document
from standins.fake_jira import FakeJira

TOKEN = "ATATT3xFfGF0-jira-token-93kd"
CTX = ExecutionContext(proposal_id="prop-1", action="open_ticket",
                       requested_by="ana@example.com", approved_by="ben@example.com")


@pytest.fixture
def jira():
    with FakeJira(email="chatops-bot@example.com", token=TOKEN) as fake:
        yield fake


def deps(secrets=None, **kw) -> ConnectorDeps:
    secrets = {"JIRA_API_TOKEN": TOKEN} if secrets is None else secrets
    return ConnectorDeps(http=requests.Session(), secret=secrets.get, **kw)


def settings(jira, **over) -> dict:
    return {"base_url": jira.origin, "email": "chatops-bot@example.com", "token_env": "JIRA_API_TOKEN",
            "project_key": "OPS", **over}


def connector(jira, secrets=None, **over) -> JiraConnector:
    return JiraConnector.from_settings(settings(jira, **over), deps(secrets))


def assert_secret_free(result, *secrets):
    for secret in secrets:
        assert secret not in repr(result), "a secret leaked into the execution result"


def test_creates_an_issue_with_the_exact_fields(jira):
    result = connector(jira).execute(
        {"summary": "Disk full on db-7", "description": "The /var volume is at 99%.", "labels": ["chatops", "db"]},
        CTX)
    assert result.ok and not result.transient
    assert result.summary == "Created OPS-1"
    assert result.external_id == "OPS-1"
    assert result.url == f"{jira.origin}/browse/OPS-1"
    assert result.detail["status"] == 201
    assert_secret_free(result, TOKEN)

    [request] = jira.requests
    assert request.method == "POST" and request.path == "/rest/api/3/issue"
    user, _, password = base64.b64decode(request.headers["authorization"][len("Basic "):]).decode().partition(":")
    assert (user, password) == ("chatops-bot@example.com", TOKEN)
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"fields": {
        "project": {"key": "OPS"},
        "summary": "Disk full on db-7",
        "issuetype": {"name": "Task"},
        "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "The /var volume is at 99%."}]}]},
        "labels": ["chatops", "db"],
    }}


def test_keys_increment_and_optional_fields_are_left_out(jira):
    c = connector(jira, issue_type="Bug")
    assert c.execute({"summary": "one"}, CTX).external_id == "OPS-1"
    assert c.execute({"summary": "two", "description": "  "}, CTX).external_id == "OPS-2"
    assert jira.issues[1] == {"project": {"key": "OPS"}, "summary": "two", "issuetype": {"name": "Bug"}}
    assert c.idempotent is False and c.kind == "jira"


def test_multi_paragraph_description_is_valid_adf():
    assert adf_document("First line\nsecond line\n\nNew paragraph") == {
        "type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "First line"}, {"type": "hardBreak"},
                                              {"type": "text", "text": "second line"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "New paragraph"}]}]}


def test_missing_summary_is_not_sent(jira):
    result = connector(jira).execute({"description": "no summary"}, CTX)
    assert not result.ok and not result.transient and "summary" in result.summary
    assert jira.requests == []


def test_bad_labels_type_is_not_sent(jira):
    result = connector(jira).execute({"summary": "x", "labels": "not-a-list"}, CTX)
    assert not result.ok and not result.transient and jira.requests == []


def test_jira_400_is_a_readable_failure(jira):
    result = connector(jira).execute({"summary": "x", "labels": ["needs triage"]}, CTX)
    assert not result.ok and not result.transient
    assert result.summary == ("Jira refused the issue (HTTP 400): "
                              "labels: The label 'needs triage' contains spaces which is invalid.")
    assert result.detail["status"] == 400
    assert jira.issues == []


def test_jira_error_messages_are_shown(jira):
    jira.fail_next(400, body={"errorMessages": ["Issue type is not valid for this project"],
                              "errors": {"components": "Component name 'x' is not valid"}})
    result = connector(jira).execute({"summary": "x"}, CTX)
    assert not result.ok and not result.transient
    assert "Issue type is not valid for this project; components: Component name 'x' is not valid" in result.summary


def test_unknown_project_is_refused(jira):
    result = connector(jira, project_key="NOPE").execute({"summary": "x"}, CTX)
    assert not result.ok and "project: valid project is required" in result.summary


def test_wrong_token_is_refused_and_not_shown(jira):
    result = connector(jira, secrets={"JIRA_API_TOKEN": "wrong-token-value"}).execute({"summary": "x"}, CTX)
    assert not result.ok and not result.transient
    assert "HTTP 401" in result.summary and "authenticated" in result.summary
    assert_secret_free(result, TOKEN, "wrong-token-value")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttling_and_server_errors_are_transient(jira, status):
    jira.fail_next(status, headers={"Retry-After": "30"} if status == 429 else None)
    result = connector(jira).execute({"summary": "x"}, CTX)
    assert not result.ok and result.transient and f"HTTP {status}" in result.summary
    assert_secret_free(result, TOKEN)


def test_timeout_is_transient_and_says_the_outcome_is_unknown(jira):
    jira.hang_next()
    result = connector(jira, timeout=0.3).execute({"summary": "x"}, CTX)
    assert not result.ok and result.transient
    assert "did not answer within 0.3s" in result.summary and "may or may not" in result.summary


def test_unreachable_is_transient(jira):
    c = connector(jira)
    jira.stop()
    result = c.execute({"summary": "x"}, CTX)
    assert not result.ok and result.transient and "could not be reached" in result.summary
    assert "may or may not" not in result.summary  # nothing was sent


def test_fake_answers_a_missing_summary_like_jira(jira):
    resp = requests.post(f"{jira.origin}/rest/api/3/issue", auth=("chatops-bot@example.com", TOKEN),
                         json={"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}}}, timeout=5)
    assert resp.status_code == 400
    assert resp.json() == {"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}


@pytest.mark.parametrize("drop, field, message", [
    ("base_url", "base_url", "base_url: field required"),
    ("email", "email", "field required"),
    ("project_key", "project_key", "field required"),
])
def test_missing_settings_name_the_field(jira, drop, field, message):
    s = settings(jira)
    del s[drop]
    with pytest.raises(ConnectorConfigError) as err:
        JiraConnector.from_settings(s, deps())
    assert err.value.field == field and message in str(err.value)


def test_config_errors(jira):
    with pytest.raises(ConnectorConfigError) as err:
        JiraConnector.from_settings(settings(jira), deps(secrets={}))
    assert err.value.field == "token_env"
    assert str(err.value) == "token_env: environment variable JIRA_API_TOKEN is not set"
    with pytest.raises(ConnectorConfigError) as err:
        JiraConnector.from_settings(settings(jira, project="OPS"), deps())
    assert err.value.field == "project" and "unknown key" in str(err.value)
    with pytest.raises(ConnectorConfigError) as err:
        JiraConnector.from_settings(settings(jira, base_url="acme.atlassian.net"), deps())
    assert err.value.field == "base_url"
