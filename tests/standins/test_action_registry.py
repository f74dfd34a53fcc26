"""Building connectors by kind from catalogue settings."""

from __future__ import annotations

import pytest
import requests

from connectors.actions.base import ConnectorConfigError, ConnectorDeps, ExecutionContext
from connectors.actions.entra_group import EntraGroupConnector
from connectors.actions.jira import JiraConnector
from connectors.actions.registry import CONNECTORS, build_connector
from connectors.actions.servicenow import ServiceNowConnector
from connectors.actions.webhook import WebhookConnector
from standins.fake_webhook import FakeWebhook

SECRETS = {"HOOK_SECRET": "hook-secret-1", "JIRA_TOKEN": "jira-token-1", "SNOW_PASSWORD": "snow-pw-1",
           "ENTRA_SECRET": "entra-secret-1"}

SETTINGS = {
    "webhook": {"url": "https://ops.example.com/hooks/restart", "secret_env": "HOOK_SECRET"},
    "jira": {"base_url": "https://acme.atlassian.net", "email": "bot@example.com", "token_env": "JIRA_TOKEN",
             "project_key": "OPS"},
    "servicenow": {"instance_url": "https://acme.service-now.com", "username": "chatops",
                   "password_env": "SNOW_PASSWORD"},
    "entra_group": {"tenant_id": "t", "client_id": "c", "client_secret_env": "ENTRA_SECRET",
                    "groups": {"sre-admins": "00000000-0000-0000-0000-000000000001"}},
}


def deps(secrets=SECRETS) -> ConnectorDeps:
    return ConnectorDeps(http=requests.Session(), secret=dict(secrets).get)


def test_the_four_kinds_are_registered():
    assert CONNECTORS == {"webhook": WebhookConnector, "jira": JiraConnector,
                          "servicenow": ServiceNowConnector, "entra_group": EntraGroupConnector}
    for kind, cls in CONNECTORS.items():
        assert cls.kind == kind


@pytest.mark.parametrize("kind", sorted(SETTINGS))
def test_builds_each_kind_without_network(kind):
    c = build_connector(kind, SETTINGS[kind], deps())
    assert isinstance(c, CONNECTORS[kind]) and c.kind == kind
    assert isinstance(c.idempotent, bool)


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ConnectorConfigError) as err:
        build_connector("pagerduty", {}, deps())
    assert err.value.field == "kind"
    assert str(err.value) == "kind: unknown connector kind 'pagerduty' (known: entra_group, jira, servicenow, webhook)"


@pytest.mark.parametrize("kind, change, field", [
    ("webhook", {"url": None}, "url"),
    ("jira", {"token_env": "MISSING_TOKEN"}, "token_env"),
    ("servicenow", {"colour": "blue"}, "colour"),
    ("entra_group", {"groups": None}, "groups"),
])
def test_config_errors_pass_through_with_the_field(kind, change, field):
    settings = dict(SETTINGS[kind])
    for key, value in change.items():
        if value is None:
            settings.pop(key)
        else:
            settings[key] = value
    with pytest.raises(ConnectorConfigError) as err:
        build_connector(kind, settings, deps())
    assert err.value.field == field


def test_settings_must_be_a_mapping():
    with pytest.raises(ConnectorConfigError) as err:
        build_connector("webhook", ["url", "https://x"], deps())
    assert err.value.field == "settings"


def test_built_connector_executes():
    with FakeWebhook() as hook:
        c = build_connector("webhook", {"url": hook.url, "secret_env": "HOOK_SECRET"}, deps())
        result = c.execute({"service": "api"}, ExecutionContext("p-1", "restart", "a@example.com", "b@example.com"))
        assert result.ok and hook.verify("hook-secret-1")
        assert "hook-secret-1" not in repr(result)
