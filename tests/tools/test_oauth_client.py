"""connectors/tools/oauth.py, the client side of the MCP authorization specification, against the
stand-ins: discovery (the 401's challenge, RFC 9728, RFC 8414 path-aware, OpenID fallback), client
registration, the token endpoint's refusals."""

from __future__ import annotations

import pytest
import requests

from chatops.checks import CheckFailed
from connectors.tools import oauth
from connectors.tools.registry import build_tool
from standins.fake_mcp import FakeMCP
from standins.fake_oauth import FakeAuthorizationServer
from tests.tools.conftest import PUBLIC_URL, deps, spec

REDIRECT = PUBLIC_URL + "/tools/oauth/callback"


def test_the_mcp_server_challenges_with_its_resource_metadata(mcp_oauth, auth_server):
    response = requests.post(mcp_oauth.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=5,
                             headers={"Accept": "application/json, text/event-stream"})
    assert response.status_code == 401
    challenge = oauth.bearer_challenge(response.headers["WWW-Authenticate"])
    assert challenge["resource_metadata"] == mcp_oauth.resource_metadata_url
    document = requests.get(challenge["resource_metadata"], timeout=5).json()
    assert document["resource"] == mcp_oauth.url
    # the SDK writes the issuer as a URL with an empty path ("http://host:port/"): the client copes
    assert [a.rstrip("/") for a in document["authorization_servers"]] == [auth_server.issuer]


def test_discover_finds_the_authorization_server(mcp_oauth, auth_server):
    found = oauth.discover(requests.Session(), mcp_oauth.url)
    assert found.resource == mcp_oauth.url
    assert found.issuer == auth_server.issuer
    assert found.authorization_endpoint == auth_server.issuer + "/authorize"
    assert found.token_endpoint == auth_server.issuer + "/token"
    assert found.registration_endpoint == auth_server.issuer + "/register"
    assert found.iss_parameter is True


def test_without_a_challenge_the_well_known_addresses_are_tried(mcp_oauth, auth_server):
    found = oauth.discover(requests.Session(), mcp_oauth.url, probe=False)
    assert found.issuer == auth_server.issuer
    assert oauth.protected_resource_urls("https://h.example/a/mcp") == [
        "https://h.example/.well-known/oauth-protected-resource/a/mcp",
        "https://h.example/.well-known/oauth-protected-resource"]


@pytest.mark.parametrize("path, discovery", [("/tenant-1", "oauth"), ("/realms/corp", "openid"), ("", "openid")])
def test_an_issuer_with_a_path_and_openid_discovery(path, discovery):
    with FakeAuthorizationServer(path=path, discovery=discovery) as server, FakeMCP(oauth=server) as mcp:
        found = oauth.discover(requests.Session(), mcp.url)
        assert found.issuer == server.issuer
        assert found.token_endpoint == server.issuer + "/token"


def test_a_server_without_authorization_metadata_is_said_so():
    with FakeMCP() as plain:
        with pytest.raises(oauth.OAuthFailed, match="publishes no OAuth protected-resource metadata"):
            oauth.discover(requests.Session(), plain.url)


def test_no_registration_and_no_client_id_is_a_clear_error():
    with FakeAuthorizationServer(registration=False) as server, FakeMCP(oauth=server) as mcp:
        found = oauth.discover(requests.Session(), mcp.url)
        assert found.registration_endpoint is None
        with pytest.raises(oauth.OAuthFailed, match="no dynamic client registration: configure the tool's client_id"):
            oauth.register_client(requests.Session(), found, redirect_uri=REDIRECT)


def test_registration_asks_for_a_confidential_client_with_refresh_tokens(mcp_oauth, auth_server):
    found = oauth.discover(requests.Session(), mcp_oauth.url)
    client = oauth.register_client(requests.Session(), found, redirect_uri=REDIRECT)
    registered = auth_server.clients[client.client_id]
    assert client.auth_method == "client_secret_basic" and client.client_secret == registered.secret
    assert registered.redirect_uris == [REDIRECT]
    assert registered.grant_types == ["authorization_code", "refresh_token"]


def test_the_token_endpoint_checks_the_verifier_and_a_code_is_good_once(mcp_oauth, auth_server):
    http = requests.Session()
    found = oauth.discover(http, mcp_oauth.url)
    client = oauth.register_client(http, found, redirect_uri=REDIRECT)
    pkce = oauth.Pkce.new()
    url = oauth.authorization_url(found, client, redirect_uri=REDIRECT, state="s-1", code_challenge=pkce.challenge)
    auth_server.as_user("ana@example.com")

    def code() -> str:
        location = http.get(url, allow_redirects=False, timeout=5).headers["Location"]
        return requests.utils.urlparse(location).query.split("code=")[1].split("&")[0]

    with pytest.raises(oauth.GrantRefused, match="code_verifier does not match") as refused:
        oauth.exchange_code(http, found, client, code=code(), redirect_uri=REDIRECT, code_verifier="x" * 50)
    assert refused.value.error == "invalid_grant"
    good = code()
    tokens = oauth.exchange_code(http, found, client, code=good, redirect_uri=REDIRECT, code_verifier=pkce.verifier)
    assert tokens.access_token and tokens.refresh_token and tokens.expires_at
    with pytest.raises(oauth.GrantRefused, match="already used"):
        oauth.exchange_code(http, found, client, code=good, redirect_uri=REDIRECT, code_verifier=pkce.verifier)
    assert auth_server.introspect(tokens.access_token) is None      # a replayed code revokes what it gave


def test_a_rotated_refresh_token_is_spent(mcp_oauth, auth_server):
    http = requests.Session()
    found = oauth.discover(http, mcp_oauth.url)
    client = oauth.register_client(http, found, redirect_uri=REDIRECT)
    pkce = oauth.Pkce.new()
    auth_server.as_user("ana@example.com")
    location = http.get(oauth.authorization_url(found, client, redirect_uri=REDIRECT, state="s",
                                                code_challenge=pkce.challenge),
                        allow_redirects=False, timeout=5).headers["Location"]
    code = location.split("code=")[1].split("&")[0]
    first = oauth.exchange_code(http, found, client, code=code, redirect_uri=REDIRECT, code_verifier=pkce.verifier)
    second = oauth.refresh(http, found, client, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(oauth.GrantRefused):
        oauth.refresh(http, found, client, first.refresh_token)


def test_the_authorization_server_unreachable_is_transient(mcp_oauth, auth_server):
    found = oauth.discover(requests.Session(), mcp_oauth.url)
    auth_server.stop()
    with pytest.raises(oauth.OAuthFailed) as failed:
        oauth.refresh(requests.Session(), found, oauth.ClientCredentials("c"), "rt")
    assert failed.value.transient is True
    assert not isinstance(failed.value, oauth.GrantRefused)


def test_check_of_a_per_person_tool_reads_the_metadata(mcp_oauth, auth_server):
    tool = build_tool(spec(url=mcp_oauth.url, auth={"oauth": "per_user"}), deps(tokens=object()))
    assert tool.check() == f"per-person OAuth through {auth_server.issuer}"
    auth_server.stop()
    with pytest.raises(CheckFailed, match="could not reach"):
        tool.check()


@pytest.mark.parametrize("header, expected", [
    ('Bearer error="invalid_token", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp"',
     {"error": "invalid_token", "resource_metadata": "https://h/.well-known/oauth-protected-resource/mcp"}),
    ('Basic realm="x", Bearer realm="mcp", scope="files:read  files:write"',
     {"realm": "mcp", "scope": "files:read  files:write"}),
    ('Bearer realm="a", Basic realm="b"', {"realm": "a"}),
    ('bearer error=invalid_token', {"error": "invalid_token"}),
    ("Basic realm=x", None),
    ("", None),
])
def test_bearer_challenges_are_read(header, expected):
    assert oauth.bearer_challenge(header) == expected


def test_only_https_or_loopback_urls_are_followed():
    with pytest.raises(oauth.OAuthFailed, match="is not an https URL"):
        oauth.check_url("http://as.example.com/", "the authorization server")
    assert oauth.check_url("http://127.0.0.1:5/x", "x") == "http://127.0.0.1:5/x"
    assert oauth.canonical_resource("HTTPS://MCP.Example.com/mcp/#frag") == "https://mcp.example.com/mcp"
