"""The MCP stand-in, the OAuth authorization server stand-in, and per-person credentials over them
(real Redis, a SQLite store)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet

from chatops.store import Store
from chatops.store.tools import ToolRecords
from chatops.tools import ToolSpec
from connectors.tools.base import Caller, ToolDeps
from connectors.tools.mcp_config import per_user_targets
from connectors.tools.registry import build_tool
from standins.fake_mcp import FakeMCP
from standins.fake_oauth import FakeAuthorizationServer
from usecases.tool_auth import ToolConnections

PUBLIC_URL = "https://chatops.example.com"
ANA = Caller(person_id="oid-ana", email="ana@example.com", slack_user_id="U1")
BEN = Caller(person_id="oid-ben", email="ben@example.com", slack_user_id="U2")


def spec(name: str = "pagerduty", **settings: Any) -> ToolSpec:
    return ToolSpec.model_validate({"name": name, "kind": "mcp", **settings})


def deps(secrets: dict[str, str] | None = None, tokens: Any = None, http: requests.Session | None = None) -> ToolDeps:
    values = dict(secrets or {})
    return ToolDeps(http=http or requests.Session(), secret=values.get, tokens=tokens)


def follow(url: str, http: requests.Session | None = None) -> dict[str, str]:
    """The person's browser: open the authorization URL, read where the 302 sends it back."""
    response = (http or requests.Session()).get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, (response.status_code, response.text)
    location = response.headers["Location"]
    assert location.startswith(PUBLIC_URL + "/tools/oauth/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
def auth_server():
    with FakeAuthorizationServer() as server:
        yield server


@pytest.fixture
def mcp_oauth(auth_server):
    with FakeMCP(oauth=auth_server) as server:
        yield server


@pytest.fixture
def token_store(tmp_path):
    store = Store.for_url(f"sqlite:///{tmp_path / 'data' / 'chatops.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def token_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def per_user_spec(mcp_oauth):
    return spec(url=mcp_oauth.url, auth={"oauth": "per_user"})


@pytest.fixture
def connections(per_user_spec, token_store, redis_client, redis_prefix, token_key):
    return ToolConnections(targets=per_user_targets([per_user_spec]), records=ToolRecords(token_store),
                           redis_client=redis_client, key_prefix=redis_prefix, http=requests.Session(),
                           secret=lambda name: None, token_keys=[token_key], public_url=PUBLIC_URL)


@pytest.fixture
def per_user_tool(per_user_spec, connections):
    return build_tool(per_user_spec, deps(tokens=connections))


def connect(connections: ToolConnections, auth_server: FakeAuthorizationServer, caller: Caller,
            tool: str = "pagerduty") -> None:
    """``caller`` connects ``tool``: the Connect link, the browser signed in as them, the callback."""
    auth_server.as_user(caller.email)
    back = follow(connections.begin(tool, caller))
    connections.complete(back["state"], back["code"], iss=back.get("iss"))
