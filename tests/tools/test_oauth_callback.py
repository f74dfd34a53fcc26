"""``GET /tools/oauth/callback`` through the web app (bot/web.py), built by the composition root's part
(chatops_app/container/tools_auth.py) from the settings: a person connects, comes back, and the tool
then answers with their token."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest
import yaml
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from bot.web import create_web_app
from chatops.errors import ConfigError
from chatops.settings import Settings
from chatops.tools import ToolSpec, load_specs
from chatops_app.container.core import Core
from chatops_app.container.tools_auth import ToolAuthParts
from connectors.tools.registry import build_tool
from connectors.tools.settings import ToolSettings
from tests.tools.conftest import ANA, BEN, PUBLIC_URL, deps, follow


class Parts(Core, ToolAuthParts):
    """The composition root's core and the tools' authorization part (what the web process builds);
    no Slack here, so nobody is told in a DM."""

    gateway = None


@pytest.fixture
def build(tmp_path, redis_prefix):
    built: list[Parts] = []

    def make(tools: list[dict], **env: str | None) -> Parts:
        config = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yml"
        config.write_text(yaml.safe_dump({"tools": tools}))
        values = {"CHATOPS_CONFIG": str(config), "CHATOPS_DATA_DIR": str(tmp_path / "data"),
                  "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'chatops.db'}", "CHATOPS_KEY_PREFIX": redis_prefix,
                  "CHATOPS_PUBLIC_URL": PUBLIC_URL, "CHATOPS_TOOL_TOKEN_KEY": Fernet.generate_key().decode(), **env}
        parts = Parts(Settings.load(ToolSettings, **values))
        built.append(parts)
        return parts

    yield make
    for parts in built:
        parts.close()


@pytest.fixture
def world(build, mcp_oauth, auth_server, redis_client):
    parts = build([{"name": "pagerduty", "kind": "mcp", "title": "PagerDuty", "url": mcp_oauth.url,
                    "auth": {"oauth": "per_user"}, "allow": ["get_oncall"]}])
    client = TestClient(create_web_app(None, ready=lambda: (True, "ok"), routes=parts.tool_oauth_routes()))
    return parts, client


def callback(client: TestClient, **params: str):
    return client.get("/tools/oauth/callback?" + urlencode(params))


def test_coming_back_connects_the_person_and_their_questions_use_it(world, auth_server, mcp_oauth):
    parts, client = world
    connections = parts.tool_connections
    auth_server.as_user(ANA.email)
    back = follow(connections.begin("pagerduty", ANA))
    page = callback(client, **back)
    assert page.status_code == 200
    assert "Connected PagerDuty. You can return to Slack and ask again." in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert connections.connected(ANA.person_id) == ["pagerduty"]

    tool = build_tool(only_spec(parts), deps(tokens=connections))
    out = tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert out.text.endswith("(asked by ana@example.com)")
    assert connections.connected(BEN.person_id) == []

    again = callback(client, **back)
    assert again.status_code == 400
    assert "This link has expired or was already used" in again.text


def only_spec(parts: Parts) -> ToolSpec:
    [(spec, _policy)] = load_specs(parts.settings.file.tools, parts.settings.group_names)
    return spec


def test_a_declined_authorization_is_a_clear_page(world, auth_server):
    parts, client = world
    auth_server.deny_consent = True
    auth_server.as_user(ANA.email)
    back = follow(parts.tool_connections.begin("pagerduty", ANA))
    page = callback(client, **back)
    assert page.status_code == 400
    assert "PagerDuty is not connected" in page.text and "You did not allow access" in page.text
    assert parts.tool_connections.connected(ANA.person_id) == []


def test_what_a_stranger_sends_is_answered_400_and_escaped(world):
    _parts, client = world
    assert callback(client).status_code == 400
    assert callback(client, state="x").status_code == 400
    forged = callback(client, state="forged", code="c")
    assert forged.status_code == 400 and "expired or was already used" in forged.text
    hostile = callback(client, state="x", error="<script>alert(1)</script>")
    assert hostile.status_code == 400
    assert "<script>" not in hostile.text and "&lt;script&gt;" in hostile.text
    assert client.head("/tools/oauth/callback?state=x&code=y").status_code == 200      # nothing taken


def test_without_per_person_tools_there_is_no_route(build):
    parts = build([{"name": "status", "kind": "mcp", "url": "https://mcp.example.com/mcp"}])
    assert parts.tool_connections is None
    assert parts.tool_oauth_routes() == ()


def test_a_per_person_tool_without_the_key_stops_the_start(build, mcp_oauth):
    parts = build([{"name": "pagerduty", "kind": "mcp", "url": mcp_oauth.url, "auth": {"oauth": "per_user"}}],
                  CHATOPS_TOOL_TOKEN_KEY=None)
    with pytest.raises(ConfigError, match="CHATOPS_TOOL_TOKEN_KEY is not set: the tools pagerduty"):
        parts.tool_oauth_routes()
