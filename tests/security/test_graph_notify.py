"""The Graph change-notification endpoint (``POST /sources/graph/notify``) against forged
requests: served by uvicorn on loopback, posted to over real HTTP.

Anyone on the internet can reach it, so nothing they send may fail it (a 500), make it echo
what they choose, or fill the log: a refusal is one line a minute at most and always counted."""

from __future__ import annotations

import logging

import requests
from prometheus_client import REGISTRY

from tests.sources import test_notifications
from usecases.notifications import client_state, notify_url

SECRET = test_notifications.SECRET
endpoint = test_notifications.endpoint     # the notification route alone, for the source "eng-docs"


def refused(reason: str) -> float:
    return REGISTRY.get_sample_value("chatops_graph_notify_refused_total", {"reason": reason}) or 0.0


def validate(url: str, token: str) -> requests.Response:
    return requests.post(url, params={"validationToken": token}, data=b"", timeout=10)


def test_a_client_state_that_is_not_ascii_is_refused_not_a_server_error(endpoint):
    base, asked = endpoint
    url = notify_url(base, "eng-docs")
    for state in ("é" * 64, "\u2603", "\ud800", 12345, {"a": 1}, None):
        answer = requests.post(url, json={"value": [{"clientState": state, "resource": "drives/d/root"}]}, timeout=10)
        assert answer.status_code == 403, (state, answer.status_code, answer.text)
    assert asked == []
    # the real one still passes, next to a forged one
    good = {"value": [{"clientState": "ü", "resource": "drives/d/root"},
                      {"clientState": client_state(SECRET, "eng-docs"), "resource": "drives/d/root"}]}
    assert requests.post(url, json=good, timeout=10).status_code == 202 and asked == [("eng-docs", "changes")]


def test_the_validation_token_is_echoed_only_for_a_configured_source_and_a_short_plain_token(endpoint):
    base, _ = endpoint
    url = notify_url(base, "eng-docs")
    # Graph's handshake: a short printable token, answered as sent, as plain text nobody sniffs
    token = "Validation: Testing client application reachability for subscription Request-Id: 5f1a <&>"
    answer = validate(url, token)
    assert answer.status_code == 200 and answer.text == token
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["x-content-type-options"] == "nosniff"
    # not for a source this app does not have
    before = refused("unknown_source")
    answer = validate(notify_url(base, "nope"), token)
    assert answer.status_code == 404 and token not in answer.text
    assert refused("unknown_source") == before + 1
    # nor a token Graph would not send: long, not ASCII, control characters, HTML to sniff
    before = refused("bad_validation_token")
    for forged in ("x" * 5000, "<html><script>alert(1)</script>" + "é", "line\r\nSet-Cookie: a=b", ""):
        answer = validate(url, forged)
        assert answer.status_code == 400, forged
        assert forged not in answer.text or not forged
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert refused("bad_validation_token") == before + 4


def test_every_refusal_says_nosniff(endpoint):
    base, _ = endpoint
    url = notify_url(base, "eng-docs")
    answers = [requests.post(url, json={"value": [{"clientState": "x"}]}, timeout=10),
               requests.post(url, data=b"not json", timeout=10),
               requests.post(url, data=b"x" * 5000, timeout=10),
               requests.post(notify_url(base, "nope"), json={"value": []}, timeout=10)]
    assert [a.status_code for a in answers] == [403, 400, 413, 404]
    assert all(a.headers.get("x-content-type-options") == "nosniff" for a in answers)


def test_forged_notifications_are_each_counted_but_logged_once_a_minute_at_most(endpoint, caplog):
    base, asked = endpoint
    url = notify_url(base, "eng-docs")
    before = refused("bad_client_state")
    with caplog.at_level(logging.WARNING, logger="bot.graph_notify"):
        for n in range(30):
            forged = {"value": [{"clientState": f"guess-{n}", "resource": "drives/d/root"}] if n % 2 else []}
            assert requests.post(url, json=forged, timeout=10).status_code == 403
    lines = [r for r in caplog.records if r.name == "bot.graph_notify" and r.levelno >= logging.WARNING]
    assert len(lines) == 1, [r.getMessage() for r in lines]   # the first, then quiet for a minute
    assert refused("bad_client_state") == before + 30          # every one counted, empty batches too
    assert asked == []
