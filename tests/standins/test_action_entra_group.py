"""The entra_group connector with the real msal and requests against the loopback Entra/Graph."""

from __future__ import annotations

import logging

import pytest

from connectors.actions.base import Approvers, ConnectorConfigError, ConnectorDeps, ExecutionContext
from connectors.actions.entra_group import EntraGroupConnector
from standins.fake_entra import FakeEntra

CLIENT_SECRET = "entra-app-secret-Q8~kd02"
CTX = ExecutionContext(proposal_id="prop-3", action="grant_access",
                       requested_by="ana@example.com", approved_by="olga@example.com")

USERS = {
    "ana@example.com": {"id": "id-ana", "displayName": "Ana Ops", "groups": []},
    "guest@partner.example": {"id": "id-guest", "displayName": "Guest Person",
                              "upn": "guest_partner.example#EXT#@tenant.onmicrosoft.com", "groups": []},
    "olga@example.com": {"id": "id-olga", "displayName": "Olga Owner", "groups": []},
}
GROUPS = {
    "grp-sre": {"displayName": "SRE admins", "members": ["id-olga"], "owners": [
        {"id": "id-olga", "mail": "Olga@Example.com", "userPrincipalName": "olga@example.com"},
        {"id": "sp-deploy", "@odata.type": "#microsoft.graph.servicePrincipal", "mail": None},
        {"id": "id-pat", "mail": None, "userPrincipalName": "pat@example.com"},
        {"id": "id-ext", "mail": None, "userPrincipalName": "x_partner.example#EXT#@tenant.onmicrosoft.com"},
    ]},
    "grp-empty": {"displayName": "No owners", "owners": []},
}


@pytest.fixture
def entra():
    with FakeEntra(users=USERS, groups=GROUPS, page_size=2, client_secret=CLIENT_SECRET) as fake:
        yield fake


def settings(entra, **over) -> dict:
    return {"tenant_id": entra.tenant_id, "client_id": entra.client_id,
            "client_secret_env": "ENTRA_ACTIONS_SECRET",
            "groups": {"sre-admins": "grp-sre", "no-owners": "grp-empty", "ghost": "grp-deleted"}, **over}


def connector(entra, secret=CLIENT_SECRET, sleeps=None, **over) -> EntraGroupConnector:
    deps = ConnectorDeps(http=entra.session(), secret={"ENTRA_ACTIONS_SECRET": secret}.get,
                         extra={"sleep": (sleeps.append if sleeps is not None else lambda s: None)})
    return EntraGroupConnector.from_settings(settings(entra, **over), deps)


def graph_calls(entra) -> list[str]:
    return [p for p in entra.paths if p.split(" ", 1)[1].startswith("/graph/")]


def assert_secret_free(result, *secrets):
    for secret in secrets:
        assert secret not in repr(result), "a secret leaked into the execution result"


def test_adds_the_user_to_the_group(entra):
    c = connector(entra)
    result = c.execute({"user": "ana@example.com", "group": "sre-admins"}, CTX)
    assert result.ok and not result.transient
    assert result.summary == "Added ana@example.com to sre-admins"
    assert result.detail["already_member"] is False and result.detail["group_id"] == "grp-sre"
    assert entra.groups["grp-sre"]["members"] == ["id-olga", "id-ana"]
    calls = graph_calls(entra)
    assert calls[0].startswith("GET /graph/v1.0/users/ana@example.com?")
    assert calls[1] == "POST /graph/v1.0/groups/grp-sre/members/$ref"
    assert_secret_free(result, CLIENT_SECRET)
    assert c.kind == "entra_group" and c.idempotent is True


def test_already_a_member_counts_as_done(entra):
    c = connector(entra)
    assert c.execute({"user": "ana@example.com", "group": "sre-admins"}, CTX).ok
    again = c.execute({"user": "ana@example.com", "group": "sre-admins"}, CTX)
    assert again.ok and not again.transient
    assert again.summary == "ana@example.com is already a member of sre-admins"
    assert again.detail["already_member"] is True
    assert entra.groups["grp-sre"]["members"] == ["id-olga", "id-ana"]
    assert entra.token_requests == 1  # the token is cached across executions


def test_guest_is_found_by_mail(entra):
    result = connector(entra).execute({"user": "guest@partner.example", "group": "SRE-Admins"}, CTX)
    assert result.ok and result.summary == "Added guest@partner.example to sre-admins"
    assert "id-guest" in entra.groups["grp-sre"]["members"]


def test_unknown_user_is_a_plain_failure(entra):
    result = connector(entra).execute({"user": "nobody@example.com", "group": "sre-admins"}, CTX)
    assert not result.ok and not result.transient and "no user nobody@example.com" in result.summary


@pytest.mark.parametrize("arguments", [
    {"user": "ana@example.com", "group": "domain-admins"},
    {"user": "ana@example.com"},
    {"user": "not-an-email", "group": "sre-admins"},
])
def test_bad_arguments_do_not_reach_graph(entra, arguments):
    result = connector(entra).execute(arguments, CTX)
    assert not result.ok and not result.transient
    assert entra.token_requests == 0 and graph_calls(entra) == []


def test_group_gone_from_entra_is_a_plain_failure(entra):
    result = connector(entra).execute({"user": "ana@example.com", "group": "ghost"}, CTX)
    assert not result.ok and not result.transient
    assert result.detail["status"] == 404


def test_throttled_add_is_retried_honouring_retry_after(entra):
    sleeps: list[float] = []
    entra.throttle_next(1, retry_after=2, match="/members/")
    result = connector(entra, sleeps=sleeps).execute({"user": "ana@example.com", "group": "sre-admins"}, CTX)
    assert result.ok and sleeps == [2.0]


@pytest.mark.parametrize("status", [429, 503])
def test_persistent_throttling_or_outage_is_transient(entra, status):
    entra.throttle_next(10, retry_after=1, status=status, match="/members/")
    result = connector(entra).execute({"user": "ana@example.com", "group": "sre-admins"}, CTX)
    assert not result.ok and result.transient and str(status) in result.summary
    assert "id-ana" not in entra.groups["grp-sre"]["members"]


def test_graph_down_is_transient(entra):
    c = connector(entra)
    entra.stop()
    result = c.execute({"user": "ana@example.com", "group": "sre-admins"}, CTX)
    assert not result.ok and result.transient


def test_wrong_client_secret_is_a_plain_failure_without_the_secret(entra, caplog):
    with caplog.at_level(logging.DEBUG):
        result = connector(entra, secret="wrong-secret-value").execute(
            {"user": "ana@example.com", "group": "sre-admins"}, CTX)
    assert not result.ok and not result.transient and "invalid_client" in result.summary
    assert_secret_free(result, CLIENT_SECRET, "wrong-secret-value")
    assert all("wrong-secret-value" not in r.getMessage() and "wrong-secret-value" not in repr(r.__dict__)
               for r in caplog.records if r.name.startswith(("connectors", "chatops")))


# -- default approvers: the group's owners ------------------------------------

def test_owners_are_the_default_approvers(entra):
    approvers = connector(entra).default_approvers({"user": "ana@example.com", "group": "sre-admins"})
    # mail preferred, else a UPN that is an address; service principals and #EXT# UPNs skipped;
    # 4 owners at 2 per page: @odata.nextLink followed
    assert approvers == Approvers(users=("olga@example.com", "pat@example.com"))
    owner_calls = [p for p in entra.paths if "/owners" in p]
    assert len(owner_calls) == 2 and "$select=mail,userPrincipalName" in owner_calls[0]


@pytest.mark.parametrize("case", ["outage", "group-missing", "unknown-name", "no-owners", "graph-down"])
def test_owner_lookup_failure_means_nobody_may_approve(entra, caplog, case):
    c = connector(entra)
    arguments = {"user": "ana@example.com", "group": "sre-admins"}
    if case == "outage":
        entra.throttle_next(10, status=503, match="/owners")
    elif case == "group-missing":
        arguments["group"] = "ghost"
    elif case == "unknown-name":
        arguments["group"] = "domain-admins"
    elif case == "no-owners":
        arguments["group"] = "no-owners"
    else:
        entra.stop()
    with caplog.at_level(logging.WARNING):
        approvers = c.default_approvers(arguments)
    assert approvers == Approvers()  # not None: None would mean "the requester alone"
    assert any(r.levelno == logging.WARNING for r in caplog.records)


# -- configuration ------------------------------------------------------------

@pytest.mark.parametrize("change, field, message", [
    ({"groups": None}, "groups", "field required"),
    ({"groups": {}}, "groups", ""),
    ({"tenant_id": None}, "tenant_id", "tenant_id: field required"),
    ({"group_ids": ["x"]}, "group_ids", "unknown key"),
    ({"graph_url": "graph.microsoft.com"}, "graph_url", "http"),
    ({"groups": {"SRE": "a", "sre": "b"}}, "groups", "twice"),
])
def test_config_errors_name_the_field(entra, change, field, message):
    s = settings(entra)
    for key, value in change.items():
        if value is None:
            s.pop(key)
        else:
            s[key] = value
    deps = ConnectorDeps(http=entra.session(), secret={"ENTRA_ACTIONS_SECRET": CLIENT_SECRET}.get)
    with pytest.raises(ConnectorConfigError) as err:
        EntraGroupConnector.from_settings(s, deps)
    assert err.value.field == field and message in str(err.value)


def test_missing_client_secret_is_a_config_error(entra):
    deps = ConnectorDeps(http=entra.session(), secret={}.get)
    with pytest.raises(ConnectorConfigError) as err:
        EntraGroupConnector.from_settings(settings(entra), deps)
    assert str(err.value) == "client_secret_env: environment variable ENTRA_ACTIONS_SECRET is not set"
    assert entra.token_requests == 0
