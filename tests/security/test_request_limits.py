"""Finding 10: no request size cap; bad JSON answered 500. Finding 11: events of another app or
workspace answered when they carry a valid signature.

The real web app on a loopback port, signed requests as Slack sends them.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlencode, urlsplit

import pytest

from tests.security.conftest import APP_ID, BOT, TEAM
from standins.fake_slack import event_body

pytestmark = pytest.mark.redis


def mention(text: str = "how do I restart billing?") -> dict:
    return {"type": "app_mention", "channel": "C1", "user": "U1", "text": f"<@{BOT}> {text}",
            "ts": f"{time.time():.6f}", "channel_type": "channel"}


def test_a_declared_huge_body_is_refused_before_it_is_sent(web):
    host, port = urlsplit(web.url).hostname, urlsplit(web.url).port
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 200000000\r\n\r\n" + b"{" * 1000)
        reply = s.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply[:100]
    assert time.monotonic() - started < 5       # 200 MB were never read
    assert web.enqueued == []


def test_a_streamed_body_over_the_limit_is_refused(web):
    def chunks():
        for _ in range(40):                     # 2.5 MB, no Content-Length (chunked)
            yield b" " * 65536
    resp = web.post(b"", headers={})  # warm-up: an empty JSON body is malformed
    assert resp.status_code == 400
    import requests
    resp = requests.post(f"{web.url}/slack/events", data=chunks(), headers={"Content-Type": "application/json"},
                         timeout=10)
    assert resp.status_code == 413


@pytest.mark.parametrize("body,content_type", [
    (b"{not json", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),          # deeply nested
    (b"\xff\xfe\xfd", "application/json"),                            # not UTF-8
    (urlencode({"payload": "{broken"}).encode(), "application/x-www-form-urlencoded"),
    (urlencode({"payload": "[" * 50_000}).encode(), "application/x-www-form-urlencoded"),
    (b"a=1&&=&b", "application/x-www-form-urlencoded"),
    (b"<xml/>", "text/xml"),
])
def test_signed_malformed_bodies_are_400_not_500(web, body, content_type):
    resp = web.post(body, content_type=content_type)
    assert resp.status_code == 400, resp.text
    assert web.enqueued == []


@pytest.mark.parametrize("headers", [
    {"X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": "v0=00"},
    {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=zz-not-hex"},
    {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=é"},
])
def test_malformed_signature_headers_are_401(web, headers):
    resp = web.post(event_body(mention(), "Ev1"), signed=False, headers=headers)
    assert resp.status_code == 401
    assert web.enqueued == []


def test_a_good_event_still_goes_through(web):
    resp = web.event(mention())
    assert resp.status_code == 200
    assert [kind for kind, _ in web.enqueued] == ["question"]


def test_a_failed_enqueue_is_a_500_so_slack_retries_and_the_retry_goes_through(web):
    event = mention()
    web.broker["down"] = True
    assert web.event(event).status_code == 500       # the only 500: trying again may help
    web.broker["down"] = False
    assert web.event(event).status_code == 200       # the duplicate claim was released
    assert [kind for kind, _ in web.enqueued] == ["question"]


def test_an_event_for_another_app_is_dropped(web):
    resp = web.event(mention(), api_app_id="A_OTHER")
    assert resp.status_code == 200          # acknowledged, so Slack does not retry it
    assert web.enqueued == []


def test_an_event_from_another_workspace_is_dropped(web):
    resp = web.event(mention(), team_id="T_OTHER")
    assert resp.status_code == 200
    assert web.enqueued == []


def test_a_click_from_another_workspace_is_dropped(web):
    from standins.fake_slack import block_actions_body

    body = block_actions_body("U1", "C1", {"action_id": "answer_in_dm", "value": "offer-1"}, team_id="T_OTHER")
    assert web.post(body, content_type="application/x-www-form-urlencoded").status_code == 200
    body = block_actions_body("U1", "C1", {"action_id": "answer_in_dm", "value": "offer-1"}, api_app_id="A_OTHER")
    assert web.post(body, content_type="application/x-www-form-urlencoded").status_code == 200
    assert web.enqueued == []
    ours = block_actions_body("U1", "C1", {"action_id": "answer_in_dm", "value": "offer-2"}, team_id=TEAM,
                              api_app_id=APP_ID)
    assert web.post(ours, content_type="application/x-www-form-urlencoded").status_code == 200
    assert [kind for kind, _ in web.enqueued] == ["answer_in_dm"]


@pytest.fixture
def configured_teams(web_env):
    web_env["SLACK_TEAM_IDS"] = "T123,T456"
    return web_env


def test_configured_workspaces_are_accepted_and_only_they(configured_teams, web):
    assert web.event(mention(), team_id="T456").status_code == 200
    assert web.event(mention(), team_id="T789").status_code == 200
    assert len(web.enqueued) == 1 and web.enqueued[0][1]["team"] == "T456"


def test_the_event_body_is_parsed_once_more_only_when_valid(web):
    # A valid body larger than Slack ever sends but under the cap is handled normally.
    event = mention("x" * 200_000)
    assert web.event(event).status_code == 200
    assert json.loads(json.dumps(web.enqueued[0][1]))["text"].endswith("x")
