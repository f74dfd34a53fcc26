"""Per-person OAuth end to end: the real requests client and the real MCP SDK against the
authorization server stand-in and an MCP server that only takes tokens issued for it; pending
authorizations in real Redis, sealed tokens in a SQLite store."""

from __future__ import annotations

import sqlite3
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet

from chatops.errors import ConfigError
from chatops.store.tools import ToolRecords
from connectors.tools.base import ConnectionNeeded
from connectors.tools.mcp_config import per_user_targets
from connectors.tools.settings import ToolSettings
from standins.fake_mcp import FakeMCP
from tests.tools.conftest import ANA, BEN, PUBLIC_URL, connect, follow, spec
from usecases.tool_auth import ConnectFailed, ToolConnections


def asked_by(output_text: str) -> str:
    return output_text.rsplit("(asked by ", 1)[1].rstrip(")")


def test_the_authorization_url_asks_for_a_code_with_pkce_state_and_resource(connections, auth_server, mcp_oauth):
    url = connections.begin("pagerduty", ANA)
    assert url.startswith(auth_server.issuer + "/authorize?")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q["response_type"] == "code"
    assert q["code_challenge_method"] == "S256"
    assert len(q["code_challenge"]) == 43 and "=" not in q["code_challenge"]
    assert len(q["state"]) >= 32
    assert q["resource"] == mcp_oauth.url
    assert q["redirect_uri"] == PUBLIC_URL + "/tools/oauth/callback"
    assert q["client_id"] in auth_server.clients          # registered now (RFC 7591)
    assert auth_server.registrations == 1
    connections.begin("pagerduty", BEN)
    assert auth_server.registrations == 1                  # the registration is kept for the next person


def test_connect_then_call_with_the_persons_own_token(connections, auth_server, mcp_oauth, per_user_tool):
    with pytest.raises(ConnectionNeeded):
        per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert mcp_oauth.calls == []

    auth_server.as_user("ana@example.com")
    back = follow(connections.begin("pagerduty", ANA))
    assert back["iss"] == auth_server.issuer
    assert connections.complete(back["state"], back["code"], iss=back["iss"]) == ("pagerduty", "oid-ana", ANA.slack_user_id)
    assert connections.connected("oid-ana") == ["pagerduty"]

    out = per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert out.text == "On call for billing: Dana Reyes (dana@example.com) until 18:00 UTC (asked by ana@example.com)"
    ana_tokens = auth_server.tokens_of("ana@example.com")
    assert [c.authorization for c in mcp_oauth.calls] == [f"Bearer {ana_tokens[0]}"]
    # the only credential the MCP server ever saw: Ana's token (the discovery probe carried none)
    assert {a for a in mcp_oauth.authorizations if a is not None} == {f"Bearer {ana_tokens[0]}"}
    # the definitions are listed with the person's token too
    assert "get_oncall" in {d.name for d in per_user_tool.definitions(ANA)}


def test_a_second_person_never_gets_the_first_ones_token(connections, auth_server, mcp_oauth, per_user_tool):
    connect(connections, auth_server, ANA)
    before = list(mcp_oauth.authorizations)
    with pytest.raises(ConnectionNeeded) as needed:
        per_user_tool.call("get_oncall", {"service": "billing"}, BEN, timeout=10)
    assert needed.value.tool == "pagerduty"
    assert mcp_oauth.authorizations == before             # nothing was sent for Ben
    with pytest.raises(ConnectionNeeded):
        connections.access_token("pagerduty", BEN)

    connect(connections, auth_server, BEN)
    ben = per_user_tool.call("get_oncall", {"service": "search"}, BEN, timeout=10)
    ana = per_user_tool.call("get_oncall", {"service": "search"}, ANA, timeout=10)
    assert (asked_by(ben.text), asked_by(ana.text)) == ("ben@example.com", "ana@example.com")
    assert connections.access_token("pagerduty", ANA) != connections.access_token("pagerduty", BEN)


def test_a_token_is_refreshed_before_it_expires(connections, auth_server, mcp_oauth, per_user_tool):
    auth_server.expires_in = 30                          # within the minute: refreshed before use
    connect(connections, auth_server, ANA)
    first = auth_server.tokens_of("ana@example.com")
    assert auth_server.refresh_requests == 0
    auth_server.expires_in = 3600
    out = per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert asked_by(out.text) == "ana@example.com"
    assert auth_server.refresh_requests == 1
    used = mcp_oauth.calls[-1].authorization
    assert used is not None and used.removeprefix("Bearer ") not in first
    per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert auth_server.refresh_requests == 1             # the refreshed token lasts an hour


def test_two_workers_refreshing_at_once_spend_the_rotating_refresh_token_once(connections, auth_server):
    auth_server.expires_in = 30
    connect(connections, auth_server, ANA)
    auth_server.expires_in = 3600
    got: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            got.append(connections.access_token("pagerduty", ANA))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert auth_server.refresh_requests == 1
    assert len(set(got)) == 1


def test_revoked_at_the_authorization_server_means_connect_again(connections, auth_server, mcp_oauth,
                                                                 per_user_tool, token_store):
    connect(connections, auth_server, ANA)
    per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    auth_server.revoke_user("ana@example.com")
    with pytest.raises(ConnectionNeeded):
        per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert auth_server.refresh_requests == 1             # the 401 asked for a fresh token once: refused
    assert ToolRecords(token_store).token("pagerduty", "oid-ana") is None     # the dead token is gone
    assert connections.connected("oid-ana") == []
    assert len(mcp_oauth.calls) == 1


def test_a_refused_refresh_drops_the_token(connections, auth_server, mcp_oauth, token_store):
    auth_server.expires_in = 30
    connect(connections, auth_server, ANA)
    auth_server.revoke_user("ana@example.com")
    with pytest.raises(ConnectionNeeded):
        connections.access_token("pagerduty", ANA)
    assert ToolRecords(token_store).token("pagerduty", "oid-ana") is None


def test_a_state_is_good_once(connections, auth_server):
    auth_server.as_user(ANA.email)
    back = follow(connections.begin("pagerduty", ANA))
    connections.complete(back["state"], back["code"], iss=back["iss"])
    with pytest.raises(ConnectFailed, match="expired or was already used") as replayed:
        connections.complete(back["state"], back["code"], iss=back["iss"])
    assert replayed.value.status == 400
    with pytest.raises(ConnectFailed, match="expired or was already used"):
        connections.complete("made-up-state", back["code"])
    assert auth_server.token_requests == 1               # the replay never reached the token endpoint


def test_a_pending_authorization_lasts_ten_minutes_and_is_kept_by_the_hash_of_its_state(
        connections, auth_server, redis_client, redis_prefix):
    url = connections.begin("pagerduty", ANA)
    state = parse_qs(urlsplit(url).query)["state"][0]
    [key] = list(redis_client.scan_iter(f"{redis_prefix}:tools:oauth:flow:*"))
    assert state not in key.decode()
    assert 590 <= redis_client.ttl(key) <= 600
    assert b"ana@example.com" not in redis_client.get(key)      # sealed


def test_an_answer_from_another_authorization_server_is_refused(connections, auth_server):
    auth_server.as_user(ANA.email)
    back = follow(connections.begin("pagerduty", ANA))
    with pytest.raises(ConnectFailed, match="another authorization server"):
        connections.complete(back["state"], back["code"], iss="https://evil.example.com")
    assert auth_server.token_requests == 0


def test_a_declined_authorization_drops_the_pending_one(connections, auth_server):
    auth_server.deny_consent = True
    auth_server.as_user(ANA.email)
    back = follow(connections.begin("pagerduty", ANA))
    assert back["error"] == "access_denied"
    assert connections.abandon(back["state"]) == "pagerduty"
    assert connections.abandon(back["state"]) is None


def test_sealed_tokens_are_not_readable_in_the_database(connections, auth_server, token_store, tmp_path, token_key):
    auth_server.expires_in = 30
    connect(connections, auth_server, ANA)
    connections.access_token("pagerduty", ANA)                      # refreshed: stored again
    access = auth_server.tokens_of("ana@example.com")
    refresh = list(auth_server.refreshes)
    assert access and refresh
    raw = (tmp_path / "data" / "chatops.db").read_bytes()
    for secret in access + refresh:
        assert secret.encode() not in raw
    assert b"ana@example.com" not in raw
    with sqlite3.connect(tmp_path / "data" / "chatops.db") as db:
        [(person, sealed)] = db.execute("select person_id, sealed from tool_tokens").fetchall()
    assert person == "oid-ana"
    opened = Fernet(token_key.encode()).decrypt(sealed.encode()).decode()
    assert access[-1] in opened and refresh[-1] in opened


def test_a_sealed_token_copied_to_another_person_is_refused(connections, auth_server, token_store):
    connect(connections, auth_server, ANA)
    records = ToolRecords(token_store)
    ana = records.token("pagerduty", "oid-ana")
    records.put_token("pagerduty", "oid-ben", ana.sealed, ana.expires_at)
    with pytest.raises(ConnectionNeeded):
        connections.access_token("pagerduty", BEN)
    assert records.token("pagerduty", "oid-ben") is None
    assert connections.access_token("pagerduty", ANA)                # Ana's own is untouched


def test_another_key_cannot_open_them_and_a_rotated_key_can(per_user_spec, token_store, redis_client, redis_prefix,
                                                             connections, auth_server, token_key):
    connect(connections, auth_server, ANA)
    new_key = Fernet.generate_key().decode()

    def with_keys(*token_keys: str) -> ToolConnections:
        return ToolConnections(targets=per_user_targets([per_user_spec]), records=ToolRecords(token_store),
                               redis_client=redis_client, key_prefix=redis_prefix, http=requests.Session(),
                               secret=lambda name: None, token_keys=list(token_keys), public_url=PUBLIC_URL)

    assert with_keys(new_key, token_key).access_token("pagerduty", ANA)     # rotation: the old key still opens
    with pytest.raises(ConnectionNeeded):
        with_keys(new_key).access_token("pagerduty", ANA)                  # without it: nothing to use


def test_disconnect(connections, auth_server, per_user_tool):
    connect(connections, auth_server, ANA)
    assert connections.disconnect("pagerduty", "oid-ana") is True
    assert connections.connected("oid-ana") == []
    with pytest.raises(ConnectionNeeded):
        per_user_tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert connections.disconnect("pagerduty", "oid-ana") is False


def test_an_operators_client_is_used_and_its_secret_never_stored(mcp_oauth, auth_server, token_store, redis_client,
                                                                 redis_prefix, token_key, tmp_path):
    auth_server.register([PUBLIC_URL + "/tools/oauth/callback"], client_id="chatops-pd", secret="s3cret-value",
                         auth_method="client_secret_basic")
    configured = spec(url=mcp_oauth.url, auth={"oauth": "per_user", "client_id": "chatops-pd",
                                               "client_secret_env": "PD_CLIENT_SECRET"})
    connections = ToolConnections(targets=per_user_targets([configured]), records=ToolRecords(token_store),
                                  redis_client=redis_client, key_prefix=redis_prefix, http=requests.Session(),
                                  secret={"PD_CLIENT_SECRET": "s3cret-value"}.get, token_keys=[token_key],
                                  public_url=PUBLIC_URL)
    auth_server.expires_in = 30
    connect(connections, auth_server, ANA)
    assert auth_server.registrations == 0
    assert connections.access_token("pagerduty", ANA)      # refreshed with the client's secret
    assert auth_server.refresh_requests == 1
    sealed = ToolRecords(token_store).token("pagerduty", "oid-ana").sealed
    assert "s3cret-value" not in Fernet(token_key.encode()).decrypt(sealed.encode()).decode()


def test_without_the_key_a_per_person_tool_does_not_start(per_user_spec, token_store, redis_client, redis_prefix):
    def build(**overrides):
        kwargs = dict(targets=per_user_targets([per_user_spec]), records=ToolRecords(token_store),
                      redis_client=redis_client, key_prefix=redis_prefix, http=requests.Session(),
                      secret=lambda name: None, token_keys=[], public_url=PUBLIC_URL)
        return ToolConnections(**{**kwargs, **overrides})

    with pytest.raises(ConfigError, match="CHATOPS_TOOL_TOKEN_KEY is not set: the tools pagerduty"):
        build()
    with pytest.raises(ConfigError, match="CHATOPS_PUBLIC_URL is not set"):
        build(token_keys=[Fernet.generate_key().decode()], public_url=None)
    assert build(targets={}).connected("oid-ana") == []      # no per-person tool: nothing needed


def test_a_bad_key_stops_the_start_naming_the_variable():
    with pytest.raises(ConfigError, match="CHATOPS_TOOL_TOKEN_KEY"):
        ToolSettings.read({"CHATOPS_TOOL_TOKEN_KEY": "not-a-fernet-key"})
    keys_ = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    assert len(ToolSettings.read({"CHATOPS_TOOL_TOKEN_KEY": keys_}).token_keys) == 2


def test_a_token_issued_for_another_server_is_refused_there(connections, auth_server, mcp_oauth):
    """RFC 8707: Ana's token names the first server as its audience; a second server of the same
    authorization server refuses it."""
    connect(connections, auth_server, ANA)
    token = connections.access_token("pagerduty", ANA)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    assert requests.post(mcp_oauth.url, json=initialize, headers=headers, timeout=5).status_code == 200
    with FakeMCP(oauth=auth_server) as other:
        refused = requests.post(other.url, json=initialize, headers=headers, timeout=5)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
