"""A Connect link completes only for the person it was made for.

Whoever opens a Connect link and signs in at the authorization server completes it; without a
check, Mallory could start a flow for herself, get Victim to open her link, and then ask her
questions with Victim's account. Against an OpenID Connect server the bot asks who signed in (an ID
token, with a nonce) and keeps nothing unless it is the person; against a server that cannot say,
the tool's ``identity`` setting decides (``verified``: refuse to connect; ``link``: trust the link).
Real requests client, the authorization server stand-in, real Redis, a SQLite store."""

from __future__ import annotations

import base64
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from chatops.store.tools import ToolRecords
from connectors.tools import oauth
from connectors.tools.base import Caller, ConnectionNeeded, ToolConfigError, ToolFailed
from connectors.tools.mcp_config import parse, per_user_targets
from connectors.tools.registry import build_tool
from standins.fake_mcp import FakeMCP
from standins.fake_oauth import FakeAuthorizationServer
from tests.tools.conftest import ANA, PUBLIC_URL, deps, follow, spec
from usecases.tool_auth import ConnectFailed, ToolConnections, signed_in_as

MALLORY = Caller(person_id="oid-mallory", email="mallory@example.com", slack_user_id="U6")
VICTIM = "victim@example.com"


def connections_for(tool_spec, token_store, redis_client, redis_prefix, token_key) -> ToolConnections:
    return ToolConnections(targets=per_user_targets([tool_spec]), records=ToolRecords(token_store),
                           redis_client=redis_client, key_prefix=redis_prefix, http=requests.Session(),
                           secret=lambda name: None, token_keys=[token_key], public_url=PUBLIC_URL)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- Mallory's link, opened by Victim ------------------------------------------------------------

def test_a_link_completed_by_someone_else_keeps_nothing(connections, auth_server, mcp_oauth, per_user_tool,
                                                        token_store, caplog):
    link = connections.begin("pagerduty", MALLORY)          # Mallory's own Connect button …
    auth_server.as_user(VICTIM)                              # … opened by Victim, signed in as herself
    back = follow(link)
    with caplog.at_level(logging.INFO, logger="usecases.tool_auth"):
        with pytest.raises(ConnectFailed) as refused:
            connections.complete(back["state"], back["code"], iss=back["iss"])
    assert str(refused.value) == ("This link was made for someone else. Ask the bot yourself to get "
                                  "your own Connect button.")
    assert refused.value.status == 400 and refused.value.tool == "pagerduty"
    assert auth_server.token_requests == 1                  # the code was exchanged, and its tokens dropped
    assert ToolRecords(token_store).token("pagerduty", MALLORY.person_id) is None
    assert connections.connected(MALLORY.person_id) == []
    with pytest.raises(ConnectionNeeded):                    # Mallory's next question: still not connected
        per_user_tool.call("get_oncall", {"service": "billing"}, MALLORY, timeout=10)
    assert mcp_oauth.calls == []                             # Victim's token never reached the tool
    [line] = [r for r in caplog.records if "someone other than the person" in r.getMessage()]
    assert line.levelno == logging.WARNING and line.tool == "pagerduty"
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "victim" not in logged and "mallory" not in logged     # no identities in the logs
    # the link is spent: Victim cannot retry it either
    with pytest.raises(ConnectFailed, match="expired or was already used"):
        connections.complete(back["state"], back["code"], iss=back["iss"])


def test_the_person_the_link_was_made_for_connects(connections, auth_server, mcp_oauth, per_user_tool):
    auth_server.as_user(ANA.email)
    back = follow(connections.begin("pagerduty", ANA))
    assert connections.complete(back["state"], back["code"], iss=back["iss"]) == ("pagerduty", ANA.person_id, ANA.slack_user_id)
    out = per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert out.text.endswith("(asked by ana@example.com)")


def test_the_object_id_decides_when_the_person_has_one(connections, auth_server, token_store):
    # Ana's own account, by its object id (Entra's oid; case aside)
    auth_server.as_user(ANA.email, oid="OID-ANA")
    back = follow(connections.begin("pagerduty", ANA))
    connections.complete(back["state"], back["code"], iss=back["iss"])
    assert connections.connected(ANA.person_id) == ["pagerduty"]
    # another account whose email claim says Mallory's is still not Mallory: the oid differs
    auth_server.as_user(VICTIM, oid="oid-victim")
    auth_server.id_token_claims = {"email": MALLORY.email}
    back = follow(connections.begin("pagerduty", MALLORY))
    with pytest.raises(ConnectFailed, match="made for someone else"):
        connections.complete(back["state"], back["code"], iss=back["iss"])
    assert ToolRecords(token_store).token("pagerduty", MALLORY.person_id) is None


def test_without_an_object_id_the_verified_email_decides(connections, auth_server):
    carol = Caller(person_id="email:carol@example.com", email="Carol@Example.com", slack_user_id="U3")
    auth_server.as_user("carol@example.com", oid="oid-of-another-tenant")
    back = follow(connections.begin("pagerduty", carol))
    connections.complete(back["state"], back["code"], iss=back["iss"])
    assert connections.connected(carol.person_id) == ["pagerduty"]


def test_an_email_the_server_says_is_unverified_is_not_enough(connections, auth_server, token_store):
    auth_server.as_user(ANA.email, email_verified=False)
    back = follow(connections.begin("pagerduty", ANA))
    with pytest.raises(ConnectFailed, match="made for someone else"):
        connections.complete(back["state"], back["code"], iss=back["iss"])
    assert ToolRecords(token_store).token("pagerduty", ANA.person_id) is None


@pytest.mark.parametrize("claims, person_id, email, same", [
    ({"oid": "0A0A-1", "email": "x@example.com"}, "0a0a-1", "ana@example.com", True),
    ({"oid": "0b0b-2", "email": "ana@example.com"}, "0a0a-1", "ana@example.com", False),
    ({"oid": "0b0b-2", "email": "ana@example.com"}, "email:ana@example.com", "ana@example.com", True),
    ({"email": "ANA@example.com"}, "0a0a-1", "ana@example.com", True),                 # not Entra: no oid
    ({"email": "ana@example.com", "email_verified": False}, "0a0a-1", "ana@example.com", False),
    ({"email": "ana@example.com", "email_verified": "false"}, "0a0a-1", "ana@example.com", False),
    ({"tid": "t1", "preferred_username": "Ana@Example.com"}, "email:ana@example.com", "ana@example.com", True),
    ({"tid": "t1", "upn": "ana@example.com"}, "email:ana@example.com", "ana@example.com", True),
    ({"preferred_username": "ana@example.com"}, "0a0a-1", "ana@example.com", False),   # only Entra's
    ({"sub": "ana@example.com"}, "0a0a-1", "ana@example.com", False),
    ({"email": ""}, "0a0a-1", "", False),
])
def test_who_signed_in_is_compared_with_the_person(claims, person_id, email, same):
    assert signed_in_as(claims, person_id, email) is same


# -- the ID token -------------------------------------------------------------------------------

def test_the_authorization_request_asks_who_signs_in_with_a_nonce(connections, auth_server, redis_client,
                                                                   redis_prefix):
    q = query(connections.begin("pagerduty", ANA))
    assert {"openid", "email"} <= set(q["scope"].split())
    assert len(q["nonce"]) >= 32
    [key] = list(redis_client.scan_iter(f"{redis_prefix}:tools:oauth:flow:*"))
    assert q["nonce"].encode() not in redis_client.get(key)          # kept sealed with the pending flow
    assert q["nonce"] != query(connections.begin("pagerduty", ANA))["nonce"]


def test_the_stand_ins_id_token_is_a_real_signed_jwt(mcp_oauth, auth_server):
    http = requests.Session()
    found = oauth.discover(http, mcp_oauth.url)
    assert found.oidc is True
    client = oauth.register_client(http, found, redirect_uri=PUBLIC_URL + "/tools/oauth/callback")
    pkce = oauth.Pkce.new()
    url = oauth.authorization_url(found, client, redirect_uri=PUBLIC_URL + "/tools/oauth/callback", state="s",
                                  code_challenge=pkce.challenge, scopes=oauth.identity_scopes(found, None),
                                  nonce="n-123")
    auth_server.as_user(ANA.email, oid="oid-ana")
    back = follow(url, http)
    tokens = oauth.exchange_code(http, found, client, code=back["code"], redirect_uri=PUBLIC_URL + "/tools/oauth/callback",
                                 code_verifier=pkce.verifier)
    metadata = http.get(auth_server.issuer + "/.well-known/oauth-authorization-server", timeout=5).json()
    keys = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(tokens.id_token)
    verified = jwt.decode(tokens.id_token, keys.key, algorithms=["RS256"], audience=client.client_id,
                          issuer=auth_server.issuer)
    assert verified == oauth.id_token_claims(tokens.id_token, issuer=found.issuer, client_id=client.client_id,
                                             nonce="n-123")
    assert (verified["email"], verified["email_verified"], verified["oid"]) == (ANA.email, True, "oid-ana")


@pytest.mark.parametrize("claims, why", [
    ({"nonce": "someone-elses-nonce"}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"aud": "another-client"}, "not for this client"),
    ({"azp": "another-client"}, "another client"),
    ({"iss": "https://evil.example.com"}, "another issuer"),
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"exp": None}, "no expiry"),
    ({"sub": None}, "no subject"),
])
def test_an_id_token_that_does_not_check_out_keeps_nothing(connections, auth_server, token_store, claims, why):
    auth_server.as_user(ANA.email)                          # the right person: only the token is wrong
    auth_server.id_token_claims = claims
    back = follow(connections.begin("pagerduty", ANA))
    with pytest.raises(ConnectFailed, match="Could not tell who signed in") as refused:
        connections.complete(back["state"], back["code"], iss=back["iss"])
    assert why in str(refused.value) and refused.value.status == 400
    assert ToolRecords(token_store).token("pagerduty", ANA.person_id) is None


def test_an_openid_server_that_sends_no_id_token_keeps_nothing(connections, auth_server, token_store):
    auth_server.issue_id_tokens = False
    auth_server.as_user(ANA.email)
    back = follow(connections.begin("pagerduty", ANA))
    with pytest.raises(ConnectFailed, match="sent no ID token"):
        connections.complete(back["state"], back["code"], iss=back["iss"])
    assert ToolRecords(token_store).token("pagerduty", ANA.person_id) is None


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("token, why", [
    (b64({"alg": "none"}) + "." + b64({"iss": "https://as", "aud": "c", "exp": 2e9, "nonce": "n", "sub": "s"}) + ".",
     "unsigned"),
    ("a.b.c.d.e", "encrypted"),
    ("not-a-jwt", "not a signed JWT"),
    ("!!.@@.##", "not a JWT"),
    (b64({"alg": "RS256"}) + "." + base64.urlsafe_b64encode(b"[1]").decode() + ".sig", "not a JWT"),
])
def test_malformed_id_tokens_are_refused(token, why):
    with pytest.raises(oauth.IdTokenInvalid, match=why):
        oauth.id_token_claims(token, issuer="https://as", client_id="c", nonce="n")


# -- servers that cannot say who signed in ------------------------------------------------------

@pytest.fixture
def plain_oauth():
    """An OAuth 2.1 authorization server without OpenID Connect, and an MCP server that uses it."""
    with FakeAuthorizationServer(oidc=False) as server, FakeMCP(oauth=server) as mcp:
        yield server, mcp


def test_without_openid_connect_a_verified_tool_does_not_start_connecting(plain_oauth, token_store, redis_client,
                                                                         redis_prefix, token_key):
    server, mcp = plain_oauth
    assert oauth.discover(requests.Session(), mcp.url).oidc is False
    connections = connections_for(spec(url=mcp.url, auth={"oauth": "per_user"}), token_store, redis_client,
                                  redis_prefix, token_key)
    with pytest.raises(ToolFailed) as refused:
        connections.begin("pagerduty", ANA)
    assert str(refused.value) == (
        f"pagerduty: its authorization server {server.issuer} cannot tell who signs in (no OpenID Connect); "
        "set identity: link in its tools: entry to trust the Connect link alone")
    assert server.registrations == 0
    assert list(redis_client.scan_iter(f"{redis_prefix}:tools:oauth:flow:*")) == []


def test_without_openid_connect_identity_link_connects_as_before(plain_oauth, token_store, redis_client,
                                                                 redis_prefix, token_key):
    server, mcp = plain_oauth
    linked = spec(url=mcp.url, auth={"oauth": "per_user", "identity": "link"})
    connections = connections_for(linked, token_store, redis_client, redis_prefix, token_key)
    url = connections.begin("pagerduty", ANA)
    assert "nonce" not in query(url) and "scope" not in query(url)
    server.as_user(ANA.email)
    back = follow(url)
    assert connections.complete(back["state"], back["code"], iss=back["iss"]) == ("pagerduty", ANA.person_id, ANA.slack_user_id)
    out = build_tool(linked, deps(tokens=connections)).call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert out.text.endswith("(asked by ana@example.com)")


def test_a_link_made_under_identity_link_is_refused_once_the_tool_is_verified(plain_oauth, token_store, redis_client,
                                                                             redis_prefix, token_key):
    server, mcp = plain_oauth
    before = connections_for(spec(url=mcp.url, auth={"oauth": "per_user", "identity": "link"}), token_store,
                             redis_client, redis_prefix, token_key)
    after = connections_for(spec(url=mcp.url, auth={"oauth": "per_user"}), token_store, redis_client,
                            redis_prefix, token_key)
    server.as_user(ANA.email)
    back = follow(before.begin("pagerduty", ANA))
    with pytest.raises(ConnectFailed, match="before the tool's settings changed"):
        after.complete(back["state"], back["code"], iss=back["iss"])
    assert after.connected(ANA.person_id) == []


def test_an_openid_server_is_checked_even_under_identity_link(mcp_oauth, auth_server, token_store, redis_client,
                                                              redis_prefix, token_key):
    connections = connections_for(spec(url=mcp_oauth.url, auth={"oauth": "per_user", "identity": "link"}),
                                  token_store, redis_client, redis_prefix, token_key)
    auth_server.as_user(VICTIM)
    back = follow(connections.begin("pagerduty", MALLORY))
    with pytest.raises(ConnectFailed, match="made for someone else"):
        connections.complete(back["state"], back["code"], iss=back["iss"])


@pytest.mark.parametrize("kwargs, oidc", [
    ({"oidc": True}, True),                                  # openid in scopes_supported, jwks_uri
    ({"oidc": False}, False),
    ({"oidc": False, "discovery": "openid"}, True),          # found through OpenID Connect discovery
])
def test_openid_connect_is_recognised(kwargs, oidc):
    with FakeAuthorizationServer(**kwargs) as server, FakeMCP(oauth=server) as mcp:
        assert oauth.discover(requests.Session(), mcp.url).oidc is oidc


def test_the_identity_setting_is_checked():
    url = "https://mcp.example.com/mcp"
    assert parse("t", {"url": url, "auth": {"oauth": "per_user"}}).oauth.identity == "verified"
    assert parse("t", {"url": url, "auth": {"oauth": "per_user", "identity": "link"}}).oauth.identity == "link"
    with pytest.raises(ToolConfigError, match="auth.identity: must be verified") as bad:
        parse("t", {"url": url, "auth": {"oauth": "per_user", "identity": "trusted"}})
    assert bad.value.field == "auth.identity"
