"""MCP sessions kept open and reused (``connectors/tools/mcp_sessions.py``) against the real SDK's
server (standins/fake_mcp.py), which counts the sessions opened (``initialize``), closed
(``DELETE``), listings, calls, and the session id and credential of every HTTP request."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from connectors.tools.base import ConnectionNeeded, ToolDeps, ToolFailed, ToolTimedOut
from connectors.tools.mcp import McpTool
from connectors.tools.mcp_config import parse
from connectors.tools.mcp_sessions import SessionPool, sessions
from standins.fake_mcp import FakeMCP
from tests.tools.conftest import ANA, BEN, connect, deps, spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mcp():
    with FakeMCP() as server:
        yield server


@pytest.fixture
def pool():
    made = SessionPool()
    yield made
    made.close()


def tool_for(url: str, pool: SessionPool, *, name: str = "pagerduty", secrets: dict[str, str] | None = None,
             tokens: Any = None, **settings: Any) -> McpTool:
    """An ``mcp`` tool on its own pool; ``secrets`` read at each call (a test may change them)."""
    s = spec(name, url=url, **settings)
    values = secrets if secrets is not None else {}
    return McpTool(s.name, parse(s.name, s.kind_settings), ToolDeps(http=requests.Session(), secret=values.get,
                                                                     tokens=tokens), pool=pool)


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def credentials_by_session(server: FakeMCP) -> dict[str, set[str | None]]:
    seen: dict[str, set[str | None]] = defaultdict(set)
    for request in server.requests:
        if request.session_id is not None:
            seen[request.session_id].add(request.authorization)
    return seen


def test_calls_reuse_one_session_listed_once(mcp, pool):
    tool = tool_for(mcp.url, pool)
    for service in ("billing", "checkout", "search"):
        assert tool.call("get_oncall", {"service": service}, ANA, timeout=10).text.startswith(f"On call for {service}")
    assert mcp.initializations == 1
    assert mcp.listings == 1            # listed once when the session opened; no listing per call
    assert len(mcp.calls) == 3
    assert len(credentials_by_session(mcp)) == 1


@pytest.mark.parametrize("mode", [{"stateless": True}, {"json_response": True}])
def test_a_stateless_or_json_answering_server_is_reused_too(mode, pool):
    with FakeMCP(**mode) as server:
        tool = tool_for(server.url, pool)
        for service in ("billing", "search"):
            assert tool.call("get_oncall", {"service": service}, ANA, timeout=10).text.startswith("On call for")
        assert server.initializations == 1 and server.listings == 1


def test_definitions_are_a_real_listing_each_time_in_the_open_session(mcp, pool):
    tool = tool_for(mcp.url, pool)
    assert "get_oncall" in {d.name for d in tool.definitions(None)}
    assert (mcp.initializations, mcp.listings) == (1, 1)      # the listing made when it opened
    mcp.set_description("get_oncall", "Changed.")
    assert {d.name: d.description for d in tool.definitions(None)}["get_oncall"] == "Changed."
    assert (mcp.initializations, mcp.listings) == (1, 2)


def test_two_credentials_never_share_a_session(mcp, pool):
    secrets = {"PD_A": "token-a", "PD_B": "token-b"}
    a = tool_for(mcp.url, pool, name="pd-a", secrets=secrets, auth={"bearer_env": "PD_A"})
    b = tool_for(mcp.url, pool, name="pd-b", secrets=secrets, auth={"bearer_env": "PD_B"})
    for _ in range(3):
        a.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        b.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    by_session = credentials_by_session(mcp)
    assert sorted(by_session.values(), key=str) == [{"Bearer token-a"}, {"Bearer token-b"}]
    assert mcp.initializations == 2
    assert [c.authorization for c in mcp.calls] == ["Bearer token-a", "Bearer token-b"] * 3


def test_a_new_token_opens_a_new_session_and_closes_the_one_it_replaced(mcp, pool):
    secrets = {"PD_TOKEN": "token-1"}
    tool = tool_for(mcp.url, pool, secrets=secrets, auth={"bearer_env": "PD_TOKEN"})
    tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    secrets["PD_TOKEN"] = "token-2"           # rotated
    tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert mcp.initializations == 2
    assert eventually(lambda: mcp.terminations == 1)
    [closed] = [r for r in mcp.requests if r.method == "DELETE"]
    assert closed.authorization == "Bearer token-1"
    assert pool.open_sessions() == 1
    assert all(len(v) == 1 for v in credentials_by_session(mcp).values())


def test_a_restarted_server_that_forgot_the_session_is_answered_in_a_fresh_one(mcp, pool):
    tool = tool_for(mcp.url, pool)
    tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    [first] = {r.session_id for r in mcp.requests if r.session_id}
    mcp.stop()
    mcp.start()                               # the same port; no session of before is known
    out = tool.call("get_oncall", {"service": "search"}, ANA, timeout=10)
    assert out.text.startswith("On call for search")
    assert mcp.initializations == 2
    assert [c.arguments["service"] for c in mcp.calls] == ["billing", "search"]     # one try each
    forgotten = [r for r in mcp.requests if r.session_id == first and r.method == "POST"]
    assert len(forgotten) >= 1 + 2            # the first session's initialize, listing, call … and the 404


def test_a_server_gone_away_fails_after_one_fresh_try(pool):
    server = FakeMCP().start()
    tool = tool_for(server.url, pool)
    tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    server.stop()
    started = time.monotonic()
    with pytest.raises(ToolFailed, match=r"pagerduty is unreachable \(ConnectError\)") as failed:
        tool.call("get_oncall", {"service": "billing"}, ANA, timeout=5)
    assert failed.value.transient is True
    assert time.monotonic() - started < 3
    server.start()                            # back: the pool opens a session again
    assert tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10).text.startswith("On call for billing")


def test_a_timed_out_call_leaves_the_pool_usable(mcp, pool):
    mcp.slow_seconds = 10
    tool = tool_for(mcp.url, pool)
    tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    answers: list[str] = []

    def meanwhile() -> None:         # another call in the same session while the slow one waits
        time.sleep(0.1)
        answers.append(tool.call("get_oncall", {"service": "checkout"}, ANA, timeout=5).text)

    other = threading.Thread(target=meanwhile)
    other.start()
    started = time.monotonic()
    with pytest.raises(ToolTimedOut, match="did not answer within 0.5 s"):
        tool.call("slow_status", {}, ANA, timeout=0.5)
    assert time.monotonic() - started < 1.5
    other.join(10)
    assert answers and answers[0].startswith("On call for checkout")
    # the session the timed-out call was cut in is closed; the next call opens a fresh one
    assert eventually(lambda: mcp.terminations == 1)
    started = time.monotonic()
    assert tool.call("get_oncall", {"service": "search"}, ANA, timeout=5).text.startswith("On call for search")
    assert time.monotonic() - started < 1
    assert mcp.initializations == 2


def test_idle_sessions_are_closed(mcp):
    pool = SessionPool(idle=0.3)
    try:
        tool = tool_for(mcp.url, pool)
        tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        assert pool.open_sessions() == 1
        assert eventually(lambda: mcp.terminations == 1, 3)
        assert pool.open_sessions() == 0
        tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        assert mcp.initializations == 2
    finally:
        pool.close()


def test_at_most_cap_sessions_least_recently_used_closed_first(mcp):
    pool = SessionPool(cap=2)
    secrets = {"A": "token-a", "B": "token-b", "C": "token-c"}
    tools = {n: tool_for(mcp.url, pool, name=f"pd-{n}", secrets=secrets, auth={"bearer_env": n}) for n in "ABC"}
    try:
        for n in "ABA":
            tools[n].call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        tools["C"].call("get_oncall", {"service": "billing"}, ANA, timeout=10)    # B is the least recent
        assert eventually(lambda: mcp.terminations == 1)
        [closed] = [r for r in mcp.requests if r.method == "DELETE"]
        assert closed.authorization == "Bearer token-b"
        assert pool.open_sessions() == 2
        tools["A"].call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        assert mcp.initializations == 3       # A's session was kept
    finally:
        pool.close()


def test_a_refused_service_token_in_an_open_session_is_tried_once_in_a_fresh_one_then_reported(pool):
    with FakeMCP(bearer="pd-token") as guarded:
        tool = tool_for(guarded.url, pool, secrets={"PD_TOKEN": "pd-token"}, auth={"bearer_env": "PD_TOKEN"})
        tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        guarded.stop()
        guarded.bearer = "rotated-at-the-server"
        guarded.start()
        before = len(guarded.requests)
        with pytest.raises(ToolFailed, match=r"refused the token in PD_TOKEN \(HTTP 401\)") as failed:
            tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
        assert failed.value.transient is False
        opened = [r for r in guarded.requests[before:] if r.method == "POST" and r.session_id is None]
        assert len(opened) == 1                 # one fresh session tried (the variable read again), no more
        assert len(guarded.calls) == 1
        assert pool.open_sessions() == 0        # the refused session is not kept


# -- each person's own token --------------------------------------------------------------------

def test_two_people_never_share_a_session(connections, auth_server, mcp_oauth, per_user_spec, pool):
    connect(connections, auth_server, ANA)
    connect(connections, auth_server, BEN)
    tool = McpTool(per_user_spec.name, parse(per_user_spec.name, per_user_spec.kind_settings),
                   deps(tokens=connections), pool=pool)
    for _ in range(2):
        for person in (ANA, BEN):
            out = tool.call("get_oncall", {"service": "billing"}, person, timeout=10)
            assert out.text.endswith(f"(asked by {person.email})")
    by_session = credentials_by_session(mcp_oauth)
    assert len(by_session) == 2 and all(len(v) == 1 for v in by_session.values())
    assert mcp_oauth.initializations == 2
    assert [c.user for c in mcp_oauth.calls] == [ANA.email, BEN.email] * 2


def test_a_refused_token_in_an_open_session_is_renewed_once_and_used_in_a_fresh_one(
        connections, auth_server, mcp_oauth, per_user_spec, pool):
    connect(connections, auth_server, ANA)
    tool = McpTool(per_user_spec.name, parse(per_user_spec.name, per_user_spec.kind_settings),
                   deps(tokens=connections), pool=pool)
    tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    [first] = auth_server.tokens_of(ANA.email)
    with auth_server.lock:                      # the access token revoked; the refresh token still good
        del auth_server.access[first]
    out = tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)
    assert out.text.endswith(f"(asked by {ANA.email})")
    assert auth_server.refresh_requests == 1
    [second] = auth_server.tokens_of(ANA.email)
    assert [c.authorization for c in mcp_oauth.calls] == [f"Bearer {first}", f"Bearer {second}"]
    assert all(len(v) == 1 for v in credentials_by_session(mcp_oauth).values())
    auth_server.revoke_user(ANA.email)          # and now both: connect again
    with pytest.raises(ConnectionNeeded):
        tool.call("get_oncall", {"service": "billing"}, ANA, timeout=10)


# -- the process's pool -------------------------------------------------------------------------

def test_the_process_pool_closes_its_sessions_at_exit_without_holding_the_exit(mcp):
    script = (
        "import sys, time\n"
        "from connectors.tools.registry import build_tool\n"
        "from tests.tools.conftest import ANA, deps, spec\n"
        "tool = build_tool(spec(url=sys.argv[1]), deps())\n"
        "print(tool.call('get_oncall', {'service': 'billing'}, ANA, timeout=10).text)\n"
        "start = time.monotonic()\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script, mcp.url], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("On call for billing")
    assert time.monotonic() - started < 30
    assert mcp.initializations == 1
    assert eventually(lambda: mcp.terminations == 1)        # closed at exit (its DELETE)


def test_one_pool_per_process():
    assert sessions() is sessions()
