"""Limits of POST /slack/events that do not depend on the process: JSON nesting."""

from __future__ import annotations

from starlette.testclient import TestClient

from bot.web import create_web_app


def test_json_nested_deeper_than_slack_ever_sends_is_refused_whatever_the_stack():
    from bot.web import MAX_JSON_DEPTH, json_depth

    assert json_depth({"a": [1, {"b": []}]}) == 4 and json_depth("x") == 0
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    client = TestClient(create_web_app(None, ready=lambda: (True, "ok")))
    resp = client.post("/slack/events", content=f'{{"type": "event_callback", "x": {deep}}}',
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
