"""The webhook connector with real requests against a loopback receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest
import requests

from connectors.actions.base import ConnectorConfigError, ConnectorDeps, ExecutionContext
from connectors.actions.webhook import WebhookConnector
from standins.fake_webhook import FakeWebhook

SECRET = "whsec-5f1c0a9e77d24b1f"
CTX = ExecutionContext(proposal_id="prop-7f3a", action="restart_service",
                       requested_by="ana@example.com", approved_by="ben@example.com")


@pytest.fixture
def hook():
    with FakeWebhook() as fake:
        yield fake


def deps(secrets=None, **kw) -> ConnectorDeps:
    secrets = {"RESTART_HOOK_SECRET": SECRET} if secrets is None else secrets
    return ConnectorDeps(http=requests.Session(), secret=secrets.get, **kw)


def connector(hook, **settings) -> WebhookConnector:
    return WebhookConnector.from_settings({"url": hook.url, "secret_env": "RESTART_HOOK_SECRET", **settings}, deps())


def assert_secret_free(result, *secrets):
    for secret in secrets:
        assert secret not in repr(result), "a secret leaked into the execution result"


def test_success_posts_the_exact_signed_payload(hook):
    hook.default_status = 202
    result = connector(hook).execute({"service": "billing-api", "env": "prod"}, CTX)

    assert result.ok and not result.transient
    assert result.summary == "restart_service accepted by 127.0.0.1 (HTTP 202)"
    assert result.detail["status"] == 202
    assert_secret_free(result, SECRET)

    [request] = hook.requests
    assert request.method == "POST" and request.path == "/hooks/chatops"
    assert json.loads(request.body) == {
        "action": "restart_service", "arguments": {"service": "billing-api", "env": "prod"},
        "proposal_id": "prop-7f3a", "requested_by": "ana@example.com", "approved_by": "ben@example.com"}
    assert list(json.loads(request.body)) == ["action", "arguments", "proposal_id", "requested_by", "approved_by"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "prop-7f3a"
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-chatops-signature"] == expected
    assert hook.verify(SECRET) and not hook.verify("some-other-secret")


def test_signature_covers_the_raw_utf8_bytes(hook):
    connector(hook).execute({"note": "Grüße, ünïcødé ✓", "n": 1.5}, CTX)
    request = hook.requests[-1]
    assert "Grüße".encode("utf-8") in request.body  # sent as UTF-8, not \\u escapes
    assert hook.verify(SECRET)


def test_extra_static_headers_are_sent(hook):
    connector(hook, headers={"X-Team": "ops", "User-Agent": "chatops"}).execute({}, CTX)
    headers = hook.requests[-1].headers
    assert headers["x-team"] == "ops" and headers["user-agent"] == "chatops"
    assert hook.verify(SECRET)


def test_secret_comes_only_from_the_lookup(hook, monkeypatch):
    monkeypatch.setenv("RESTART_HOOK_SECRET", "the-environment-value")
    connector(hook).execute({}, CTX)
    assert hook.verify(SECRET) and not hook.verify("the-environment-value")


def test_retry_after_503_repeats_with_the_same_idempotency_key(hook):
    hook.script(503, 200)
    c = connector(hook)
    first = c.execute({"service": "api"}, CTX)
    assert not first.ok and first.transient
    assert "HTTP 503" in first.summary and first.detail["status"] == 503
    second = c.execute({"service": "api"}, CTX)
    assert second.ok
    assert [r.headers["idempotency-key"] for r in hook.requests] == ["prop-7f3a", "prop-7f3a"]
    assert hook.requests[0].body == hook.requests[1].body
    assert hook.verify(SECRET, 0) and hook.verify(SECRET, 1)
    assert c.idempotent is True


def test_429_is_transient_with_retry_after(hook):
    hook.script((429, {"Retry-After": "7"}))
    result = connector(hook).execute({}, CTX)
    assert not result.ok and result.transient
    assert result.detail["retry_after"] == "7"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_non_2xx_is_a_plain_failure(hook, status):
    hook.script(status)
    result = connector(hook).execute({}, CTX)
    assert not result.ok and not result.transient
    assert f"HTTP {status}" in result.summary and "restart_service" in result.summary
    assert result.detail["status"] == status
    assert_secret_free(result, SECRET)


def test_a_receiver_echoing_the_secret_does_not_leak_it(hook, caplog):
    hook.script((400, {}, {"error": f"bad signature, expected key {SECRET}"}))
    with caplog.at_level(logging.DEBUG):
        result = connector(hook).execute({}, CTX)
    assert not result.ok and "bad signature" in result.summary
    assert_secret_free(result, SECRET)
    assert SECRET not in caplog.text and all(SECRET not in repr(r.__dict__) for r in caplog.records)


def test_redirects_are_not_followed(hook):
    hook.script((307, {"Location": hook.origin + "/elsewhere"}))
    result = connector(hook).execute({}, CTX)
    assert not result.ok and not result.transient and "HTTP 307" in result.summary
    assert len(hook.requests) == 1


def test_timeout_is_transient(hook):
    hook.script("hang")
    result = connector(hook, timeout=0.3).execute({}, CTX)
    assert not result.ok and result.transient
    assert "did not answer within 0.3s" in result.summary


def test_deps_timeout_is_the_default(hook):
    hook.script("hang")
    c = WebhookConnector.from_settings({"url": hook.url, "secret_env": "RESTART_HOOK_SECRET"}, deps(timeout=0.3))
    result = c.execute({}, CTX)
    assert result.transient and "0.3s" in result.summary


def test_unreachable_is_transient(hook):
    c = connector(hook)
    hook.stop()
    result = c.execute({}, CTX)
    assert not result.ok and result.transient and "could not be reached" in result.summary


def test_no_default_approvers(hook):
    c = connector(hook)
    assert c.kind == "webhook"
    assert c.default_approvers({"service": "x"}) is None


def test_secret_removed_after_start_is_a_failure_not_a_crash(hook):
    secrets = {"RESTART_HOOK_SECRET": SECRET}
    c = WebhookConnector.from_settings({"url": hook.url, "secret_env": "RESTART_HOOK_SECRET"}, deps(secrets))
    secrets.clear()
    result = c.execute({}, CTX)
    assert not result.ok and not result.transient and "RESTART_HOOK_SECRET" in result.summary
    assert hook.requests == []


# -- configuration ----------------------------------------------------------

@pytest.mark.parametrize("settings, field, message", [
    ({"secret_env": "RESTART_HOOK_SECRET"}, "url", "url: field required"),
    ({"url": "ftp://ops.example.com/hook", "secret_env": "RESTART_HOOK_SECRET"}, "url", "http"),
    ({"url": "https://ops.example.com/hook"}, "secret_env", "field required"),
    ({"url": "https://ops.example.com/hook", "secret_env": "NOT_SET_ANYWHERE"}, "secret_env",
     "secret_env: environment variable NOT_SET_ANYWHERE is not set"),
    ({"url": "https://ops.example.com/hook", "secret_env": "RESTART_HOOK_SECRET", "method": "PUT"},
     "method", "unknown key"),
    ({"url": "https://ops.example.com/hook", "secret_env": "RESTART_HOOK_SECRET", "timeout": 0}, "timeout", ""),
    ({"url": "https://ops.example.com/hook", "secret_env": "RESTART_HOOK_SECRET",
      "headers": {"X-Chatops-Signature": "x"}}, "headers", "set by the connector"),
])
def test_config_errors_name_the_field(settings, field, message):
    with pytest.raises(ConnectorConfigError) as err:
        WebhookConnector.from_settings(settings, deps())
    assert err.value.field == field
    assert message in str(err.value)
    assert SECRET not in str(err.value)
