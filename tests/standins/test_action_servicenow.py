"""The ServiceNow connector with real requests against a loopback instance (Table API)."""

from __future__ import annotations

import base64

import pytest
import requests

from connectors.actions.base import ConnectorConfigError, ConnectorDeps, ExecutionContext
from connectors.actions.servicenow import ServiceNowConnector
from standins.fake_servicenow import FakeServiceNow

PASSWORD = "snow-Pa55w0rd-x81"
CTX = ExecutionContext(proposal_id="prop-9", action="open_incident",
                       requested_by="ana@example.com", approved_by="ben@example.com")


@pytest.fixture
def snow():
    with FakeServiceNow(username="chatops.integration", password=PASSWORD) as fake:
        yield fake


def deps(secrets=None, **kw) -> ConnectorDeps:
    secrets = {"SNOW_PASSWORD": PASSWORD} if secrets is None else secrets
    return ConnectorDeps(http=requests.Session(), secret=secrets.get, **kw)


def settings(snow, **over) -> dict:
    return {"instance_url": snow.origin + "/", "username": "chatops.integration", "password_env": "SNOW_PASSWORD",
            **over}


def connector(snow, secrets=None, **over) -> ServiceNowConnector:
    return ServiceNowConnector.from_settings(settings(snow, **over), deps(secrets))


def assert_secret_free(result, *secrets):
    for secret in secrets:
        assert secret not in repr(result), "a secret leaked into the execution result"


def test_opens_an_incident_with_the_exact_record(snow):
    result = connector(snow, set_caller=True).execute(
        {"short_description": "VPN down in Lisbon", "description": "Since 09:10, all users.",
         "urgency": "1", "impact": "2"}, CTX)
    assert result.ok and not result.transient
    assert result.summary == "Created INC0010001"
    assert result.external_id == "INC0010001"
    sys_id = result.detail["sys_id"]
    assert result.url == f"{snow.origin}/nav_to.do?uri=incident.do?sys_id={sys_id}"
    assert_secret_free(result, PASSWORD)

    [request] = snow.requests
    assert request.method == "POST" and request.path == "/api/now/table/incident"
    user, _, password = base64.b64decode(request.headers["authorization"][len("Basic "):]).decode().partition(":")
    assert (user, password) == ("chatops.integration", PASSWORD)
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"short_description": "VPN down in Lisbon", "description": "Since 09:10, all users.",
                              "urgency": "1", "impact": "2", "caller_id": "ana@example.com"}


def test_numbers_increment_caller_off_by_default_and_levels_normalised(snow):
    c = connector(snow)
    assert c.execute({"short_description": "one"}, CTX).external_id == "INC0010001"
    assert c.execute({"short_description": "two", "urgency": 3}, CTX).external_id == "INC0010002"
    assert snow.incidents == [{"short_description": "one"}, {"short_description": "two", "urgency": "3"}]
    assert c.idempotent is False and c.kind == "servicenow" and c.default_approvers({}) is None


@pytest.mark.parametrize("arguments, problem", [
    ({"description": "no short description"}, "short_description"),
    ({"short_description": "x", "urgency": "4"}, "urgency"),
    ({"short_description": "x", "impact": "high"}, "impact"),
    ({"short_description": "x", "urgency": True}, "urgency"),
])
def test_bad_arguments_are_not_sent(snow, arguments, problem):
    result = connector(snow).execute(arguments, CTX)
    assert not result.ok and not result.transient and problem in result.summary
    assert snow.requests == []


def test_wrong_password_is_refused_and_not_shown(snow):
    result = connector(snow, secrets={"SNOW_PASSWORD": "not-the-password"}).execute({"short_description": "x"}, CTX)
    assert not result.ok and not result.transient
    assert result.summary == ("ServiceNow refused the incident (HTTP 401): "
                              "User Not Authenticated: Required to provide Auth information")
    assert_secret_free(result, PASSWORD, "not-the-password")


def test_acl_refusal_is_a_plain_failure(snow):
    snow.fail_next(403, body={"error": {"message": "Operation Failed",
                                        "detail": "ACL Exception Insert Failed due to security constraints"},
                              "status": "failure"})
    result = connector(snow).execute({"short_description": "x"}, CTX)
    assert not result.ok and not result.transient
    assert "HTTP 403" in result.summary and "ACL Exception" in result.summary
    assert result.detail["status"] == 403


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_transient(snow, status):
    snow.fail_next(status)
    result = connector(snow).execute({"short_description": "x"}, CTX)
    assert not result.ok and result.transient and f"HTTP {status}" in result.summary
    assert_secret_free(result, PASSWORD)


def test_timeout_is_transient(snow):
    snow.hang_next()
    result = connector(snow, timeout=0.3).execute({"short_description": "x"}, CTX)
    assert not result.ok and result.transient and "0.3s" in result.summary


def test_unreachable_is_transient(snow):
    c = connector(snow)
    snow.stop()
    result = c.execute({"short_description": "x"}, CTX)
    assert not result.ok and result.transient


def test_config_errors_name_the_field(snow):
    with pytest.raises(ConnectorConfigError) as err:
        ServiceNowConnector.from_settings(settings(snow), deps(secrets={}))
    assert err.value.field == "password_env" and "SNOW_PASSWORD is not set" in str(err.value)
    s = settings(snow)
    del s["instance_url"]
    with pytest.raises(ConnectorConfigError) as err:
        ServiceNowConnector.from_settings(s, deps())
    assert str(err.value) == "instance_url: field required"
    with pytest.raises(ConnectorConfigError) as err:
        ServiceNowConnector.from_settings(settings(snow, table="change_request"), deps())
    assert err.value.field == "table" and "unknown key" in str(err.value)
    with pytest.raises(ConnectorConfigError) as err:
        ServiceNowConnector.from_settings(settings(snow, set_caller="perhaps"), deps())
    assert err.value.field == "set_caller"
